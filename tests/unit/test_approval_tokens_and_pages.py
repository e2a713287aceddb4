"""Approval tokens, records and the pages behind the emailed link (no AWS). The pages are support triage's: its
approval view (workflows/support_triage/approval.py) as the approval page and email lay it out."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from interlock import approval_pages as pages
from interlock.approvals import (
    TOKEN_PATTERN,
    ApprovalRecord,
    ApprovalStatus,
    Decision,
    new_token,
    token_hash,
)
from interlock.workflows.support_triage.approval import reason_text, view

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def record(**context_overrides) -> ApprovalRecord:
    context = {
        "ticket": {"subject": "Refund please", "body": "I want my money back", "customer_email": "ada@example.com"},
        "classification": {"category": "refund", "confidence": 0.85},
        "account": {"found": True, "account": {"name": "Ada", "plan": "pro"}},
        "draft": {"body": "Hi Ada, ..."},
        "guardrail": {"reasons": ["risky_category:refund"]},
    }
    context.update(context_overrides)
    # What the wait's request_approval stores (interlock.kit.outcomes): the view the workflow builds from its state.
    return ApprovalRecord(token_hash="h" * 64, run_id="run-1", task_token="TASK-TOKEN-SECRET",
                          status=ApprovalStatus.PENDING, created_at=1_700_000_000.0,
                          deadline=1_700_000_000.0 + 3600,
                          context={"view": view(context).model_dump(mode="json"), "workflow": "support_triage"})


# -- tokens --------------------------------------------------------------------------------------------


def test_given_a_new_token_then_it_is_43_url_safe_characters():
    token = new_token()

    assert len(token) == 43
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert TOKEN_PATTERN.match(token)


def test_given_a_new_token_then_it_carries_256_bits():
    token = new_token()

    assert len(base64.urlsafe_b64decode(token + "=")) == 32


def test_given_many_new_tokens_then_they_are_all_different():
    assert len({new_token() for _ in range(1000)}) == 1000


def test_given_a_token_then_its_stored_hash_is_its_sha256_and_does_not_contain_it():
    token = new_token()

    digest = token_hash(token)

    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in digest
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


@pytest.mark.parametrize(
    "candidate",
    ["", "short", "a" * 42, "a" * 44, "a" * 42 + "=", "a" * 42 + "/", "a" * 42 + "+", "a" * 42 + ".",
     "../" + "a" * 40, "a" * 43 + "\n"],
)
def test_given_something_that_is_not_a_token_then_the_pattern_refuses_it(candidate):
    assert not TOKEN_PATTERN.match(candidate)


# -- record -------------------------------------------------------------------------------------------


def test_given_a_pending_record_past_its_deadline_then_it_is_effectively_expired():
    r = record()

    assert r.effective_status(r.deadline - 1) is ApprovalStatus.PENDING
    assert r.effective_status(r.deadline) is ApprovalStatus.EXPIRED
    assert r.effective_status(r.deadline + 1) is ApprovalStatus.EXPIRED


def test_given_a_decided_record_past_its_deadline_then_it_stays_decided():
    r = record().model_copy(update={"status": ApprovalStatus.APPROVED})

    assert r.effective_status(r.deadline + 1000) is ApprovalStatus.APPROVED


def test_decisions_map_to_statuses():
    assert Decision("approve").status is ApprovalStatus.APPROVED
    assert Decision("reject").status is ApprovalStatus.REJECTED
    with pytest.raises(ValueError):
        Decision("approved")


# -- pages ----------------------------------------------------------------------------------------------


def xss_record() -> ApprovalRecord:
    return record(
        ticket={"subject": XSS, "body": XSS, "customer_email": f"a{XSS}@example.com"},
        classification={"category": XSS, "confidence": XSS},
        account={"account": {"name": XSS, "plan": XSS}},
        draft={"body": XSS},
        guardrail={"reasons": [XSS]},
    )


def assert_escaped(html: str) -> None:
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html


def test_given_an_xss_payload_in_the_ticket_when_the_pending_page_renders_then_it_is_escaped():
    html = pages.pending(xss_record())

    assert_escaped(html)
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 3  # subject, body, draft at least


def test_given_an_xss_payload_when_the_email_renders_then_the_html_part_is_escaped():
    _subject, text, html = pages.email(xss_record(), "https://approvals.example.com/approvals/TOKEN")

    assert_escaped(html)
    assert "https://approvals.example.com/approvals/TOKEN" in text


def test_given_a_link_with_markup_when_the_email_renders_then_the_href_is_escaped():
    _, _, html = pages.email(record(), 'https://x.example/"><script>alert(1)</script>')

    assert "<script" not in html
    assert 'href="https://x.example/&quot;&gt;&lt;script&gt;' in html


def test_given_a_pending_record_when_its_page_renders_then_it_offers_post_forms_and_never_the_task_token():
    html = pages.pending(record())

    assert html.count('<form method="post">') == 2
    assert 'name="decision" value="approve"' in html
    assert 'name="decision" value="reject"' in html
    assert "TASK-TOKEN-SECRET" not in html
    assert '<meta name="robots" content="noindex">' in html


def test_given_a_record_when_the_email_renders_then_the_task_token_is_nowhere_in_it():
    subject, text, html = pages.email(record(), "https://a.example/approvals/T")

    assert "TASK-TOKEN-SECRET" not in subject + text + html
    assert subject == "Approval needed: \u201cRefund please\u201d"  # quoted: the customer's words


def test_given_a_record_when_the_email_renders_then_its_text_names_the_run_and_carries_the_link():
    rec = record()
    _, text, _ = pages.email(rec, "https://a.example/approvals/T")

    assert f"Run: {rec.run_id}" in text
    assert "https://a.example/approvals/T" in text


def test_given_a_very_long_subject_when_the_email_renders_then_the_subject_line_is_cut_at_80():
    subject, _, _ = pages.email(record(ticket={"subject": "s" * 300}), "https://a.example/approvals/T")

    assert subject == "Approval needed: \u201c" + "s" * 79 + "…\u201d"  # the ellipsis says it was cut


@pytest.mark.parametrize("evil", ["Hi\r\nBcc: attacker@evil.example", "line one\nline two", "tab\there\rcr"])
def test_given_a_subject_with_line_breaks_when_the_email_renders_then_the_subject_is_one_line(evil):
    subject, _, _ = pages.email(record(ticket={"subject": evil}), "https://a.example/approvals/T")

    assert "\r" not in subject and "\n" not in subject


def test_given_the_security_headers_then_they_forbid_caching_referrers_and_framing():
    h = pages.SECURITY_HEADERS

    assert h["Cache-Control"] == "no-store"
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["X-Frame-Options"] == "DENY"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert "default-src 'none'" in h["Content-Security-Policy"]


def test_given_a_decision_just_made_or_earlier_when_rendered_then_the_page_says_which():
    r = record().model_copy(update={"decided_at": 1_700_000_100.0})

    assert "You approved this reply" in pages.decided(ApprovalStatus.APPROVED, r, just_now=True)
    assert "nothing will be sent" in pages.decided(ApprovalStatus.REJECTED, r, just_now=True)
    earlier = pages.decided(ApprovalStatus.REJECTED, r, just_now=False)
    assert "already rejected on 2023-11-14 22:15 UTC" in earlier
    assert "<form" not in earlier


def test_the_expired_unknown_and_bad_decision_pages_offer_no_form():
    for html in (pages.expired(), pages.unknown(), pages.bad_decision()):
        assert "<form" not in html
        assert html.startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("risky_category:refund", "refund requests always need a person"),
        ("low_confidence:0.50<0.75", "the classification's confidence (0.50) is below 0.75"),
        ("something_new", "something_new"),
    ],
)
def test_given_a_guardrail_reason_code_when_shown_to_the_approver_then_it_reads_as_words(code, words):
    assert reason_text(code) == words


# -- outsider text in the approval email: quoted, marked, below the real link ------------------------------------

FORGED = ("Invoice question\n\n\nReview and decide here: http://evil.example/approvals/forged\n\n"
          "\x1b[2J")
REAL = "https://approvals.example.com/approvals/REAL"


def test_given_a_subject_that_imitates_the_call_to_action_when_the_email_renders_then_the_real_link_comes_first():
    _, text, _ = pages.email(record(ticket={"subject": FORGED, "body": "b", "customer_email": "a@b.co"}), REAL)

    assert text.index(REAL) < text.index("evil.example")
    lines = text.splitlines()
    (evil,) = [line for line in lines if "evil.example" in line]
    assert evil.startswith("> ")  # quoted, on one line
    assert not any(line.startswith("Review and decide here:") and "evil" in line for line in lines)
    above = lines[lines.index(evil) - 1]
    assert "the customer's words" in above
    assert "\x1b" not in text


def test_given_multi_line_outsider_fields_when_the_email_renders_then_every_outsider_line_is_quoted():
    ticket = {"subject": "a\nb\r\nc", "body": "x", "customer_email": "a@b.co\nClick http://evil.example"}
    _, text, _ = pages.email(record(ticket=ticket), REAL)

    for line in text.splitlines():
        if "evil.example" in line or line.strip() in {"b", "c"}:
            assert line.startswith("> "), line


def test_given_a_forged_call_to_action_when_the_html_email_renders_then_the_real_link_is_first_and_outsiders_marked():
    _, _, html = pages.email(record(ticket={"subject": FORGED, "body": FORGED, "customer_email": "a@b.co"}), REAL)

    assert html.index(REAL) < html.index("evil.example")
    assert html.count('href="') == 1  # the real link only: outsider text is escaped, never a link
    assert html.count('class="outsider"') == 3  # from, subject, message
    assert "the customer&#x27;s words, not ours" in html
    assert "\x1b" not in html.split("<pre>")[0]  # one-lined fields hold no control character


def test_given_a_classification_no_model_could_make_when_the_page_renders_then_it_does_not_claim_a_human_classified():
    rec = record(classification={"category": "other", "confidence": 0.0, "decided_by": "human",
                                 "decision": {"decision": "classify_ticket", "escalation": "all_tiers_failed",
                                              "attempts": 4}})

    html = pages.pending(rec)
    _, text, _ = pages.email(rec, REAL)

    for shown in (html, text):
        assert "Classified by" in shown
        assert "human" not in shown.split("Classified by", 1)[1][:200]
        assert "every model tier failed" in shown and "nobody" in shown


def test_the_page_fits_a_phone_screen():
    html = pages.pending(record(ticket={"subject": "s", "body": "x" * 500, "customer_email": "a@b.co"}))

    assert '<meta name="viewport" content="width=device-width,initial-scale=1">' in html
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "overflow-wrap:anywhere" in style
    assert "box-sizing:border-box" in style
    assert "pre{white-space:pre-wrap;overflow-wrap:anywhere;max-width:100%" in style
    assert "@media (max-width:30rem)" in style and "grid-template-columns:minmax(0,1fr)" in style
    assert "table{display:block;max-width:100%;overflow-x:auto}" in style


def test_given_the_approval_request_when_mailed_then_the_message_names_its_real_link_in_a_header():
    from interlock.approvals import APPROVAL_LINK_HEADER

    class Recording:
        headers: dict[str, str] = {}

        def send(self, sender, to, subject, text, html, headers=None):
            Recording.headers = dict(headers or {})
            return "m-1"

    class Store:
        def open(self, quorum):
            pass

        def put_link(self, link):
            pass

    class Timeline:
        def record(self, run_id, entry, **_):
            pass

    from interlock.approvals import ApprovalRequestInput, ApprovalService, RequestSettings

    service = ApprovalService(Store(), Timeline(), None)  # type: ignore[arg-type]
    data = ApprovalRequestInput(run_id="run-1", task_token="t", context={
        "ticket": {"subject": FORGED}, "classification": {}, "account": {}, "draft": {}, "guardrail": {"reasons": []}})
    service.request(data, RequestSettings("https://a.example", "ap@example.com", "s@example.com", 60), Recording())

    assert re.fullmatch(r"https://a\.example/approvals/[A-Za-z0-9_-]{43}", Recording.headers[APPROVAL_LINK_HEADER])
