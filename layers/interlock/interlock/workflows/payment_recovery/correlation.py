"""The recovery's correlation key: Stripe's invoice id, read from an invoice event's object. The router calls it for
every ``invoice.payment_failed`` (the trigger) and every ``invoice.paid``/``voided``/``marked_uncollectible`` (the
events that end the wait): a small function with no heavy import."""

from __future__ import annotations

import re
from typing import Any

_INVOICE_ID = re.compile(r"\Ain_[A-Za-z0-9]{1,120}\Z")


def invoice_key(payload: dict[str, Any]) -> str | None:
    """``stripe:invoice:<id>`` for a Stripe invoice event; None when the event carries no invoice id."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    invoice_id = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(invoice_id, str) or not _INVOICE_ID.fullmatch(invoice_id):
        return None
    return f"stripe:invoice:{invoice_id}"
