"""The keyword classifier (the decision point until the AI layer lands) and the guardrail rules."""

from __future__ import annotations

import pytest
from interlock.outgoing import OutsiderPart
from interlock.workflows.support_triage.guardrail import RISKY_CATEGORIES, evaluate
from interlock.workflows.support_triage.rules import KEYWORDS, Classification, KeywordClassifier, TicketText


def classify(subject: str, body: str = "") -> Classification:
    return KeywordClassifier().classify(TicketText(subject=subject, body=body))


# -- classifier ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "body", "category"),
    [
        ("Question about my invoice", "Where is it?", "billing"),
        ("Please refund me", "I want my money back", "refund"),
        ("The app shows an error", "It keeps failing.", "technical"),
        ("Can't log in", "I forgot my password", "account"),
        ("GDPR request", "Please pass this to your legal team.", "legal"),
        ("I think I was hacked", "There was a breach.", "security"),
    ],
)
def test_given_a_ticket_with_one_categorys_words_when_classified_then_that_category_wins(subject, body, category):
    result = classify(subject, body)

    assert result.category == category
    assert result.decided_by == "keywords.v1"
    assert all(signal.startswith(f"{category}:") for signal in result.signals)


def test_given_no_keyword_when_classified_then_the_category_is_other_with_low_confidence():
    result = classify("Hello", "Just saying hi to the team.")

    assert (result.category, result.confidence, result.signals) == ("other", 0.3, [])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("invoice", 0.7),
        ("invoice and receipt", 0.85),
        ("invoice, receipt and payment", 0.95),
        ("invoice, receipt, payment, pricing and vat", 0.95),
    ],
    ids=["one-hit", "two-hits", "three-hits", "capped"],
)
def test_given_more_hits_in_one_category_when_classified_then_confidence_grows_to_a_cap(body, expected):
    result = classify("Hello", body)

    assert result.category == "billing"
    assert result.confidence == expected


def test_given_two_categories_tied_when_classified_then_the_riskier_wins_with_confidence_at_most_half():
    # one billing word, one security word: security is checked first and carries more risk
    result = classify("Invoice", "Something looks suspicious")

    assert result.category == "security"
    assert result.confidence == 0.5
    assert result.signals == ["security:suspicious", "billing:invoice"]


def test_given_two_categories_with_two_hits_each_when_classified_then_the_tie_still_caps_confidence():
    result = classify("Refund and chargeback", "My invoice and receipt")

    assert result.category == "refund"
    assert result.confidence == 0.5


def test_given_a_clear_winner_over_a_runner_up_when_classified_then_confidence_is_not_capped():
    result = classify("Invoice, receipt and payment", "There was an error")

    assert result.category == "billing"
    assert result.confidence == 0.95
    assert set(result.signals[:3]) == {"billing:invoice", "billing:receipt", "billing:payment"}
    assert result.signals[-1] == "technical:error"


def test_given_keywords_inside_other_words_when_classified_then_they_do_not_count():
    # "charger" is not "charge", "errors" is not "error", "apiary" is not "api", "cardigan" is not "card"
    result = classify("My charger", "errors in the apiary, and a cardigan")

    assert result.category == "other"


def test_given_mixed_case_and_multi_word_keywords_when_classified_then_they_match():
    result = classify("LOCKED OUT", "I cannot SIGN IN")

    assert result.category == "account"
    assert set(result.signals) == {"account:sign in", "account:locked out"}


def test_given_a_long_subject_when_classified_then_the_summary_is_the_trimmed_subject_cut_at_120():
    result = classify("  " + "s" * 200 + "  ", "body")

    assert result.summary == "s" * 120


def test_given_any_ticket_when_classified_then_confidence_is_a_valid_probability():
    for words in KEYWORDS.values():
        result = classify(" ".join(words), " ".join(words))
        assert 0 <= result.confidence <= 1


# -- guardrail -------------------------------------------------------------------------------------------


def _classification(category: str = "billing", confidence: float = 0.9) -> Classification:
    return Classification(category=category, confidence=confidence, summary="s",  # type: ignore[arg-type]
                          decided_by="test")


@pytest.mark.parametrize(
    ("confidence", "requires"),
    [(0.74, True), (0.7499, True), (0.75, False), (0.76, False)],
)
def test_given_confidence_around_the_threshold_when_evaluated_then_only_below_it_needs_a_human(confidence, requires):
    result = evaluate(_classification("billing", confidence), min_confidence=0.75)

    assert result.requires_approval is requires
    assert result.min_confidence == 0.75
    if requires:
        assert result.reasons == [f"low_confidence:{confidence:.2f}<0.75"]
    else:
        assert result.reasons == []


@pytest.mark.parametrize("category", sorted(RISKY_CATEGORIES))
def test_given_each_risky_category_at_full_confidence_when_evaluated_then_a_human_must_approve(category):
    result = evaluate(_classification(category, 0.95), min_confidence=0.75)

    assert result.requires_approval is True
    assert result.reasons == [f"risky_category:{category}"]


@pytest.mark.parametrize("category", ["billing", "technical", "account", "other"])
def test_given_a_safe_category_at_high_confidence_when_evaluated_then_no_human_is_needed(category):
    assert evaluate(_classification(category, 0.95), min_confidence=0.75).requires_approval is False


def test_given_risky_and_low_confidence_when_evaluated_then_both_reasons_are_listed():
    result = evaluate(_classification("refund", 0.5), min_confidence=0.75)

    assert result.reasons == ["low_confidence:0.50<0.75", "risky_category:refund"]


def test_the_risky_categories_are_refund_legal_and_security():
    assert frozenset({"refund", "legal", "security"}) == RISKY_CATEGORIES


def test_given_the_classifier_output_for_a_tie_when_evaluated_then_the_default_threshold_sends_it_to_a_human():
    result = evaluate(classify("Invoice", "there is an error"), min_confidence=0.75)

    assert result.requires_approval is True
    assert result.reasons[0].startswith("low_confidence:0.50")


# -- every risk signal, not only the winning category ---------------------------------------------------------

REFUND_REQUEST = ("Refund request for invoice 1042",
                  "I was charged twice last month. Please refund the duplicate charge.")


def test_given_a_refund_request_in_billing_words_when_classified_then_refund_is_a_secondary_category():
    result = classify(*REFUND_REQUEST)

    assert (result.category, result.confidence) == ("billing", 0.95)  # billing keywords outnumber refund ones
    assert "refund" in result.secondary_categories


def test_given_a_refund_request_in_billing_words_when_evaluated_then_a_person_decides():
    result = evaluate(classify(*REFUND_REQUEST), min_confidence=0.75)

    assert result.requires_approval is True
    assert result.reasons == ["risk_signal:refund"]


@pytest.mark.parametrize("secondary", sorted(RISKY_CATEGORIES))
def test_given_any_risky_secondary_category_when_evaluated_then_a_person_decides(secondary):
    cls = Classification(category="billing", confidence=0.95, summary="s", decided_by="t",
                         secondary_categories=[secondary])

    assert evaluate(cls, 0.75).reasons == [f"risk_signal:{secondary}"]


def test_given_only_safe_secondary_categories_when_evaluated_then_no_person_is_needed():
    cls = Classification(category="billing", confidence=0.95, summary="s", decided_by="t",
                         secondary_categories=["technical", "account"])

    assert evaluate(cls, 0.75).requires_approval is False


# -- every outsider part of a reply, with the same rules -----------------------------------------------------

SAFE = Classification(category="billing", confidence=0.95, summary="s", decided_by="t")


@pytest.mark.parametrize(("part", "source"), [("reply", "model"), ("subject", "customer"), ("name", "customer"),
                                              ("name", "crm"), ("plan", "crm")])
@pytest.mark.parametrize(("text", "rule"), [("see http://evil.example/x", "link"), ("pay $20 now", "amount"),
                                            ("we will refund it", "commitment")])
def test_given_outsider_text_in_any_part_when_evaluated_then_the_same_rules_send_it_to_a_person(
        part, source, text, rule):
    result = evaluate(SAFE, 0.75, None, [OutsiderPart(part=part, source=source, text=text)])

    assert result.reasons == [f"outsider_text:{part}:{rule}"]


def test_given_clean_outsider_parts_when_evaluated_then_no_person_is_needed():
    parts = [OutsiderPart(part="subject", source="customer", text="Invoice question"),
             OutsiderPart(part="name", source="customer", text="Ada")]

    assert evaluate(SAFE, 0.75, None, parts).requires_approval is False
