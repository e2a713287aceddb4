"""What an operator's list of runs shows of a triage run (``Workflow.run_summary``): the ticket's subject and the
customer's email address, read from the ``form`` event ``support.ticket`` that starts it (``data.subject``,
``data.customer_email``; a ticket without a subject is named by the first words of its body).

The router calls it on an outsider's payload before any step has checked it: it never raises, takes strings only,
and builds nothing long (the platform trims and cleans what it returns: interlock.run_list.checked_summary).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlock.kit import RunSummary
from interlock.kit.summaries import as_object as _object
from interlock.kit.summaries import first_words as _first_words
from interlock.kit.summaries import text as _text

if TYPE_CHECKING:
    from interlock.models import Envelope

TICKET_EVENT = "support.ticket"


def summary(envelope: Envelope) -> RunSummary:
    payload = _object(envelope.payload)
    if envelope.type != TICKET_EVENT:
        return RunSummary()
    ticket = _object(payload.get("data"))
    return RunSummary(subject=_text(ticket.get("subject")) or _first_words(ticket.get("body")),
                      customer=_text(ticket.get("customer_email")))
