"""Support ticket triage: validate, classify, fetch account, draft, guardrail, (approve), send.

The logic of the tasks of ``automatic.asl.json`` and ``wait.asl.json``; :mod:`.steps` hands each what its step
context provides, and the worker of its job runs it. Retries, waits and branching live in the ASL.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from interlock.connectors.crm import Account, Crm
from interlock.connectors.helpdesk import Helpdesk
from interlock.errors import MissingData, NotConfigured
from interlock.models import Envelope
from interlock.observability import count
from interlock.outgoing import OutsiderPart, clean_label, clean_name, one_line
from interlock.steps import StepInput
from interlock.workflows.support_triage.guardrail import GuardrailResult, evaluate
from interlock.workflows.support_triage.rules import (
    Classification,
    KeywordClassifier,
    TicketText,
    account_state,
    template_name,
    template_text,
)

if TYPE_CHECKING:
    from interlock.ai.context import SessionItem
    from interlock.ai.runner import DecisionRunner

REQUIRED_FIELDS = ("subject", "body", "customer_email")


class Turn(BaseModel):
    """An earlier message of the conversation the ticket belongs to (oldest first)."""

    author: str = Field(max_length=200)
    text: str
    at: str = ""


class Ticket(BaseModel):
    subject: str
    body: str
    customer_email: str
    customer_name: str | None = None
    thread: list[Turn] = Field(default_factory=list)


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
    decided_by: str = "template"
    template: str | None = None  # the template's name when the body came from one
    confidence: float | None = None
    decision: dict[str, Any] | None = None  # how the AI decision layer decided it, escalation included
    # Every part of subject and body that no vetted template and no person wrote (the model's paragraphs, the
    # customer's subject, a name, a CRM field): the guardrail checks each of them.
    outsider: list[OutsiderPart] = Field(default_factory=list)


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


def _ticket_for_model(ticket: Ticket) -> dict[str, Any]:
    # The customer's email address stays out of the prompt: no decision needs it.
    return {"subject": ticket.subject, "body": ticket.body, "customer_name": ticket.customer_name}


def _turns(ticket: Ticket) -> list[SessionItem]:
    from interlock.ai.context import SessionItem

    return [SessionItem(at=t.at, kind="turn", text=f"{t.author}: {t.text}") for t in ticket.thread]


def classify(data: TicketInput, runner: DecisionRunner, min_confidence: float,
             deadline: float | None = None) -> Classification:
    """The category decision; when no model could decide, category ``other`` at confidence 0, for a person.

    Whoever decided, the keyword rules also read the ticket: every category they find besides the chosen one
    (and every one a model reported) is a secondary category, which the guardrail acts on when it is risky."""
    from interlock.workflows.support_triage.decisions import CLASSIFY_TICKET  # the deciding steps only: cold start

    point = dataclasses.replace(CLASSIFY_TICKET, min_confidence=min_confidence)
    decision = runner.decide(point, data.run_id, {"ticket": _ticket_for_model(data.ticket)},
                             _turns(data.ticket), deadline, step="classify", attempt=data.attempt)
    keywords = KeywordClassifier().classify(TicketText(subject=data.ticket.subject, body=data.ticket.body))
    found = [keywords.category, *keywords.secondary_categories] if keywords.signals else []
    if decision.output is None:
        return Classification(category="other", confidence=0.0, summary=one_line(data.ticket.subject),
                              decided_by=decision.decided_by, decision=decision.summary(),
                              signals=keywords.signals, secondary_categories=[c for c in found if c != "other"])
    out = decision.output
    secondary = [c for c in dict.fromkeys([*out.secondary_categories, *found]) if c != out.category]
    return Classification(category=out.category, confidence=out.confidence, summary=out.summary,
                          decided_by=decision.decided_by, decision=decision.summary(), signals=keywords.signals,
                          secondary_categories=secondary)


def fetch_account(data: TicketInput, crm: Crm | None) -> AccountContext:
    if crm is None:
        return AccountContext(found=False, partial=True, reason="crm_not_configured")
    started = time.perf_counter()
    account = crm.find_account(data.ticket.customer_email)
    call = ToolCall(tool="crm.find_account", outcome="found" if account else "not_found",
                    latency_ms=round((time.perf_counter() - started) * 1000))
    return AccountContext(found=account is not None, account=account, tool_calls=[call])


def _subject(data: DraftInput) -> tuple[str, OutsiderPart]:
    """``Re: <the customer's subject>``, one line and bounded; the subject is the customer's words."""
    subject = one_line(data.ticket.subject)
    return f"Re: {subject}", OutsiderPart(part="subject", source="customer", text=subject)


def _greeting(data: DraftInput) -> tuple[str, list[OutsiderPart]]:
    """``Hi <name>,`` with the customer's name, else the CRM account's, when it is a clean name; else
    ``Hi there,``. A name that is not one (a paragraph, a link) is left out, not repaired."""
    account = data.account.account
    for source, value in (("customer", data.ticket.customer_name), ("crm", account.name if account else None)):
        name = clean_name(value)
        if name:
            return f"Hi {name},", [OutsiderPart(part="name", source=source, text=name)]
    return "Hi there,", []


def _letter(data: DraftInput, text: str, parts: list[OutsiderPart]) -> Draft:
    """The greeting and sign-off are code's; the paragraphs in between are the decision's. ``parts``: the
    outsider parts of ``text``; the subject's and the greeting's are added here."""
    subject, subject_part = _subject(data)
    greeting, name_parts = _greeting(data)
    return Draft(subject=subject, body=f"{greeting}\n\n{text.strip()}\n\nBest regards,\nSupport",
                 outsider=[subject_part, *name_parts, *parts])


def _template(data: DraftInput) -> tuple[str, str, list[OutsiderPart]]:
    """The vetted template's name and text for this ticket, the variant chosen by what the account lookup
    found, and its outsider part (the CRM's plan name, cleaned) if it has one."""
    category = data.classification.category
    account = data.account.account
    state = account_state(data.account.found, data.account.reason)
    plan = clean_label(account.plan) if account and state == "found" else None
    text = template_text(category, plan, state)
    parts = [OutsiderPart(part="plan", source="crm", text=plan)] if plan and plan in text else []
    return template_name(category, state), text, parts


def _template_draft(data: DraftInput, decision: dict[str, Any] | None) -> Draft:
    name, text, parts = _template(data)
    return _letter(data, text, parts).model_copy(update={"template": name, "decision": decision})


def draft_reply(data: DraftInput, runner: DecisionRunner, deadline: float | None = None) -> Draft:
    """The reply's paragraphs, decided; a run whose classification went to a person gets the template draft
    for the approver (no model call on a category nobody decided), as does a draft no model could write."""
    if data.classification.decided_by == "human":
        return _template_draft(data, None)
    from interlock.workflows.support_triage.decisions import DRAFT_REPLY  # the deciding steps only: cold start

    account = data.account.account
    request = {
        "ticket": _ticket_for_model(data.ticket),
        "classification": {"category": data.classification.category, "summary": data.classification.summary},
        "account": account.model_dump(mode="json", exclude={"account_id"}) if account else
        {"found": False, "reason": data.account.reason},
    }
    decision = runner.decide(DRAFT_REPLY, data.run_id, request, _turns(data.ticket), deadline,
                             step="draft_reply", attempt=data.attempt)
    if decision.output is None:
        return _template_draft(data, decision.summary())
    if decision.provider == "offline":  # the offline answer is the vetted template: its text, its parts
        name, text, parts = _template(data)
        template: str | None = name
    else:
        text, template = decision.output.text, None
        parts = [OutsiderPart(part="reply", source="model", text=text)]
    return _letter(data, text, parts).model_copy(update={
        "decided_by": decision.decided_by, "confidence": decision.output.confidence, "template": template,
        "decision": decision.summary()})


def guardrail(data: GuardrailInput, min_confidence: float) -> GuardrailResult:
    """Every rule over the classification, the decisions and every outsider part of the draft."""
    return evaluate(data.classification, min_confidence, data.draft.decision, data.draft.outsider)


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
