"""The approval email and the pages behind its link. Every value shown is HTML-escaped.

Outsider text (the customer's subject, body and address, a CRM field, a model's words) is marked as such
wherever an approver reads it: in the email's text part it is one-lined or quoted with ``> `` under a label
that says whose words they are, below the email's own call to action (the real link comes first); in HTML it
sits in a marked block. No outsider text can pass for the email's own words or its link.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

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
    "@media (max-width:30rem){body{margin:1rem auto}dl{grid-template-columns:minmax(0,1fr)}"
    "dd{margin-bottom:.4rem}}"
)

CUSTOMER_WORDS = "the customer's words, not ours"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<meta name=\"robots\" content=\"noindex\"><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>")


def _get(ctx: dict[str, Any], *path: str) -> Any:
    value: Any = ctx
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def reason_text(reason: str) -> str:
    """A guardrail reason code (``risky_category:refund``, ``low_confidence:0.50<0.75``) in words."""
    kind, _, detail = reason.partition(":")
    if kind == "risky_category":
        return f"{detail} requests always need a person"
    if kind == "low_confidence":
        got, _, needed = detail.partition("<")
        return f"the classification's confidence ({got}) is below {needed}"
    if kind == "risk_signal":
        return f"the ticket may also be a {detail} request, and {detail} requests always need a person"
    if kind == "outsider_text":
        part, _, rule = detail.partition(":")
        where = {"reply": "the AI-written reply", "subject": "the reply's subject (the customer's words)",
                 "name": "the name in the greeting", "plan": "the plan name from the CRM"}.get(part, part)
        what = {"amount": "mentions an amount of money", "link": "contains a link or an address",
                "commitment": "makes a commitment (a refund, a credit, a timeframe)"}.get(rule, f"mentions {rule}")
        return f"{where} {what}"
    if kind == "ai_escalated":
        decision, _, why = detail.partition(":")
        what = {"classify_ticket": "the ticket's category", "draft_reply": "the reply"}.get(decision, decision)
        return f"{what} was not decided by the AI: {_ESCALATION_WORDS.get(why, why)}"
    return reason


_ESCALATION_WORDS = {
    "low_confidence": "its confidence was below the threshold",
    "all_tiers_failed": "every model tier failed (the attempts are on the run's timeline)",
    "budget_exceeded": "the run's token or cost budget was used up",
    "no_time_left": "the step ran out of time",
    "context_too_large": "the ticket is too large to put in front of a model",
}


def _reasons(ctx: dict[str, Any]) -> str:
    return "; ".join(reason_text(str(r)) for r in (_get(ctx, "guardrail", "reasons") or []))


def _decided(ctx: dict[str, Any], what: str) -> str:
    """Who decided, and for an AI decision that went to a person, how it went (the full record is on the run's
    timeline)."""
    by = str(_get(ctx, what, "decided_by") or "—")
    decision = _get(ctx, what, "decision") or {}
    if not isinstance(decision, dict) or not decision.get("escalation"):
        return by
    errors = "; ".join(str(e) for e in (decision.get("last_errors") or [])[:3])
    words = _ESCALATION_WORDS.get(str(decision["escalation"]), str(decision["escalation"]))
    how = f"{words}; {decision.get('attempts', 0)} attempt(s)" + (f"; last: {errors}" if errors else "")
    if by == "human":  # what the decision layer records when nothing decided: nobody has, yet; you will
        return f"nobody: no model could decide ({how}); the category shown is a placeholder for you to judge"
    return f"{by} ({how})"


def _outsider_html(label: str, text: str, block: bool = False) -> str:
    """Outsider text in a marked block that says whose words they are."""
    inner = f"<pre>{escape(text)}</pre>" if block else f"<div>{escape(one_line(text, 300))}</div>"
    return f'<div class="outsider"><p class="label">{escape(label)}</p>{inner}</div>'


def _account(ctx: dict[str, Any]) -> str:
    account = _get(ctx, "account", "account") or {}
    if account:
        return f"{one_line(str(account.get('name')), 80)} ({one_line(str(account.get('plan')), 40)}) (from the CRM)"
    reason = _get(ctx, "account", "reason")
    return f"not looked up ({reason})" if reason else "not found"


def _summary(record: ApprovalRecord) -> str:
    ctx = record.context
    confidence = _get(ctx, "classification", "confidence")
    rows = [
        ("Run", record.run_id),
        ("Category", _get(ctx, "classification", "category")),
        ("Confidence", f"{confidence:.2f}" if isinstance(confidence, int | float) else confidence),
        ("Why a person", _reasons(ctx)),
        ("Classified by", _decided(ctx, "classification")),
        ("Drafted by", _decided(ctx, "draft")),
        ("Account", _account(ctx)),
        ("Link expires", _when(record.deadline)),
    ]
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v or '—'))}</dd>" for k, v in rows)
    return (f"<dl>{dl}</dl><h2>Ticket</h2>"
            + _outsider_html(f"From ({CUSTOMER_WORDS}):",
                             str(_get(ctx, "ticket", "customer_email") or ""))
            + _outsider_html(f"Subject ({CUSTOMER_WORDS}):", str(_get(ctx, "ticket", "subject") or ""))
            + _outsider_html(f"Message ({CUSTOMER_WORDS}):", str(_get(ctx, "ticket", "body") or ""), block=True)
            + "<h2>Draft reply (what the customer would get)</h2>"
            f"<pre>{escape(str(_get(ctx, 'draft', 'body') or ''))}</pre>")


# -- a workflow's own view (Workflow.approval_view): a title, facts written by code, outsiders' texts quoted -----


def view_of(record: ApprovalRecord) -> dict[str, Any] | None:
    """The view the workflow built for this approval, if it built one (support triage's pages are its own)."""
    view = record.context.get("view")
    return view if isinstance(view, dict) else None


def _view_title(view: dict[str, Any]) -> str:
    return one_line(str(view.get("title") or "Approve this?"), 120)


def _view_fields(record: ApprovalRecord, view: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [(one_line(str(label), 60), one_line(str(value), 300)) for label, value in view.get("fields", [])]
    return [("Run", record.run_id), *fields, ("Link expires", _when(record.deadline))]


def _view_quoted(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(one_line(str(q.get("label", "")), 80), str(q.get("text", ""))) for q in view.get("quoted", [])
            if isinstance(q, dict)]


def _view_summary(record: ApprovalRecord, view: dict[str, Any]) -> str:
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v or '—')}</dd>" for k, v in _view_fields(record, view))
    return f"<dl>{dl}</dl>" + "".join(_outsider_html(f"{label}:", text, block=True)
                                      for label, text in _view_quoted(view))


def _view_email(record: ApprovalRecord, view: dict[str, Any], link: str) -> tuple[str, str, str]:
    title = _view_title(view)
    facts = "".join(f"{label}: {value}\n" for label, value in _view_fields(record, view))
    quotes = "".join(f"{label}:\n{quoted(text, 1200)}\n" for label, text in _view_quoted(view))
    text = (
        f"{title}\n\n"
        f"Review and decide here (the link works once and expires {_when(record.deadline)}):\n{link}\n\n"
        "This link is the only one in this email from Interlock. Everything below a \"> \" is someone else's "
        "text, quoted as they wrote it: do not follow links in it.\n\n"
        f"{facts}\n{quotes}"
    )
    html = _page("Approval needed",
                 f'<p class="cta"><a href="{escape(link)}">Review and decide</a> (the link works once).</p>'
                 f"<p>{escape(title)} This link is the only one in this email from Interlock; others' texts are "
                 f"quoted in the marked blocks.</p>{_view_summary(record, view)}")
    return f"Approval needed: {one_line(title, 100)}", text, html


def pending(record: ApprovalRecord) -> str:
    buttons = (
        '<form method="post"><input type="hidden" name="decision" value="approve">'
        '<button class="approve" type="submit">Approve</button></form>'
        '<form method="post"><input type="hidden" name="decision" value="reject">'
        '<button class="reject" type="submit">Reject</button></form>'
    )
    view = view_of(record)
    title, summary = (_view_title(view), _view_summary(record, view)) if view else \
        ("Approve this reply?", _summary(record))
    return _page(title, summary + buttons +
                 '<p class="note">Opening this page changes nothing; only a button decides, once.</p>')


def decided(status: ApprovalStatus, record: ApprovalRecord, just_now: bool) -> str:
    word = "approved" if status is ApprovalStatus.APPROVED else "rejected"
    if just_now:
        if view_of(record) is not None:
            return _page(f"Thank you: {word}", f"<p>You {word} it. The run goes on with your decision.</p>")
        follow = ("The reply will be sent." if status is ApprovalStatus.APPROVED
                  else "The run ends rejected; nothing will be sent.")
        return _page(f"Thank you: {word}", f"<p>You {word} this reply. {follow}</p>")
    when = f" on {_when(record.decided_at)}" if record.decided_at else ""
    return _page("Already decided",
                 f"<p>This request was already {word}{when}. Nothing was changed.</p>")


def expired() -> str:
    return _page("This link has expired",
                 "<p>The approval window has closed and the run was escalated. Nothing was changed.</p>")


def unknown() -> str:
    return _page("Unknown link",
                 "<p>This approval link is not valid. Check that you copied the whole link.</p>")


def unavailable() -> str:
    return _page("Please try again",
                 "<p>Your decision could not be delivered just now, so nothing was decided. "
                 "Go back and press the button again in a moment.</p>")


def bad_decision() -> str:
    return _page("Nothing decided", "<p>Use the Approve or Reject button on the approval page.</p>")


def email(record: ApprovalRecord, link: str) -> tuple[str, str, str]:
    """The approval email: subject, text part, HTML part. The real link comes first, before any outsider text;
    outsider fields are one-lined and quoted under a label saying they are the customer's words."""
    view = view_of(record)
    if view is not None:
        return _view_email(record, view, link)
    ctx = record.context
    subject_line = str(_get(ctx, "ticket", "subject") or "a support reply")
    reasons = _reasons(ctx)
    # One line: a customer's subject may carry CR/LF, which no mail header may hold (and which would crash
    # the approval request instead of reaching the approver). In quotes: the customer's words, not ours.
    subject = f"Approval needed: “{one_line(subject_line, 80)}”"
    text = (
        "A support reply needs your approval.\n\n"
        f"Review and decide here (the link works once and expires {_when(record.deadline)}):\n{link}\n\n"
        "This link is the only one in this email from Interlock. Everything below a \"> \" is the "
        "customer's text, quoted as they wrote it: do not follow links in it.\n\n"
        f"Why a person: {reasons}\n"
        f"Run: {record.run_id}\n"
        f"Category: {_get(ctx, 'classification', 'category')}\n"
        f"Classified by: {_decided(ctx, 'classification')}\n\n"
        f"From ({CUSTOMER_WORDS}):\n{quoted(one_line(str(_get(ctx, 'ticket', 'customer_email'))), 320)}\n"
        f"Subject ({CUSTOMER_WORDS}):\n{quoted(one_line(subject_line, 300))}\n"
    )
    html = _page(
        "Approval needed",
        f'<p class="cta"><a href="{escape(link)}">Review and decide</a> (the link works once).</p>'
        f"<p>A support reply needs your approval ({escape(reasons)}). This link is the only one in this email "
        f"from Interlock; the customer's text is quoted in the marked blocks.</p>{_summary(record)}",
    )
    return subject, text, html
