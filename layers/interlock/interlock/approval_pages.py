"""The approval email and the pages behind its link. Every value shown is HTML-escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from interlock.approvals import ApprovalRecord, ApprovalStatus

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

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2328}"
    "dl{display:grid;grid-template-columns:10rem 1fr;gap:.4rem 1rem}dt{font-weight:600}"
    "pre{white-space:pre-wrap;background:#f6f8fa;padding:1rem;border-radius:6px}"
    "form{display:inline-block;margin-right:1rem}button{font-size:1rem;padding:.6rem 1.4rem;border-radius:6px;"
    "border:1px solid #888;cursor:pointer}.approve{background:#1f883d;color:#fff}"
    ".reject{background:#cf222e;color:#fff}.note{color:#59636e}"
)


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
    if kind == "draft_mentions":
        return {"amount": "the AI-written reply mentions an amount of money",
                "link": "the AI-written reply contains a link or an address",
                "commitment": "the AI-written reply makes a commitment (a refund, a credit, a timeframe)"}.get(
            detail, f"the AI-written reply mentions {detail}")
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
    return f"{by} ({words}; {decision.get('attempts', 0)} attempt(s)" + (f"; last: {errors}" if errors else "") + ")"


def _summary(record: ApprovalRecord) -> str:
    ctx = record.context
    confidence = _get(ctx, "classification", "confidence")
    account = _get(ctx, "account", "account") or {}
    rows = [
        ("Run", record.run_id),
        ("From", _get(ctx, "ticket", "customer_email")),
        ("Subject", _get(ctx, "ticket", "subject")),
        ("Category", _get(ctx, "classification", "category")),
        ("Confidence", f"{confidence:.2f}" if isinstance(confidence, int | float) else confidence),
        ("Why a person", _reasons(ctx)),
        ("Classified by", _decided(ctx, "classification")),
        ("Drafted by", _decided(ctx, "draft")),
        ("Account", f"{account.get('name')} ({account.get('plan')})" if account else "not found"),
        ("Link expires", _when(record.deadline)),
    ]
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v or '—'))}</dd>" for k, v in rows)
    return (f"<dl>{dl}</dl><h2>Ticket</h2><pre>{escape(str(_get(ctx, 'ticket', 'body') or ''))}</pre>"
            f"<h2>Draft reply</h2><pre>{escape(str(_get(ctx, 'draft', 'body') or ''))}</pre>")


def pending(record: ApprovalRecord) -> str:
    buttons = (
        '<form method="post"><input type="hidden" name="decision" value="approve">'
        '<button class="approve" type="submit">Approve</button></form>'
        '<form method="post"><input type="hidden" name="decision" value="reject">'
        '<button class="reject" type="submit">Reject</button></form>'
    )
    return _page("Approve this reply?", _summary(record) + buttons +
                 '<p class="note">Opening this page changes nothing; only a button decides, once.</p>')


def decided(status: ApprovalStatus, record: ApprovalRecord, just_now: bool) -> str:
    word = "approved" if status is ApprovalStatus.APPROVED else "rejected"
    if just_now:
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
    ctx = record.context
    subject_line = str(_get(ctx, "ticket", "subject") or "a support reply")
    reasons = _reasons(ctx)
    # One line: a customer's subject may carry CR/LF, which no mail header may hold (and which would crash
    # the approval request instead of reaching the approver).
    subject = f"Approval needed: {' '.join(subject_line.split())[:80]}"
    text = (
        f"A support reply needs your approval ({reasons}).\n\n"
        f"Ticket: {subject_line}\nFrom: {_get(ctx, 'ticket', 'customer_email')}\nRun: {record.run_id}\n"
        f"Category: {_get(ctx, 'classification', 'category')}\n\n"
        f"Review and decide here (the link works once and expires {_when(record.deadline)}):\n{link}\n"
    )
    html = _page(
        "Approval needed",
        f"<p>A support reply needs your approval ({escape(reasons)}).</p>{_summary(record)}"
        f'<p><a href="{escape(link)}">Review and decide</a> (the link works once).</p>',
    )
    return subject, text, html
