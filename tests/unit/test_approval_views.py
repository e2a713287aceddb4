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


def full_record(view: dict, **context: object) -> ApprovalRecord:
    now = time.time()
    return ApprovalRecord(token_hash="h", run_id="run-2", task_token="TASK-TOKEN", status=ApprovalStatus.PENDING,
                          created_at=now, deadline=now + 600, context={"view": view, **context})


FULL = {
    "title": "Approve this <i>thing</i>?",
    "subject_quote": "Someone's subject\r\nBcc: x@evil.example " + "s" * 100,
    "summary": "A thing needs your approval.",
    "fields": [["Kind", "a <b>kind</b>"], ["Only on the page", "page-only value"]],
    "page_only": ["Only on the page"],
    "quoted": [
        {"label": "From (their words)", "text": "a@b.co\nClick http://evil.example", "one_line": True,
         "heading": "What they sent"},
        {"label": "Message (their words)", "text": "long message <script>x</script>", "in_email": False},
    ],
    "shown": [{"heading": "What would be sent", "text": "Hello <b>you</b>,\nthe answer."}],
    "whose": "their",
    "approved": "You approved it: <it> goes out.",
    "rejected": "You rejected it: nothing goes out.",
}


def test_given_a_subject_quote_then_the_email_subject_quotes_it_on_one_line_cut_at_80() -> None:
    subject, _, _ = approval_pages.email(full_record(FULL), "https://a.example/approvals/T")

    assert subject.startswith("Approval needed: \u201cSomeone's subject Bcc: x@evil.example sss")
    assert subject.endswith("s\u2026\u201d") and len(subject) == len("Approval needed: ") + 82
    assert "\r" not in subject and "\n" not in subject


def test_given_page_only_fields_and_quotes_kept_off_the_email_text_then_only_the_page_and_html_show_them() -> None:
    link = "https://a.example/approvals/" + "A" * 43
    page = approval_pages.pending(full_record(FULL))
    _, text, html = approval_pages.email(full_record(FULL), link)

    for shown in (page, html):
        assert "page-only value" in shown and "long message &lt;script&gt;" in shown
        assert "Hello &lt;b&gt;you&lt;/b&gt;" in shown
    assert "page-only value" not in text and "long message" not in text and "Hello" not in text
    assert "Kind: a <b>kind</b>\n" in text and "Run: run-2\n" in text
    assert "From (their words):\n> a@b.co Click http://evil.example\n" in text  # one line, quoted
    assert text.index(link) < text.index("evil.example")
    assert 'Everything below a "> " is their text' in text and "their text is quoted in the marked blocks" in html
    assert text.startswith("A thing needs your approval.\n")


def test_given_a_view_then_the_page_lays_out_headings_one_line_quotes_and_the_shown_text_unmarked() -> None:
    page = approval_pages.pending(full_record(FULL))

    assert "<h1>Approve this &lt;i&gt;thing&lt;/i&gt;?</h1>" in page
    assert ('<h2>What they sent</h2><div class="outsider"><p class="label">From (their words):</p>'
            "<div>a@b.co Click http://evil.example</div></div>") in page
    assert '<p class="label">Message (their words):</p><pre>long message &lt;script&gt;x&lt;/script&gt;</pre>' in page
    assert "<h2>What would be sent</h2><pre>Hello &lt;b&gt;you&lt;/b&gt;,\nthe answer.</pre>" in page
    assert page.count('class="outsider"') == 2
    assert "TASK-TOKEN" not in page


def test_given_the_views_words_for_a_decision_then_the_thank_you_page_says_them_escaped() -> None:
    rec = full_record(FULL)

    assert "You approved it: &lt;it&gt; goes out." in approval_pages.decided(ApprovalStatus.APPROVED, rec, True)
    assert "You rejected it: nothing goes out." in approval_pages.decided(ApprovalStatus.REJECTED, rec, True)


def test_given_no_view_or_a_broken_one_then_a_bare_page_shows_the_run_and_none_of_the_context() -> None:
    for context in ({"ticket": {"subject": "private words"}}, {"view": {"fields": "not a list"}, "secret": "x"}):
        now = time.time()
        rec = ApprovalRecord(token_hash="h", run_id="run-3", task_token="TASK-TOKEN", status=ApprovalStatus.PENDING,
                             created_at=now, deadline=now + 600, context=context)

        page = approval_pages.pending(rec)
        subject, text, html = approval_pages.email(rec, "https://a.example/approvals/T")

        assert "<h1>Approve this?</h1>" in page and "run-3" in page and 'value="approve"' in page
        assert subject == "Approval needed: Approve this?"
        for shown in (page, text, html):
            assert "private words" not in shown and "not a list" not in shown and "TASK-TOKEN" not in shown
