"""The failed-payment recovery's rules: the facts read from Stripe's invoice, amounts in minor units, the tone, and
the message composed around the decision's paragraphs (the guardrail's template in place of a tripped paragraph)."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest
from interlock.errors import MissingData
from interlock.workflows.payment_recovery import rules
from interlock.workflows.payment_recovery.correlation import invoice_key
from interlock.workflows.payment_recovery.models import Customer, Draft

SAMPLE = json.loads((resources.files("interlock") / "workflows" / "payment_recovery" / "samples" /
                     "stripe_invoice_payment_failed.json").read_text())
KEY = "stripe:invoice:in_1QpR7sJq2X8pYz7aN4cD9eFg"


def event(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(SAMPLE)
    for name, value in changes.items():
        if value is None:
            payload["data"]["object"].pop(name, None)
        else:
            payload["data"]["object"][name] = value
    return payload


def test_given_the_sample_then_its_facts_are_read() -> None:
    invoice = rules.invoice_from_event(event(), KEY)
    assert (invoice.amount_text, invoice.due_date, invoice.number, invoice.attempt_count) == \
        ("USD 49.00", "2025-12-08", "A1B2C3D4-0007", 1)
    assert invoice_key(SAMPLE) == KEY


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (4900, "usd", "USD 49.00"), (5, "eur", "EUR 0.05"), (123456789, "gbp", "GBP 1,234,567.89"),
    (4900, "jpy", "JPY 4,900"), (12345, "kwd", "KWD 12.345"), (0, "usd", "USD 0.00"),
])
def test_given_stripe_amounts_then_they_are_written_in_the_currency_s_minor_units(amount: int, currency: str,
                                                                                   text: str) -> None:
    assert rules.amount_text(amount, currency) == text


@pytest.mark.parametrize("url", [
    "http://invoice.stripe.com/i/x", "https://invoice.stripe.com.evil.example/i/x", "https://evil.example/i/x",
    "https://user@invoice.stripe.com/i/x", "https://invoice.stripe.com:8443/i/x", "https://invoice.stripe.com/i/a b",
    12, None,
])
def test_given_a_link_that_is_not_stripe_s_invoice_page_then_no_message_is_made(url: object) -> None:
    with pytest.raises(MissingData) as caught:
        rules.invoice_from_event(event(hosted_invoice_url=url), KEY)
    assert "hosted_invoice_url" in caught.value.details["fields"]


@pytest.mark.parametrize(("field", "value"), [("customer_email", "not-an-email"), ("customer_email", None),
                                              ("amount_due", -1), ("amount_due", True), ("amount_due", "49"),
                                              ("currency", "US"), ("currency", None)])
def test_given_a_missing_or_wrong_fact_then_it_is_named(field: str, value: object) -> None:
    with pytest.raises(MissingData) as caught:
        rules.invoice_from_event(event(**{field: value}), KEY)
    assert field in caught.value.details["fields"]


@pytest.mark.parametrize(("tier", "attempt", "tone"), [
    (None, 1, "gentle"), ("standard", 2, "standard"), ("priority", 2, "gentle"), ("priority", 3, "firm"),
    ("community", 4, "firm"), ("standard", 0, "gentle"),
])
def test_given_tier_and_attempts_then_the_tone(tier: str | None, attempt: int, tone: str) -> None:
    assert rules.tone_for(tier, attempt) == tone


def draft(opening: str = "Your payment did not go through.", closing: str = "Please update your card.",
          decision: dict[str, Any] | None = None) -> Draft:
    return Draft(tone="standard", opening=opening, closing=closing, decided_by="ai", template=False,
                 decision=decision)


def test_given_clean_model_paragraphs_then_they_are_sent_with_code_s_facts_between() -> None:
    invoice = rules.invoice_from_event(event(), KEY)
    message = rules.compose(invoice, Customer(found=True, name="Ada Lovelace"), draft())
    assert not message.template and message.reasons == []
    assert message.text == (
        "Hi Ada Lovelace,\n\nYour payment did not go through.\n\nAmount due: USD 49.00\nDue date: 2025-12-08\n"
        f"Pay the invoice or update your payment method: {invoice.hosted_invoice_url}\n\nPlease update your card."
        "\n\nThe billing team\n")
    assert f'href="{invoice.hosted_invoice_url}"' in message.html


@pytest.mark.parametrize(("opening", "closing", "rule"), [
    ("You owe $49 now.", "Thanks.", "outsider_text:opening:amount"),
    ("Payment failed.", "Pay at https://evil.example/pay", "outsider_text:closing:link"),
    ("Payment failed.", "We will waive the late fee.", "outsider_text:closing:commitment"),
])
def test_given_a_model_paragraph_that_says_what_only_code_may_then_the_template_is_sent(
        opening: str, closing: str, rule: str) -> None:
    invoice = rules.invoice_from_event(event(), KEY)
    message = rules.compose(invoice, Customer(found=False), draft(opening, closing))
    assert message.template and rule in message.reasons
    assert opening not in message.text and closing not in message.text
    assert rules.TEMPLATES["standard"][0] in message.text


def test_given_a_decision_handed_to_a_person_then_the_template_is_sent() -> None:
    invoice = rules.invoice_from_event(event(), KEY)
    message = rules.compose(invoice, Customer(found=False),
                            draft(decision={"decision": "draft_dunning", "escalation": "low_confidence"}))
    assert message.template and message.reasons == ["ai_escalated:draft_dunning:low_confidence"]


def test_given_a_name_that_is_no_name_then_the_greeting_names_no_one() -> None:
    invoice = rules.invoice_from_event(event(customer_name="visit evil.example now"), KEY)
    message = rules.compose(invoice, Customer(found=False), draft())
    assert message.text.startswith("Hi there,")


def test_given_the_escalation_then_customer_success_gets_the_ids_not_the_customer_s_address() -> None:
    invoice = rules.invoice_from_event(event(), KEY)
    subject, text = rules.escalation_text(invoice, "run-1", 2)
    assert "A1B2C3D4-0007" in subject and "run-1" in text and "2 reminder" in text
    assert invoice.customer_email not in text


@pytest.mark.parametrize("payload", [{}, {"data": None}, {"data": {"object": {"id": "ch_1"}}},
                                     {"data": {"object": {"id": "in_" + "x" * 200}}}])
def test_given_an_event_with_no_invoice_then_no_key(payload: dict[str, Any]) -> None:
    assert invoice_key(payload) is None
