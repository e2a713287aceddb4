"""The sales lead's setting, read the same way where it is checked (``check_settings``, at `make run` and at
synthesis) and where ``discount_check`` uses it. Light on purpose: `make run` imports it before it sets up logging.
"""

from __future__ import annotations

from collections.abc import Mapping

DISCOUNT_SETTING = "sales_discount_approval_pct"
DEFAULT_DISCOUNT_APPROVAL_PCT = 15.0


def discount_pct(raw: str) -> float:
    """The discount threshold (its default when empty); ValueError when it is no percentage from 0 to 100."""
    text = raw.strip()
    if not text:
        return DEFAULT_DISCOUNT_APPROVAL_PCT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:  # NaN too
        raise ValueError(f"{DISCOUNT_SETTING} must be a percentage from 0 to 100, not {text[:40]!r}")
    return value


def check_settings(values: Mapping[str, str]) -> list[str]:
    """The workflow's settings as its steps read them (`make run` and the synthesis stop on a problem)."""
    try:
        discount_pct(values.get(DISCOUNT_SETTING, ""))
    except ValueError as exc:
        return [str(exc)]
    return []
