"""The invoice intake's settings, read the same way where they are checked (``check``, at `make run` and at
synthesis: a deployment with a bad one never starts) and where the steps use them (``amount``).

``invoice_auto_limit`` and ``invoice_two_person_limit`` are amounts in the invoice's own currency,
``invoice_po_tolerance_pct`` a percentage; empty means the default. ``payables_email`` is empty (nobody) or one
address.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

AUTO_LIMIT = "invoice_auto_limit"
TWO_PERSON_LIMIT = "invoice_two_person_limit"
TOLERANCE = "invoice_po_tolerance_pct"
PAYABLES_EMAIL = "payables_email"
DEFAULTS = {AUTO_LIMIT: "1000", TWO_PERSON_LIMIT: "10000", TOLERANCE: "2"}


def amount(name: str, raw: str) -> Decimal:
    """The setting ``name``'s value (its default when empty); ValueError naming it when it is no number of at least
    0 (or, for the tolerance, a percentage above 100)."""
    text = raw.strip() or DEFAULTS[name]
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, not {text[:40]!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a number of at least 0, not {text[:40]!r}")
    if name == TOLERANCE and value > 100:
        raise ValueError(f"{name} is a percentage of the PO's remaining amount: at most 100, not {text[:40]!r}")
    return value


def check(values: Mapping[str, str]) -> list[str]:
    """A sentence for each of the workflow's settings its steps would refuse, or that make no sense together."""
    from interlock.settings import optional_address_problems

    problems: list[str] = []
    read: dict[str, Decimal] = {}
    for name in DEFAULTS:
        try:
            read[name] = amount(name, values.get(name, ""))
        except ValueError as exc:
            problems.append(str(exc))
    if AUTO_LIMIT in read and TWO_PERSON_LIMIT in read and read[TWO_PERSON_LIMIT] < read[AUTO_LIMIT]:
        problems.append(f"{TWO_PERSON_LIMIT} ({read[TWO_PERSON_LIMIT]}) is below {AUTO_LIMIT} ({read[AUTO_LIMIT]}): "
                        "an invoice needing two approvers must also be one that needs a person")
    return problems + optional_address_problems(PAYABLES_EMAIL, values.get(PAYABLES_EMAIL, ""))
