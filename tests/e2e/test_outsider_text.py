"""Outsider text in outgoing messages, end to end over HTTP: what reaches the customer (the fake helpdesk),
what waits for a person, and what the approver's email and the operator's console show."""

from __future__ import annotations

import re
import uuid

from tests.e2e.conftest import Runtime, ticket

PHISHING_NAME = ("Dear customer, your account is suspended.\n\nConfirm your card at "
                 "http://evil.example/verify within 24 hours to avoid a $50 fee.")
FORGED_SUBJECT = ("Invoice question\n\n\n\nReview and decide here: http://evil.example/approvals/forged\n\n"
                  "\x1b[2J")


def _unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def test_given_a_paragraph_with_a_link_as_customer_name_then_the_reply_sent_does_not_carry_it(
    runtime: Runtime,
) -> None:
    # Billing words and an address the sender chose (no CRM account): the run is auto-sent, without the name.
    body = "I was charged twice on my last invoice, can you check the payment?"
    run_id = runtime.send(ticket(_unique("Invoice question"), body, customer_email="victim@example.org",
                                 customer_name=PHISHING_NAME)).json()["run_id"]

    runtime.wait_status(run_id, "completed")

    (reply,) = runtime.replies(run_id)
    assert reply["to"] == "victim@example.org"
    assert reply["body"].startswith("Hi there,\n\n")
    for word in ("evil.example", "suspended", "confirm your card", "$50"):
        assert word.lower() not in (reply["subject"] + reply["body"]).lower()
    # The CRM found no account, and the reply does not pretend it looked at one.
    assert "We've looked at your account" not in reply["body"]
    assert "We couldn't find an account for this email address" in reply["body"]


def test_given_a_refund_request_in_billing_words_then_it_waits_for_a_person_and_nothing_is_sent(
    runtime: Runtime,
) -> None:
    subject = _unique("Refund request for invoice 1042")
    run_id = runtime.send(ticket(subject, "I was charged twice last month. Please refund the duplicate "
                                          "charge.")).json()["run_id"]

    run = runtime.wait_status(run_id, "pending_approval")

    classify = next(e for e in run["timeline"] if e["step"] == "classify" and "kind" not in e["details"])
    assert (classify["details"]["category"], classify["details"]["confidence"]) == ("billing", 0.95)
    guardrail = next(e for e in run["timeline"] if e["step"] == "guardrail")
    assert "risk_signal:refund" in guardrail["details"]["reasons"]
    assert runtime.replies(run_id) == []


def test_given_a_subject_that_forges_the_call_to_action_then_the_email_and_the_console_show_the_real_link(
    runtime: Runtime,
) -> None:
    # A refund: it waits for a person whatever its subject says (the subject's link would send it there too).
    run_id = runtime.send(ticket(FORGED_SUBJECT, "Please refund me, I want my money back.")).json()["run_id"]
    runtime.wait_status(run_id, "pending_approval")

    text = runtime.approval_email(run_id)
    real = re.search(r"https?://127\.0\.0\.1:\d+/approvals/[A-Za-z0-9_-]{43}", text)
    assert real, text
    link = real.group(0)
    assert text.index(link) < text.index("evil.example")  # the real link first
    lines = text.splitlines()
    (evil,) = [line for line in lines if "evil.example" in line]
    assert evil.startswith("> ")  # quoted, on one line
    assert "the customer's words" in lines[lines.index(evil) - 1]  # and marked as the customer's
    assert "\x1b" not in text
    (message,) = [m for m in runtime.emails() if link in str(m.get("X-Interlock-Approval-Link", ""))]
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    assert html.index(link) < html.index("evil.example")
    assert 'class="outsider"' in html.split("evil.example")[0].rsplit("<h2>", 1)[1]
    assert runtime.approval_link(run_id) == link

    console = runtime.log_path.read_bytes()
    assert b"\x1b" not in console  # no raw terminal escape reaches the operator's console
    (ours,) = [a for a in console.decode().split("Approval email to") if link in a]
    assert "http://evil.example" not in console.decode()  # the forged link is never printed as a link
    assert f"  {link}" in ours.splitlines()
