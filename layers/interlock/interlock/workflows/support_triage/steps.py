"""The triage workflow's steps as the kit runs them: each takes its input and the step context, and calls the
logic in :mod:`interlock.workflows.support_triage.triage` with what the context provides."""

from __future__ import annotations

from interlock.kit.context import StepContext
from interlock.workflows.support_triage import triage
from interlock.workflows.support_triage.guardrail import GuardrailResult
from interlock.workflows.support_triage.rules import Classification
from interlock.workflows.support_triage.triage import (
    AccountContext,
    Delivery,
    Draft,
    DraftInput,
    GuardrailInput,
    SendInput,
    Ticket,
    TicketInput,
    ValidateInput,
)


def _min_confidence(ctx: StepContext) -> float:
    # The guardrail's threshold is the classification's: one setting says when a category needs a person.
    return float(ctx.setting("approval_min_confidence"))


def validate(data: ValidateInput, ctx: StepContext) -> Ticket:
    return triage.validate(data)


def classify(data: TicketInput, ctx: StepContext) -> Classification:
    return triage.classify(data, ctx.decisions, _min_confidence(ctx), ctx.deadline)


def fetch_account(data: TicketInput, ctx: StepContext) -> AccountContext:
    return triage.fetch_account(data, ctx.connector("crm"))


def draft_reply(data: DraftInput, ctx: StepContext) -> Draft:
    return triage.draft_reply(data, ctx.decisions, ctx.deadline)


def guardrail(data: GuardrailInput, ctx: StepContext) -> GuardrailResult:
    return triage.guardrail(data, _min_confidence(ctx))


def send_reply(data: SendInput, ctx: StepContext) -> Delivery:
    """The reply is sent once per run: a repeat of this step gets the first delivery back."""
    return ctx.once("reply", lambda key: triage.send_reply(data, ctx.connector("helpdesk")), Delivery)
