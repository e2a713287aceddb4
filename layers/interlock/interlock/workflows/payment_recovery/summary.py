"""What an operator's list of runs shows of a recovery run (``Workflow.run_summary``), read from Stripe's
``invoice.payment_failed`` that starts it (its ``data.object``, the invoice): ``Payment failed: invoice <number>
(<id>), USD 49.00`` and the customer's email address (``customer_email``; Stripe's customer id, ``cus_…``, when the
invoice has none). The events that end its wait (``invoice.paid`` and the others) never start a run.

The router calls it on an outsider's payload before any step has checked it: it never raises, takes strings only,
and builds nothing long (the platform trims and cleans what it returns: interlock.run_list.checked_summary).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from interlock.kit import RunSummary
from interlock.kit.summaries import as_object as _object
from interlock.kit.summaries import text as _text
from interlock.workflows.payment_recovery.rules import FAILED_EVENT, amount_text

if TYPE_CHECKING:
    from interlock.models import Envelope

PART = 100  # the most of one field that goes into the subject
_CURRENCY = re.compile(r"[a-z]{3}")
_MAX_AMOUNT = 10**15  # in minor units: more than any invoice, and a short number to format


def _part(value: object) -> str | None:
    """A string field on one line, at most :data:`PART` characters (it goes into a longer subject)."""
    return (" ".join(value[:PART * 4].split())[:PART] or None) if isinstance(value, str) else None


def _amount(invoice: dict[str, Any]) -> str | None:
    """``USD 49.00`` from the invoice's ``amount_due`` (minor units) and ``currency``, as the workflow writes it."""
    amount, currency = invoice.get("amount_due"), invoice.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount < _MAX_AMOUNT:
        return None
    if not isinstance(currency, str) or len(currency) != 3 or not _CURRENCY.fullmatch(currency.lower()):
        return None
    return amount_text(amount, currency.lower())


def _customer(invoice: dict[str, Any]) -> str | None:
    """The invoice's customer email, else Stripe's customer id (a string, or the expanded customer object)."""
    customer = invoice.get("customer")
    expanded = _object(customer)
    return (_text(invoice.get("customer_email")) or _text(expanded.get("email")) or _text(customer)
            or _text(expanded.get("id")))


def summary(envelope: Envelope) -> RunSummary:
    payload = _object(envelope.payload)
    if envelope.type != FAILED_EVENT:
        return RunSummary()
    invoice = _object(_object(payload.get("data")).get("object"))
    number, invoice_id = _part(invoice.get("number")), _part(invoice.get("id"))
    if number and invoice_id and number != invoice_id:
        named: str | None = f"invoice {number} ({invoice_id})"
    else:
        named = f"invoice {number or invoice_id}" if number or invoice_id else None
    facts = ", ".join(part for part in (named, _amount(invoice)) if part)
    subject = f"Payment failed: {facts}" if facts else "Payment failed"
    return RunSummary(subject=subject, customer=_customer(invoice))
