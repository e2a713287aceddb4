"""The recovery's data: the failed invoice (the vetted facts), the customer, the message, the wait's outcome."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from interlock.models import Envelope
from interlock.steps import StepInput

Tone = Literal["gentle", "standard", "firm"]


class Invoice(BaseModel):
    """The facts a dunning message may state: Stripe's own, checked by :func:`rules.invoice_from_event`."""

    invoice_id: str
    number: str | None = None  # Stripe's invoice number (A1B2C3-0001), when it is one
    customer_id: str | None = None
    customer_email: str
    customer_name: str | None = None  # outsider text: cleaned before a greeting uses it
    amount_due: int = Field(ge=0)  # in the currency's minor units, as Stripe sends it
    currency: str
    amount_text: str  # "USD 49.00", written by code
    due_date: str | None = None  # ISO date
    hosted_invoice_url: str
    attempt_count: int = Field(ge=0)
    correlation_key: str


class WaitPolicy(BaseModel):
    seconds: int = Field(ge=1)  # each wait for the payment, before a reminder (or escalation)
    reminders: int = Field(ge=0, le=10)  # reminders before customer success is asked


class Reminders(BaseModel):
    sent: int = Field(default=0, ge=0)  # how many reminders were sent (the last one's message id)
    message_id: str | None = None


class Extracted(BaseModel):
    invoice: Invoice
    wait: WaitPolicy
    reminders: Reminders = Field(default_factory=Reminders)


class ExtractInput(StepInput):
    envelope: Envelope


class Customer(BaseModel):
    found: bool
    tier: str | None = None
    name: str | None = None
    partial: bool = False
    reason: str | None = None


class LookupInput(StepInput):
    invoice: Invoice


class DraftInput(StepInput):
    invoice: Invoice
    customer: Customer


class Draft(BaseModel):
    tone: Tone
    opening: str  # the decision's paragraphs (or the vetted template's, offline)
    closing: str
    decided_by: str
    template: bool  # True: both paragraphs are the vetted template's
    decision: dict[str, Any] | None = None


class GuardrailInput(StepInput):
    invoice: Invoice
    customer: Customer
    draft: Draft


class Message(BaseModel):
    subject: str
    text: str
    html: str
    tone: Tone
    template: bool  # every paragraph is the vetted template's (no model text went out)
    reasons: list[str] = Field(default_factory=list)  # why the guardrail put the template in the model's place


class CheckInput(StepInput):
    invoice: Invoice


class Checked(BaseModel):
    settled: bool  # Stripe's next event for the invoice came already: nothing is to be sent
    event_type: str | None = None


class SendInput(StepInput):
    invoice: Invoice
    message: Message


class Sent(BaseModel):
    message_id: str
    tone: Tone
    template: bool


class ReminderInput(StepInput):
    invoice: Invoice
    reminders: Reminders


class Notified(BaseModel):
    message_id: str


class EscalateInput(StepInput):
    invoice: Invoice
    reminders: Reminders


class Escalated(BaseModel):
    outcome: Literal["escalated"] = "escalated"
    reason: Literal["payment_not_received"] = "payment_not_received"
    reminders_sent: int
    message_id: str | None  # the email to customer success (None: no address is configured)


class SettleInput(StepInput):
    resolution: dict[str, Any]


class Settled(BaseModel):
    outcome: Literal["paid", "voided", "uncollectible"]
    event_type: str
    event_id: str
    event_run_id: str
