"""The approval email and the pages behind its link. Every value shown is HTML-escaped.

What an approver is shown is the workflow's own :class:`ApprovalView` (``Workflow.approval_view``, built from the
run's state when the wait asks for the approval): a title, facts written by code, outsiders' texts and what the run
would send. This module names no workflow; it lays any view out the same way.

Outsider text (a customer's or a prospect's words, a CRM field, a model's words) is marked as such wherever an
approver reads it: in the email's text part it is one-lined or quoted with ``> `` under a label that says whose
words they are, below the email's own call to action (the real link comes first); in HTML it sits in a marked
block. No outsider text can pass for the email's own words or its link.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from pydantic import BaseModel, Field, ValidationError

from interlock.approvals import ApprovalRecord, ApprovalStatus
from interlock.outgoing import one_line, quoted

# Answers that show an approval must not be cached, leak their URL, or be framed.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}

# Fits a 390 px phone: nothing is wider than the screen (long unbroken words and URLs wrap anywhere, the
# definition list becomes one column on narrow screens, pre blocks wrap).
_STYLE = (
    "*,*::before,*::after{box-sizing:border-box}"
    "html{-webkit-text-size-adjust:100%;text-size-adjust:100%}"
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2328;"
    "overflow-wrap:anywhere;word-break:break-word}"
    "h1{font-size:1.6rem}dl{display:grid;grid-template-columns:minmax(0,10rem) minmax(0,1fr);gap:.4rem 1rem}"
    "dt{font-weight:600}dd{margin:0;min-width:0}"
    "pre{white-space:pre-wrap;overflow-wrap:anywhere;max-width:100%;overflow-x:auto;background:#f6f8fa;"
    "padding:1rem;border-radius:6px}"
    "table{display:block;max-width:100%;overflow-x:auto}img{max-width:100%;height:auto}"
    ".outsider{border-left:4px solid #bf8700;padding:0 0 0 .8rem;margin:.4rem 0 1rem}"
    ".outsider .label{font-size:.85rem;color:#7d4e00;font-weight:600;margin:0 0 .3rem}"
    ".cta{font-size:1.1rem;font-weight:600}"
    "form{display:inline-block;margin:0 1rem .6rem 0}button{font-size:1rem;padding:.6rem 1.4rem;"
    "border-radius:6px;border:1px solid #888;cursor:pointer}.approve{background:#1f883d;color:#fff}"
    ".reject{background:#cf222e;color:#fff}.note{color:#59636e}"
    "form.reply{display:block}textarea{width:100%;min-height:8rem;font:inherit;padding:.6rem;border-radius:6px;"
    "border:1px solid #888}.turn{margin:0 0 1rem}.who{font-size:.85rem;color:#59636e;margin:0 0 .2rem}"
    ".problem{color:#cf222e;font-weight:600}"
    "@media (max-width:30rem){body{margin:1rem auto}dl{grid-template-columns:minmax(0,1fr)}"
    "dd{margin-bottom:.4rem}}"
)

def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def html_page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<meta name=\"robots\" content=\"noindex\"><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>")


# -- what a workflow shows its approver (Workflow.approval_view) --------------------------------------------------


class QuotedText(BaseModel):
    """Someone else's words (a customer's, a prospect's, a model's), quoted under a label that says whose."""

    label: str
    text: str
    one_line: bool = False  # a header-like field (an address, a subject): shown on one line, bounded
    in_email: bool = True  # quoted in the email's text part as well (the page and the HTML part always show it)
    heading: str | None = None  # a section heading the page puts before it


class ShownText(BaseModel):
    """What the run would send as its own words if approved (a draft reply), shown as it would go out, under a
    heading, on the page and in the email's HTML part."""

    heading: str
    text: str


class ApprovalView(BaseModel):
    """What an approver is shown, built by the workflow's own code from its state; plain data the page and the email
    adapt. ``fields`` are facts written by code, as (label, value) pairs; outsiders' texts go in ``quoted``."""

    title: str  # the page's heading ("Approve this reply?")
    # The email's subject is "Approval needed: " and the title, or, when someone else's words say best what is to
    # be approved (a customer's subject), those words in quotes, on one line, cut at 80 characters.
    subject_quote: str | None = None
    summary: str | None = None  # the email's opening sentence (default: the title)
    fields: list[tuple[str, str]] = Field(default_factory=list)
    # Labels of fields the email's text part leaves out (the page and the HTML part show every field).
    page_only: list[str] = Field(default_factory=list)
    quoted: list[QuotedText] = Field(default_factory=list)
    shown: list[ShownText] = Field(default_factory=list)
    whose: str | None = None  # whose text the email quotes ("the customer's"); default: someone else's
    approved: str | None = None  # what the page says once approved (default: the run goes on)
    rejected: str | None = None  # what the page says once rejected


FIELD_LABEL_MAX_CHARS = 60
FIELD_VALUE_MAX_CHARS = 2000  # a value is code's words (a guardrail's reasons can run long), still one line
QUOTED_LABEL_MAX_CHARS = 80
QUOTED_LINE_MAX_CHARS = 300
QUOTED_EMAIL_MAX_CHARS = 1200
SUBJECT_QUOTE_MAX_CHARS = 80
SOMEONE_ELSES = "someone else's"  # whose text the email quotes, unless the view says
OTHERS_TEXTS_ARE = "others' texts are"
_NO_VIEW = ApprovalView(title="Approve this?")


def view_of(record: ApprovalRecord) -> ApprovalView:
    """The view the workflow built for this approval (``context["view"]``); a bare one (the run, the link's expiry)
    if it built none or the record holds no valid one."""
    try:
        return ApprovalView.model_validate(record.context.get("view"))
    except ValidationError:
        return _NO_VIEW


def _title(view: ApprovalView) -> str:
    return one_line(view.title or "Approve this?", 120)


def progress(record: ApprovalRecord) -> str:
    """How far a request asking several approvers is: "1 of 2 approvals"."""
    return f"{record.approvals} of {record.required} approvals"


def _quorum_field(record: ApprovalRecord, in_email: bool) -> list[tuple[str, str]]:
    if record.required <= 1:
        return []
    if in_email:
        return [("Approvals needed", f"{record.required} different approvers; any rejection ends it")]
    return [("Approvals", progress(record))]


def _fields(record: ApprovalRecord, view: ApprovalView, *, email_text: bool = False,
            in_email: bool = False) -> list[tuple[str, str]]:
    fields = [(one_line(label, FIELD_LABEL_MAX_CHARS), one_line(value, FIELD_VALUE_MAX_CHARS))
              for label, value in view.fields if not (email_text and label in view.page_only)]
    return [("Run", record.run_id), *_quorum_field(record, in_email or email_text), *fields,
            ("Link expires", when(record.deadline))]


def _label(q: QuotedText) -> str:
    return one_line(q.label, QUOTED_LABEL_MAX_CHARS)


def outsider_html(label: str, text: str, block: bool = False) -> str:
    """Outsider text in a marked block that says whose words they are."""
    inner = f"<pre>{escape(text)}</pre>" if block else f"<div>{escape(one_line(text, QUOTED_LINE_MAX_CHARS))}</div>"
    return f'<div class="outsider"><p class="label">{escape(label)}</p>{inner}</div>'


def _summary(record: ApprovalRecord, view: ApprovalView, *, in_email: bool = False) -> str:
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v or '—')}</dd>"
                 for k, v in _fields(record, view, in_email=in_email))
    quotes = "".join((f"<h2>{escape(one_line(q.heading, 120))}</h2>" if q.heading else "")
                     + outsider_html(f"{_label(q)}:", q.text, block=not q.one_line) for q in view.quoted)
    shown = "".join(f"<h2>{escape(one_line(s.heading, 120))}</h2><pre>{escape(s.text)}</pre>" for s in view.shown)
    return f"<dl>{dl}</dl>{quotes}{shown}"


def _quoted_text(q: QuotedText) -> str:
    text = one_line(q.text, QUOTED_LINE_MAX_CHARS) if q.one_line else q.text
    return f"{_label(q)}:\n{quoted(text, QUOTED_EMAIL_MAX_CHARS)}\n"


def pending(record: ApprovalRecord) -> str:
    buttons = (
        '<form method="post"><input type="hidden" name="decision" value="approve">'
        '<button class="approve" type="submit">Approve</button></form>'
        '<form method="post"><input type="hidden" name="decision" value="reject">'
        '<button class="reject" type="submit">Reject</button></form>'
    )
    view = view_of(record)
    quorum = (f'<p class="note">This request needs {record.required} different approvers ({escape(progress(record))} '
              "so far); any one rejection ends it.</p>") if record.required > 1 else ""
    return html_page(_title(view), _summary(record, view) + quorum + buttons +
                 '<p class="note">Opening this page changes nothing; only a button decides, once.</p>')


def _still_waiting(record: ApprovalRecord) -> bool:
    return record.required > 1 and record.approvals < record.required


def decided(status: ApprovalStatus, record: ApprovalRecord, just_now: bool) -> str:
    if status is ApprovalStatus.CLOSED:
        return closed(record)
    word = "approved" if status is ApprovalStatus.APPROVED else "rejected"
    waiting = status is ApprovalStatus.APPROVED and _still_waiting(record)
    if just_now:
        if waiting:
            more = record.required - record.approvals
            return html_page("Thank you: approved",
                         f"<p>Your approval is counted: {escape(progress(record))}. The request waits for {more} "
                         f"more approver{'s' if more > 1 else ''}; any rejection ends it.</p>")
        view = view_of(record)
        said = view.approved if status is ApprovalStatus.APPROVED else view.rejected
        return html_page(f"Thank you: {word}",
                     f"<p>{escape(said or f'You {word} it. The run goes on with your decision.')}</p>")
    on = f" on {when(record.decided_at)}" if record.decided_at else ""
    so_far = (f" So far: {escape(progress(record))}; the request waits for the others."
              if waiting else "")
    return html_page("Already decided",
                 f"<p>This request was already {word}{on}. Nothing was changed.{so_far}</p>")


def closed(record: ApprovalRecord) -> str:
    """A link whose approver did not decide, of a request others' decisions already ended."""
    ended = ("approved by enough approvers" if record.approvals >= record.required
             else "rejected by another approver")
    return html_page("This approval is closed",
                 f"<p>The request was already {ended}, so this link no longer works. Nothing was changed.</p>")


def expired() -> str:
    return html_page("This link has expired",
                 "<p>The approval window has closed and the run was escalated. Nothing was changed.</p>")


def unknown() -> str:
    return html_page("Unknown link",
                 "<p>This approval link is not valid. Check that you copied the whole link.</p>")


def unavailable() -> str:
    return html_page("Please try again",
                 "<p>Your decision could not be delivered just now, so nothing was decided. "
                 "Go back and press the button again in a moment.</p>")


def bad_decision() -> str:
    return html_page("Nothing decided", "<p>Use the Approve or Reject button on the approval page.</p>")


def email(record: ApprovalRecord, link: str) -> tuple[str, str, str]:
    """The approval email: subject, text part, HTML part. The real link comes first, before any outsider text;
    in the text part outsiders' words are quoted (``> ``) under a label saying whose they are, in the HTML part
    they sit in marked blocks."""
    view = view_of(record)
    title = _title(view)
    opening = one_line(view.summary or title, 300)
    whose = one_line(view.whose, 60) if view.whose else None
    facts = "".join(f"{label}: {value}\n" for label, value in _fields(record, view, email_text=True))
    quotes = "".join(_quoted_text(q) for q in view.quoted if q.in_email)
    text = (
        f"{opening}\n\n"
        f"Review and decide here (the link works once and expires {when(record.deadline)}):\n{link}\n\n"
        f"This link is the only one in this email from Interlock. Everything below a \"> \" is "
        f"{whose or SOMEONE_ELSES} text, quoted as they wrote it: do not follow links in it.\n\n"
        f"{facts}\n{quotes}"
    )
    html = html_page("Approval needed",
                 f'<p class="cta"><a href="{escape(link)}">Review and decide</a> (the link works once).</p>'
                 f"<p>{escape(opening)} This link is the only one in this email from Interlock; "
                 f"{f'{escape(whose)} text is' if whose else OTHERS_TEXTS_ARE} quoted in the marked blocks.</p>"
                 f"{_summary(record, view, in_email=True)}")
    # One line: a subject may carry an outsider's CR/LF, which no mail header may hold (and which would crash the
    # approval request instead of reaching the approver). In quotes: someone else's words, not ours.
    quote = view.subject_quote
    subject = f"“{one_line(quote, SUBJECT_QUOTE_MAX_CHARS)}”" if quote else one_line(title, 100)
    return f"Approval needed: {subject}", text, html
