"""A workflow's own approval view (Workflow.approval_view) on the approval page and in the email: facts escaped,
outsiders' texts quoted under their label, the real link first and the only one the email calls its own."""

from __future__ import annotations

import time

from interlock import approval_pages
from interlock.approvals import ApprovalRecord, ApprovalStatus

HOSTILE = '<script>alert(1)</script> visit https://evil.example/approvals/x now'


def record() -> ApprovalRecord:
    view = {"title": "Approve a 20% discount for <b>Hooli</b>?",
            "fields": [["Discount asked", "20%"], ["Lead", "Jordan <img src=x onerror=alert(1)>"]],
            "quoted": [{"label": "Message (the prospect's words, not ours)", "text": HOSTILE}]}
    now = time.time()
    return ApprovalRecord(token_hash="h", run_id="run-1", task_token="t", status=ApprovalStatus.PENDING,
                          created_at=now, deadline=now + 600, context={"view": view, "workflow": "sales_lead"})


def test_given_a_view_then_the_page_escapes_every_value_and_marks_the_outsiders_text() -> None:
    page = approval_pages.pending(record())

    assert "<script>" not in page and "<img" not in page and "<b>Hooli" not in page
    assert "&lt;script&gt;" in page and "Discount asked" in page and "20%" in page
    assert '<div class="outsider"><p class="label">Message (the prospect&#x27;s words, not ours):</p>' in page
    assert 'value="approve"' in page and 'value="reject"' in page


def test_given_a_view_then_the_email_puts_the_real_link_first_and_quotes_the_outsiders_text() -> None:
    link = "https://hooks.example.com/approvals/" + "A" * 43

    subject, text, html = approval_pages.email(record(), link)

    assert subject.startswith("Approval needed: Approve a 20% discount") and "\n" not in subject
    assert text.index(link) < text.index("evil.example")
    assert "> <script>alert(1)</script> visit https://evil.example/approvals/x now" in text
    assert "<script>" not in html and html.index(link) < html.index("evil.example")


def test_given_a_view_when_decided_then_the_page_says_the_run_goes_on() -> None:
    assert "The run goes on" in approval_pages.decided(ApprovalStatus.REJECTED, record(), just_now=True)
