"""What an operator's list of runs shows of a triage run (``Workflow.run_summary``): the ticket's subject and the
customer's email address, read from the ``form`` event ``support.ticket`` that starts it (``data.subject``,
``data.customer_email``; a ticket without a subject is named by the first words of its body).

The router calls it on an outsider's payload before any step has checked it: it never raises, takes strings only,
and builds nothing long (the platform trims and cleans what it returns: interlock.run_list.checked_summary).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlock.kit import RunSummary

if TYPE_CHECKING:
    from interlock.models import Envelope

TICKET_EVENT = "support.ticket"
FIRST_WORDS = 80  # the most of a body that names a ticket without a subject


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    """A string field, stripped; None when it is no string or empty."""
    return (value.strip() or None) if isinstance(value, str) else None


def _first_words(value: object, limit: int = FIRST_WORDS) -> str | None:
    """The first ``limit`` characters of a text on one line, cut at a word, from a bounded slice of it."""
    if not isinstance(value, str):
        return None
    words = " ".join(value[:limit * 8].split())
    if len(words) <= limit:
        return words or None
    cut = words[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "..."


def summary(envelope: Envelope) -> RunSummary:
    payload = _object(envelope.payload)
    if envelope.type != TICKET_EVENT:
        return RunSummary()
    ticket = _object(payload.get("data"))
    return RunSummary(subject=_text(ticket.get("subject")) or _first_words(ticket.get("body")),
                      customer=_text(ticket.get("customer_email")))
