"""The recovery's steps: ``def step(data: <StepInput>, ctx: StepContext) -> <model>``.

Automatic path (Express): extract (validate) -> lookup_customer (query; its failure caught: the run goes on
partial) -> draft (decide) -> guardrail (validate) -> send_dunning (notify, once) -> the wait (Standard). The wait:
the platform's wait_for_event (registered by the invoice's correlation key) -> settle (validate: paid, voided,
uncollectible); at its timeout send_reminder (notify, once per reminder) and wait again; after the last reminder
escalate (notify customer success). Every email goes through ``ctx.once``: a repeated step never sends twice.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from interlock.errors import MissingData, NotConfigured
from interlock.kit.context import StepContext  # at run time: the worker resolves the steps' annotations
from interlock.observability import count
from interlock.outgoing import one_line
from interlock.workflows.payment_recovery import limits, rules
from interlock.workflows.payment_recovery.correlation import invoice_key
from interlock.workflows.payment_recovery.models import (
    Checked,
    CheckInput,
    Customer,
    Draft,
    DraftInput,
    Escalated,
    EscalateInput,
    Extracted,
    ExtractInput,
    GuardrailInput,
    LookupInput,
    Message,
    Notified,
    ReminderInput,
    Reminders,
    SendInput,
    Sent,
    Settled,
    SettleInput,
    WaitPolicy,
)

if TYPE_CHECKING:
    from interlock.connectors.crm import Crm

def _int_setting(ctx: StepContext, name: str) -> int:
    """A whole-number setting, read as `make run` and the synthesis check it (``limits.check_settings``)."""
    return ctx.setting_as(name, lambda raw: limits.whole_setting(name, raw))


# -- extract (validate) ------------------------------------------------------------------------------------------


def extract(data: ExtractInput, ctx: StepContext) -> Extracted:
    envelope = data.envelope
    if envelope.type != rules.FAILED_EVENT:
        raise MissingData(f"the recovery takes {rules.FAILED_EVENT} events", step="extract",
                          reason="unsupported_event", event_type=one_line(envelope.type, 80))
    key = invoice_key(envelope.payload)
    if key is None:
        raise MissingData("the event names no invoice", step="extract", fields=["data.object.id"])
    wait = WaitPolicy(seconds=_int_setting(ctx, "payment_wait_seconds"),
                      reminders=_int_setting(ctx, "payment_reminders"))
    return Extracted(invoice=rules.invoice_from_event(envelope.payload, key), wait=wait)


# -- lookup_customer (query) -------------------------------------------------------------------------------------


def lookup_customer(data: LookupInput, ctx: StepContext) -> Customer:
    crm: Crm | None = ctx.connector("crm")
    if crm is None:
        return Customer(found=False, partial=True, reason="crm_not_configured")
    account = crm.find_account(data.invoice.customer_email)
    if account is None:
        return Customer(found=False)
    return Customer(found=True, tier=account.tier, name=account.name)


# -- draft (decide) ------------------------------------------------------------------------------------------------


def draft(data: DraftInput, ctx: StepContext) -> Draft:
    """The tone is the rules'; the paragraphs are the decision's (offline: the tone's vetted template). When no model
    could write them, the template stands."""
    from interlock.workflows.payment_recovery.decisions import DRAFT_DUNNING  # the deciding step only: cold start

    tone = rules.tone_for(data.customer.tier, data.invoice.attempt_count)
    request = {"tone": tone, "tier": data.customer.tier or "unknown", "attempt_count": data.invoice.attempt_count,
               "customer_known": data.customer.found}
    decision = ctx.decisions.decide(DRAFT_DUNNING, data.run_id, request, (), ctx.deadline, step="draft",
                                    attempt=data.attempt)
    opening, closing = rules.TEMPLATES[tone]
    if decision.output is None or decision.provider == "offline":
        return Draft(tone=tone, opening=opening, closing=closing, decided_by=decision.decided_by
                     if decision.output is not None else "template", template=True, decision=decision.summary())
    return Draft(tone=tone, opening=decision.output.opening, closing=decision.output.closing,
                 decided_by=decision.decided_by, template=False, decision=decision.summary())


# -- guardrail (validate) ----------------------------------------------------------------------------------------


def guardrail(data: GuardrailInput, ctx: StepContext) -> Message:
    message = rules.compose(data.invoice, data.customer, data.draft)
    if message.reasons:
        count("GuardrailTemplateFallbacks")
    return message


# -- check_unpaid (validate) ---------------------------------------------------------------------------------------


def check_unpaid(data: CheckInput, ctx: StepContext) -> Checked:
    """Just before the email: has Stripe's next event for the invoice come already (a payment that went through
    while the run drafted, or an event delivered out of order)? Then nothing is sent, and the wait takes it at once."""
    from interlock.wiring import correlation

    event = correlation().arrived(data.invoice.correlation_key)
    return Checked(settled=event is not None, event_type=event.event_type if event else None)


# -- send_dunning, send_reminder, escalate (notify) ---------------------------------------------------------------


def _send(ctx: StepContext, to: str, subject: str, text: str, html: str) -> str:
    from interlock.approvals import SesMailer

    sender = ctx.setting("sender_email").strip()
    if not sender:
        raise NotConfigured("no sender address (sender_email)", step=ctx.step, reason="sender_not_configured")
    return SesMailer().send(sender, to, subject, text, html)


def send_dunning(data: SendInput, ctx: StepContext) -> Sent:
    """The dunning email, once per run."""
    message = data.message
    return ctx.once("dunning_email", lambda key: Sent(
        message_id=_send(ctx, data.invoice.customer_email, message.subject, message.text, message.html),
        tone=message.tone, template=message.template), Sent)


def send_reminder(data: ReminderInput, ctx: StepContext) -> Reminders:
    """Reminder number ``sent + 1``, once: vetted text only."""
    number = data.reminders.sent + 1
    message = rules.reminder(data.invoice, number)
    return ctx.once(f"reminder_{number}", lambda key: Reminders(
        sent=number, message_id=_send(ctx, data.invoice.customer_email, message.subject, message.text,
                                      message.html)), Reminders)


def escalate(data: EscalateInput, ctx: StepContext) -> Escalated:
    """The last reminder went unanswered: customer success is told (when an address is configured), and the run ends
    escalated, with the reason."""
    sent = data.reminders.sent
    to = ctx.setting("customer_success_email").strip()
    message_id = None
    if to:
        subject, text = rules.escalation_text(data.invoice, data.run_id, sent)
        message_id = ctx.once("customer_success_email", lambda key: Notified(
            message_id=_send(ctx, to, subject, text, f"<pre>{html.escape(text)}</pre>")), Notified).message_id
    count("RunsEscalated")
    return Escalated(reminders_sent=sent, message_id=message_id)


# -- settle (validate) -------------------------------------------------------------------------------------------


def settle(data: SettleInput, ctx: StepContext) -> Settled:
    """The event that ended the wait, as the run's outcome."""
    event_type = str(data.resolution.get("event_type", ""))
    outcome = rules.OUTCOMES.get(event_type)
    if outcome is None:
        raise MissingData("the wait ended on an event the recovery does not know", step="settle",
                          reason="unknown_resolution", event_type=one_line(event_type, 80))
    return Settled(outcome=outcome, event_type=event_type, event_id=str(data.resolution.get("event_id", "")),
                   event_run_id=str(data.resolution.get("event_run_id", "")))


# -- what the timeline keeps of each output (never the customer's address or name, nor the message's text) ----------


def extract_summary(result: Extracted) -> dict[str, Any]:
    return result.model_dump(mode="json", exclude={"invoice": {"customer_email", "customer_name"}})


def customer_summary(result: Customer) -> dict[str, Any]:
    return result.model_dump(mode="json", exclude={"name"})


def message_summary(result: Message) -> dict[str, Any]:
    return result.model_dump(mode="json", exclude={"text", "html"})
