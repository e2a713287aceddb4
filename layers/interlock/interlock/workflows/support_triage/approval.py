"""What the approver sees when a reply needs a person before it is sent.

``view(state)`` takes what the wait receives as the approval's context (``ticket``, ``classification``, ``account``,
``draft``, ``guardrail``: the automatic path's outputs) and returns the platform's
:class:`~interlock.approval_pages.ApprovalView`: why a person must decide, in words; who classified and who drafted,
and how an AI decision that went to a person went; the account found; the customer's address, subject and message,
quoted as the customer's words; and the draft reply, as the customer would get it. The state is read leniently (a
missing part shows as missing, never as an error): it is shown, not acted on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.approval_pages import ApprovalView, QuotedText, ShownText
from interlock.outgoing import one_line

CUSTOMER_WORDS = "the customer's words, not ours"

_ESCALATION_WORDS = {
    "low_confidence": "its confidence was below the threshold",
    "all_tiers_failed": "every model tier failed (the attempts are on the run's timeline)",
    "budget_exceeded": "the run's token or cost budget was used up",
    "no_time_left": "the step ran out of time",
    "context_too_large": "the ticket is too large to put in front of a model",
}
_PARTS = {"reply": "the AI-written reply", "subject": "the reply's subject (the customer's words)",
          "name": "the name in the greeting", "plan": "the plan name from the CRM"}
_RULES = {"amount": "mentions an amount of money", "link": "contains a link or an address",
          "commitment": "makes a commitment (a refund, a credit, a timeframe)"}
_DECISIONS = {"classify_ticket": "the ticket's category", "draft_reply": "the reply"}


def _get(ctx: Mapping[str, Any], *path: str) -> Any:
    value: Any = ctx
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _text(value: Any) -> str:
    """A value as the page shows it: nothing (shown as a dash) for a missing one."""
    return "" if value is None else str(value)


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
        return f"{_PARTS.get(part, part)} {_RULES.get(rule, f'mentions {rule}')}"
    if kind == "ai_escalated":
        decision, _, why = detail.partition(":")
        return f"{_DECISIONS.get(decision, decision)} was not decided by the AI: {_ESCALATION_WORDS.get(why, why)}"
    return reason


def _reasons(ctx: Mapping[str, Any]) -> str:
    return "; ".join(reason_text(str(r)) for r in (_get(ctx, "guardrail", "reasons") or []))


def _decided(ctx: Mapping[str, Any], what: str) -> str:
    """Who decided, and for an AI decision that went to a person, how it went (the full record is on the run's
    timeline)."""
    by = str(_get(ctx, what, "decided_by") or "—")
    decision = _get(ctx, what, "decision") or {}
    if not isinstance(decision, Mapping) or not decision.get("escalation"):
        return by
    errors = "; ".join(str(e) for e in (decision.get("last_errors") or [])[:3])
    words = _ESCALATION_WORDS.get(str(decision["escalation"]), str(decision["escalation"]))
    how = f"{words}; {decision.get('attempts', 0)} attempt(s)" + (f"; last: {errors}" if errors else "")
    if by == "human":  # what the decision layer records when nothing decided: nobody has, yet; you will
        return f"nobody: no model could decide ({how}); the category shown is a placeholder for you to judge"
    return f"{by} ({how})"


def _account(ctx: Mapping[str, Any]) -> str:
    account = _get(ctx, "account", "account") or {}
    if account:
        return f"{one_line(str(account.get('name')), 80)} ({one_line(str(account.get('plan')), 40)}) (from the CRM)"
    reason = _get(ctx, "account", "reason")
    return f"not looked up ({reason})" if reason else "not found"


def _confidence(ctx: Mapping[str, Any]) -> str:
    confidence = _get(ctx, "classification", "confidence")
    return f"{confidence:.2f}" if isinstance(confidence, int | float) else _text(confidence)


def view(state: Mapping[str, Any]) -> ApprovalView:
    subject = _text(_get(state, "ticket", "subject"))
    return ApprovalView(
        title="Approve this reply?",
        subject_quote=subject or "a support reply",  # the email's subject quotes the customer's
        summary="A support reply needs your approval.",
        fields=[
            ("Category", _text(_get(state, "classification", "category"))),
            ("Confidence", _confidence(state)),
            ("Why a person", _reasons(state)),
            ("Classified by", _decided(state, "classification")),
            ("Drafted by", _decided(state, "draft")),
            ("Account", _account(state)),  # a CRM field: on the page, never unquoted in the email's text
        ],
        page_only=["Confidence", "Drafted by", "Account"],
        quoted=[
            QuotedText(label=f"From ({CUSTOMER_WORDS})", text=_text(_get(state, "ticket", "customer_email")),
                       one_line=True, heading="Ticket"),
            QuotedText(label=f"Subject ({CUSTOMER_WORDS})", text=subject, one_line=True),
            QuotedText(label=f"Message ({CUSTOMER_WORDS})", text=_text(_get(state, "ticket", "body")),
                       in_email=False),
        ],
        shown=[ShownText(heading="Draft reply (what the customer would get)",
                         text=_text(_get(state, "draft", "body")))],
        whose="the customer's",
        approved="You approved this reply. The reply will be sent.",
        rejected="You rejected this reply. The run ends rejected; nothing will be sent.",
    )
