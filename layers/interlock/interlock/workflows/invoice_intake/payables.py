"""What happens to a recorded invoice afterwards: the daily past-due check and its follow-up runs, and the payment
scheduled once the invoice is approved for payment (the ``invoices`` table, :mod:`.records`).

* ``past_due_check`` (a schedule, daily) -> ``find_past_due`` (act): every record unpaid after its due date starts a
  ``past_due`` follow-up run, one per invoice per day (key ``invoice:<id>:<date>``): a second firing the same day,
  a retried step or a redelivered message starts nothing new.
* ``past_due`` (a follow-up) -> ``check_past_due`` (query: the record as it is now) -> ``remind_payables`` (notify:
  the payables team emailed once, from a fixed template; the run ends ``escalated``, ``invoice_past_due``) or
  ``close_follow_up`` (record: paid or moved on since the check; ``completed``, ``no_longer_due``).
* ``invoices.status:recorded->approved`` (a status change) -> ``schedule_payment`` (act: the ERP schedules the
  payment once per ledger entry, to the vendor master's bank account, on the due date or today if that has passed;
  the record moves to ``scheduled`` with the payment's id).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field

from interlock.errors import MissingData, NotConfigured, StepError

# At run time, not only for type checking: a worker reads a step's input model from its annotations.
from interlock.kit.context import StepContext
from interlock.models import Envelope
from interlock.outgoing import one_line
from interlock.steps import StepInput
from interlock.workflows.invoice_intake import records
from interlock.workflows.invoice_intake.records import APPROVED, SCHEDULED, UNPAID, InvoiceRecords

FOLLOW_UP = "past_due"
PAYABLES_EMAIL = "payables_email"
# How many of the runs it started the check's entry lists (all are counted).
LISTED_RUNS = 50
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class NotApproved(StepError):
    reason = "not_approved"


def _date(value: Any, what: str, step: str) -> str:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise MissingData(f"{what} is not a date (YYYY-MM-DD)", step=step, reason="invalid_follow_up")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise MissingData(f"{what} is not a real date", step=step, reason="invalid_follow_up") from None
    return value


def _records(ctx: StepContext) -> InvoiceRecords:
    return records.records_of(ctx)


# -- find_past_due (act: starts the follow-ups) ----------------------------------------------------------------


class CheckInput(StepInput):
    envelope: Envelope


class StartedFollowUp(BaseModel):
    invoice_id: str
    run_id: str


class PastDueFound(BaseModel):
    as_of: str  # the check's date, in its schedule's time zone
    past_due: int  # the records unpaid after their due date: one follow-up run each
    runs: list[StartedFollowUp] = Field(default_factory=list)  # the first LISTED_RUNS of them
    not_listed: int = 0


def check_date(envelope: Envelope) -> str:
    """The day a firing of the check is for: its scheduled time, in its schedule's time zone."""
    from zoneinfo import ZoneInfo

    payload = envelope.payload
    at = datetime.fromisoformat(str(payload.get("scheduled_time", "")).replace("Z", "+00:00"))
    return at.astimezone(ZoneInfo(str(payload.get("timezone") or "UTC"))).date().isoformat()


def find_past_due(data: CheckInput, ctx: StepContext) -> PastDueFound:
    """Every invoice record still unpaid after its due date starts a ``past_due`` run, one per invoice per day."""
    from interlock.kit.follow_ups import MAX_PER_CALL

    if data.envelope.source != "schedule":
        raise MissingData("the past-due check is started by its schedule", step=ctx.step, reason="not_a_schedule")
    as_of = check_date(data.envelope)
    started: list[StartedFollowUp] = []
    count = 0
    batch: list[tuple[str, dict[str, Any]]] = []

    def start() -> None:
        ids = ctx.start_runs(FOLLOW_UP, batch)
        started.extend(StartedFollowUp(invoice_id=d["invoice_id"], run_id=r)
                       for (_, d), r in zip(batch, ids, strict=True) if len(started) < LISTED_RUNS)
        batch.clear()

    for record in _records(ctx).past_due(as_of):
        count += 1
        batch.append((f"invoice:{record.invoice_id}:{as_of}", {"invoice_id": record.invoice_id, "as_of": as_of}))
        if len(batch) == MAX_PER_CALL:
            start()
    if batch:
        start()
    return PastDueFound(as_of=as_of, past_due=count, runs=started, not_listed=count - len(started))


# -- check_past_due (query) --------------------------------------------------------------------------------------


class FollowUpInput(StepInput):
    envelope: Envelope


class PastDueCheck(BaseModel):
    invoice_id: str
    as_of: str
    still_due: bool
    status: str | None = None  # None: no such record
    due_date: str | None = None
    days_past_due: int = 0
    vendor_id: str | None = None
    invoice_number: str | None = None
    total: str | None = None
    currency: str | None = None


def check_past_due(data: FollowUpInput, ctx: StepContext) -> PastDueCheck:
    """The invoice's record as it is now: still unpaid after its due date, or paid (or moved on) since the check."""
    found = data.envelope.payload.get("data")
    invoice_id = found.get("invoice_id") if isinstance(found, dict) else None
    if not isinstance(invoice_id, str) or not invoice_id:
        raise MissingData("the follow-up names no invoice", step=ctx.step, reason="invalid_follow_up")
    as_of = _date(found.get("as_of") if isinstance(found, dict) else None, "the follow-up's as_of", ctx.step)
    record = _records(ctx).get(invoice_id)
    if record is None:
        return PastDueCheck(invoice_id=invoice_id, as_of=as_of, still_due=False)
    due = record.due_date if record.due_date and _ISO_DATE.fullmatch(record.due_date) else None
    still_due = record.status in UNPAID and due is not None and due < as_of
    days = (date.fromisoformat(as_of) - date.fromisoformat(due)).days if due else 0
    return PastDueCheck(invoice_id=invoice_id, as_of=as_of, still_due=still_due, status=record.status,
                        due_date=record.due_date, days_past_due=max(days, 0), vendor_id=record.vendor_id,
                        invoice_number=record.invoice_number, total=record.total, currency=record.currency)


# -- remind_payables (notify) / close_follow_up (record) ---------------------------------------------------------


class CheckedInput(StepInput):
    check: PastDueCheck


class PastDueReminded(BaseModel):
    invoice_id: str
    reason: str = "invoice_past_due"
    days_past_due: int
    status: str | None
    notified: bool  # False: no payables_email is set; the run is escalated all the same
    message_id: str | None = None


class Sent(BaseModel):
    message_id: str


def reminder(check: PastDueCheck, run_id: str) -> tuple[str, str]:
    """The reminder's subject and text: a fixed template; the invoice number (read from a document) cut to one
    line of visible characters."""
    number = one_line(check.invoice_number or "", 64)
    subject = f"Invoice {number} is {check.days_past_due} day(s) past due"
    text = (f"An invoice recorded by Interlock is past due and not paid.\n\n"
            f"Ledger entry: {check.invoice_id}\nVendor: {check.vendor_id}\nInvoice number: {number}\n"
            f"Total: {check.total} {check.currency}\nDue date: {check.due_date} ({check.days_past_due} day(s) ago)\n"
            f"Payment status: {check.status}\n\nRun: {run_id}\n")
    return subject, text


def remind_payables(data: CheckedInput, ctx: StepContext) -> PastDueReminded:
    """The payables team emailed once about the invoice; the run ends ``escalated`` (it needs a person)."""
    import html

    from interlock.approvals import SesMailer
    from interlock.observability import count

    check = data.check
    to = ctx.setting(PAYABLES_EMAIL).strip()
    message_id = None
    if to:
        sender = ctx.setting("sender_email").strip()
        if not sender:
            raise NotConfigured("no sender address (sender_email)", step=ctx.step, reason="sender_not_configured")
        subject, text = reminder(check, data.run_id)
        message_id = ctx.once(PAYABLES_EMAIL, lambda key: Sent(
            message_id=SesMailer().send(sender, to, subject, text, "<pre>" + html.escape(text) + "</pre>")),
            Sent).message_id
    count("InvoicesPastDue")
    return PastDueReminded(invoice_id=check.invoice_id, days_past_due=check.days_past_due, status=check.status,
                           notified=message_id is not None, message_id=message_id)


class Closed(BaseModel):
    invoice_id: str
    outcome: str = "no_longer_due"
    status: str | None


def close_follow_up(data: CheckedInput, ctx: StepContext) -> Closed:
    """Paid, or no longer unpaid after its due date, since the check ran: nothing to do."""
    return Closed(invoice_id=data.check.invoice_id, status=data.check.status)


# -- schedule_payment (act) ----------------------------------------------------------------------------------------


class ApprovedInput(StepInput):
    envelope: Envelope


class PaymentScheduled(BaseModel):
    invoice_id: str
    payment_id: str
    pay_on: str
    amount: str
    currency: str
    created: bool  # False: the ERP answered the payment it held for this ledger entry


def schedule_payment(data: ApprovedInput, ctx: StepContext) -> PaymentScheduled:
    """The ERP schedules the approved invoice's payment, once per ledger entry: its total, in its currency, to the
    vendor master's account, on its due date (today, if that has passed); the record moves to ``scheduled``."""
    from interlock.connectors.erp import NewPayment
    from interlock.workflows.invoice_intake.steps import erp_of

    keys = data.envelope.payload.get("keys")
    invoice_id = keys.get("invoice_id") if isinstance(keys, dict) else None
    if not isinstance(invoice_id, str) or not invoice_id:
        raise MissingData("the status change names no invoice record", step=ctx.step, reason="invalid_status_change")
    table = _records(ctx)
    record = table.get(invoice_id)
    if record is None:
        raise MissingData("the invoice record is gone", step=ctx.step, reason="invoice_not_tracked")
    if record.status not in (APPROVED, SCHEDULED):
        raise NotApproved(f"the invoice record is {record.status!r} now, no longer approved", step=ctx.step,
                          status=record.status)
    today = datetime.now(UTC).date().isoformat()
    due = record.due_date if record.due_date and _ISO_DATE.fullmatch(record.due_date) else today
    payment = NewPayment(entry_id=record.invoice_id, vendor_id=record.vendor_id, amount=record.total,
                         currency=record.currency, pay_on=max(due, today))
    erp = erp_of(ctx)

    def pay(_run_key: str) -> PaymentScheduled:
        # The ERP's key is the ledger entry's, not the run's: a second approval of the same invoice pays nothing.
        made = erp.schedule_payment(payment, f"payment:{record.invoice_id}")
        return PaymentScheduled(invoice_id=record.invoice_id, payment_id=made.payment.payment_id,
                                pay_on=made.payment.pay_on, amount=str(made.payment.amount),
                                currency=made.payment.currency, created=made.created)

    done = ctx.once("payment", pay, PaymentScheduled)
    table.mark_scheduled(record.invoice_id, done.payment_id, done.pay_on)
    return done
