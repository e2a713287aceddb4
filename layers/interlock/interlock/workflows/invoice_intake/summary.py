"""What an operator's list of runs shows of an invoice intake run (``Workflow.run_summary``), read from the event that
starts it:

* the form's ``invoice.received`` (``data.document``): for an invoice sent as text, its number and vendor from its
  ``Label: value`` lines (``Invoice number: …``, ``Vendor: …``, as the offline reader reads them), the vendor being
  the customer; for a PDF or an upload, the file's name; the text's first words when it labels neither;
* the daily check's firing (schedule ``past_due_check``): ``Scheduled: past_due_check``;
* a ``past_due`` follow-up (``data.invoice_id``, ``data.as_of``): the ledger entry past due;
* the status change ``invoices.status:recorded->approved`` (the record's ``item``): the invoice approved for payment,
  its vendor's id the customer.

The router calls it on an outsider's payload before any step has checked it: it never raises, takes strings only,
and builds nothing long (the platform trims and cleans what it returns: interlock.run_list.checked_summary). An
invoice's text is read only as far as its first lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlock.kit import RunSummary
from interlock.kit.summaries import as_object as _object
from interlock.kit.summaries import first_words

if TYPE_CHECKING:
    from interlock.models import Envelope

EVENT_TYPE = "invoice.received"
SCHEDULE_SOURCE, FOLLOW_UP_SOURCE, TABLE_SOURCE = "schedule", "workflow", "table"
PAST_DUE = "past_due"
APPROVED_FOR_PAYMENT = "invoices.status:recorded->approved"  # the status change approved_for_payment
PART = 100  # the most of one field that goes into a subject made of several
FIRST_WORDS = 80  # the most of an unlabelled text that names the invoice
HEAD_CHARS, HEAD_LINES = 4000, 80  # how much of an invoice's text is looked at for its labels
# The labels of the two fields a subject names (case and spacing ignored), as the offline reader knows them.
_LABELS = {"vendor": ("vendor", "supplier", "from"),
           "number": ("invoice number", "invoice no", "invoice #", "invoice id", "invoice no.")}


def _first_words(value: object, limit: int = PART) -> str | None:
    return first_words(value, limit)


def _scalar(value: object) -> str | None:
    """A record's value as text: a string (on one line, bounded), or a plain number."""
    if isinstance(value, bool):
        return None
    if (isinstance(value, int) and -10**18 < value < 10**18) or (isinstance(value, float) and abs(value) < 1e18):
        return str(value)
    return _first_words(value)


def labelled(text: str) -> dict[str, str]:
    """The vendor and the invoice number of an invoice's first ``Label: value`` lines (the first of each wins)."""
    found: dict[str, str] = {}
    for line in text[:HEAD_CHARS].splitlines()[:HEAD_LINES]:
        label, colon, value = line.partition(":")
        if not colon or len(label) > 40:
            continue
        label = " ".join(label.partition("(")[0].lower().split())
        words = _first_words(value)
        for name, labels in _LABELS.items():
            if words and name not in found and label in labels:
                found[name] = words
    return found


def _received(payload: dict[str, Any]) -> RunSummary:
    document = _object(_object(payload.get("data")).get("document"))
    filename = _first_words(document.get("filename"))
    text = document.get("text")
    if isinstance(text, str):
        fields = labelled(text)
        number, vendor = fields.get("number"), fields.get("vendor")
        if number or vendor:
            subject = " ".join(part for part in ("Invoice", number, vendor and f"from {vendor}") if part)
            return RunSummary(subject=subject, customer=vendor)
        if filename is None:
            words = _first_words(text, FIRST_WORDS)
            return RunSummary(subject=f"Invoice: {words}" if words else None)
    if filename:
        return RunSummary(subject=f"Invoice file {filename}")
    if isinstance(document.get("pdf_base64"), str):
        return RunSummary(subject="Invoice PDF")
    if isinstance(document.get("upload"), str):
        return RunSummary(subject="Uploaded invoice")
    return RunSummary()


def _scheduled(envelope: Envelope, payload: dict[str, Any]) -> RunSummary:
    name = _first_words(payload.get("schedule")) or _first_words(envelope.type.partition(".")[2])
    return RunSummary(subject=f"Scheduled: {name}" if name else "Scheduled")


def _past_due(payload: dict[str, Any]) -> RunSummary:
    given = _object(payload.get("data"))
    entry, as_of = _first_words(given.get("invoice_id")), _first_words(given.get("as_of"))
    subject = "Past due: " + (f"ledger entry {entry}" if entry else "an invoice")
    return RunSummary(subject=f"{subject} (as of {as_of})" if as_of else subject)


def _approved(payload: dict[str, Any]) -> RunSummary:
    item, keys = _object(payload.get("item")), _object(payload.get("keys"))
    number = _scalar(item.get("invoice_number"))
    entry = _scalar(keys.get("invoice_id")) or _scalar(item.get("invoice_id"))
    named = f"invoice {number}" if number else f"ledger entry {entry}" if entry else None
    total, currency = _scalar(item.get("total")), _scalar(item.get("currency"))
    amount = f"{total} {currency}" if total and currency else total
    facts = ", ".join(part for part in (named, amount) if part)
    return RunSummary(subject=f"Approved for payment: {facts}" if facts else "Approved for payment",
                      customer=_scalar(item.get("vendor_id")))


def summary(envelope: Envelope) -> RunSummary:
    payload = _object(envelope.payload)
    if envelope.source == SCHEDULE_SOURCE:
        return _scheduled(envelope, payload)
    if envelope.source == FOLLOW_UP_SOURCE:
        return _past_due(payload) if envelope.type.endswith(f".{PAST_DUE}") else RunSummary()
    if envelope.source == TABLE_SOURCE:
        return _approved(payload) if envelope.type == APPROVED_FOR_PAYMENT else RunSummary()
    if envelope.type == EVENT_TYPE:
        return _received(payload)
    return RunSummary()
