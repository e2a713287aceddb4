"""What an operator's list of runs shows of a lead run (``Workflow.run_summary``), read from the event that starts
it:

* the form's ``lead.submitted``: the lead's company and name (``data.company``, ``data.name``; the company's domain,
  or the first words of the message, when those are missing) and their email address (``data.email``);
* HubSpot's ``hubspot.contact.creation``: its webhook carries only the contact's id (``objectId``; the properties are
  fetched by a later step), so the subject names the new contact by it and the customer is ``hubspot:<id>``.

The router calls it on an outsider's payload before any step has checked it: it never raises, takes strings only,
and builds nothing long (the platform trims and cleans what it returns: interlock.run_list.checked_summary).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from interlock.kit import RunSummary
from interlock.kit.summaries import as_object as _object
from interlock.kit.summaries import first_words as _first_words
from interlock.kit.summaries import text as _text

if TYPE_CHECKING:
    from interlock.models import Envelope

FORM_EVENT = "lead.submitted"
HUBSPOT_EVENT = "hubspot.contact.creation"
PART = 100  # the most of one field that goes into a subject made of several
FIRST_WORDS = 80  # the most of a message that names a lead without a company or name
_CONTACT_ID = re.compile(r"[0-9]{1,30}")


def _form(payload: dict[str, Any]) -> RunSummary:
    lead = _object(payload.get("data"))
    company = _first_words(lead.get("company"), PART) or _first_words(lead.get("company_domain"), PART)
    name = _first_words(lead.get("name"), PART)
    if company and name:
        subject: str | None = f"{company} ({name})"
    else:
        subject = company or name or _first_words(lead.get("message"), FIRST_WORDS)
    return RunSummary(subject=subject, customer=_text(lead.get("email")))


def _contact_id(value: object) -> str | None:
    """HubSpot's id of the contact (``objectId``: a number, sometimes sent as a string of digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value) if 0 <= value < 10**30 else ""
    elif isinstance(value, str):
        text = value[:40].strip()
    else:
        return None
    return text if _CONTACT_ID.fullmatch(text) else None


def _hubspot(payload: dict[str, Any]) -> RunSummary:
    contact = _contact_id(payload.get("objectId"))
    if contact is None:
        return RunSummary(subject="New HubSpot contact")
    return RunSummary(subject=f"New HubSpot contact {contact}", customer=f"hubspot:{contact}")


def summary(envelope: Envelope) -> RunSummary:
    payload = _object(envelope.payload)
    if envelope.type == FORM_EVENT:
        return _form(payload)
    if envelope.type == HUBSPOT_EVENT:
        return _hubspot(payload)
    return RunSummary()
