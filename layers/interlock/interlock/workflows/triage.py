"""Support ticket triage: validate, classify, fetch account, draft, guardrail, (approve), send.

Each function here is one task of ``infra/statemachines/support_triage.asl.json``; its handler module
in ``functions/`` only wires it to the Lambda event. Retries, waits and branching live in the ASL.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from interlock.connectors.crm import Account, Crm
from interlock.connectors.helpdesk import Helpdesk
from interlock.decisions import Classification, TicketClassifier, TicketText
from interlock.errors import MissingData, NotConfigured, parse_cause
from interlock.guardrail import GuardrailResult, evaluate
from interlock.models import EntryState, Envelope, TimelineEntry
from interlock.observability import count
from interlock.steps import StepInput
from interlock.timeline import TimelineStore

REQUIRED_FIELDS = ("subject", "body", "customer_email")


class Ticket(BaseModel):
    subject: str
    body: str
    customer_email: str
    customer_name: str | None = None


class ToolCall(BaseModel):
    """A call to a system of record, as the timeline shows it (failed calls leave ``retried`` entries)."""

    tool: str
    outcome: str
    latency_ms: int


class AccountContext(BaseModel):
    found: bool
    partial: bool = False
    reason: str | None = None
    account: Account | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)


class Draft(BaseModel):
    subject: str
    body: str
    template: str


class Delivery(BaseModel):
    reply_id: str
    to: str
    tool_calls: list[ToolCall] = Field(default_factory=list)


class ValidateInput(StepInput):
    envelope: Envelope


class TicketInput(StepInput):
    ticket: Ticket


class DraftInput(StepInput):
    ticket: Ticket
    classification: Classification
    account: AccountContext


class GuardrailInput(StepInput):
    classification: Classification
    account: AccountContext
    draft: Draft


class SendInput(StepInput):
    ticket: Ticket
    draft: Draft
    classification: Classification


class OutcomeInput(StepInput):
    kind: str = Field(pattern="^(partial|failed|rejected|escalated)$")
    step: str | None = None
    error: dict[str, Any] | None = None
    approval: dict[str, Any] | None = None


def _looks_like_email(value: str) -> bool:
    local, _, domain = value.partition("@")
    return bool(local) and "." in domain and " " not in value


def validate(data: ValidateInput) -> Ticket:
    fields = data.envelope.payload.get("data")
    fields = fields if isinstance(fields, dict) else {}
    missing = [f for f in REQUIRED_FIELDS if not str(fields.get(f) or "").strip()]
    if missing:
        raise MissingData(f"the ticket is missing {', '.join(missing)}", step="validate", fields=missing)
    if not _looks_like_email(str(fields["customer_email"])):
        raise MissingData("customer_email is not an email address", step="validate",
                          fields=["customer_email"])
    try:
        return Ticket.model_validate(fields)
    except ValidationError as exc:
        bad = sorted({str(e["loc"][0]) for e in exc.errors()})
        raise MissingData(f"the ticket has invalid {', '.join(bad)}", step="validate", fields=bad) from exc


def classify(data: TicketInput, classifier: TicketClassifier) -> Classification:
    return classifier.classify(TicketText(subject=data.ticket.subject, body=data.ticket.body))


def fetch_account(data: TicketInput, crm: Crm | None) -> AccountContext:
    if crm is None:
        return AccountContext(found=False, partial=True, reason="crm_not_configured")
    started = time.perf_counter()
    account = crm.find_account(data.ticket.customer_email)
    call = ToolCall(tool="crm.find_account", outcome="found" if account else "not_found",
                    latency_ms=round((time.perf_counter() - started) * 1000))
    return AccountContext(found=account is not None, account=account, tool_calls=[call])


TEMPLATES: dict[str, str] = {
    "billing": "Thanks for reaching out about billing. We've looked at your account{plan} and a member of "
               "our billing team will confirm the details of your invoice within one business day.",
    "refund": "We've received your refund request. Refunds are reviewed by our team, and we'll confirm "
              "the outcome and the amount shortly.",
    "technical": "Sorry for the trouble. We've logged the problem you describe and our engineers are "
                 "looking into it; we'll update you as soon as we know more.",
    "account": "We can help with your account. For your security, please use the 'Forgot password' "
               "link on the sign-in page; if that doesn't work, reply here and we'll verify you.",
    "legal": "Thank you for your message. It has been passed to our legal team, who will respond formally.",
    "security": "Thank you for reporting this. Our security team has been alerted and will contact you "
                "directly; please do not share credentials over email.",
    "other": "Thanks for getting in touch. We've received your message and will reply shortly.",
}


def draft_reply(data: DraftInput) -> Draft:
    account = data.account.account
    name = data.ticket.customer_name or (account.name if account else None) or "there"
    plan = f" on the {account.plan} plan" if account and account.plan else ""
    text = TEMPLATES[data.classification.category].format(plan=plan)
    body = f"Hi {name},\n\n{text}\n\nBest regards,\nSupport"
    return Draft(subject=f"Re: {data.ticket.subject}", body=body, template=f"{data.classification.category}.v1")


def guardrail(data: GuardrailInput, min_confidence: float) -> GuardrailResult:
    return evaluate(data.classification, min_confidence)


def send_reply(data: SendInput, helpdesk: Helpdesk | None) -> Delivery:
    if helpdesk is None:
        raise NotConfigured("no helpdesk is configured (INTERLOCK_HELPDESK_BASE_URL)", step="send_reply",
                            reason="helpdesk_not_configured")
    started = time.perf_counter()
    reply_id = helpdesk.send_reply(data.run_id, data.ticket.customer_email, data.draft.subject, data.draft.body)
    call = ToolCall(tool="helpdesk.send_reply", outcome="sent",
                    latency_ms=round((time.perf_counter() - started) * 1000))
    count("RunsCompleted")
    return Delivery(reply_id=reply_id, to=data.ticket.customer_email, tool_calls=[call])


# -- outcomes that are not a step's success: recorded by the run recorder -----------------------------------

_OUTCOME_STATE = {
    "failed": EntryState.FAILED,
    "rejected": EntryState.REJECTED,
    "escalated": EntryState.ESCALATED,
}


def record_outcome(data: OutcomeInput, store: TimelineStore) -> dict[str, Any]:
    reason, details = parse_cause(data.error)
    if data.kind == "partial":
        store.record(
            data.run_id,
            TimelineEntry(state=EntryState.PROCESSING, step=data.step or "unknown", attempt=data.attempt,
                          details={"partial": True, "reason": reason, "continued_without": data.step, **details}),
        )
        return AccountContext(found=False, partial=True, reason=reason).model_dump(mode="json")
    if data.kind == "rejected":
        reason, details = "approver_rejected", {"approval": data.approval or {}}
    elif data.kind == "escalated" and reason == "timeout":
        reason = "approval_timed_out"
    store.record(
        data.run_id,
        TimelineEntry(state=_OUTCOME_STATE[data.kind], step="outcome", attempt=data.attempt,
                      details={"outcome": data.kind, "reason": reason, **details}),
    )
    count({"failed": "RunsFailed", "rejected": "RunsRejected", "escalated": "RunsEscalated"}[data.kind])
    return {"outcome": data.kind, "reason": reason}
