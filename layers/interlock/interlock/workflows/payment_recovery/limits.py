"""The recovery's settings, read the same way where they are checked (``check_settings``, at `make run` and at
synthesis: a deployment with a bad one never starts) and where its steps use them (``whole_setting``). Light on
purpose: `make run` imports it before it sets up logging.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_WAIT_SECONDS = 3 * 24 * 3600
DEFAULT_REMINDERS = 2
# Each whole-number setting: its default (when empty) and its range.
WHOLE_SETTINGS = {"payment_wait_seconds": (DEFAULT_WAIT_SECONDS, 1, 365 * 24 * 3600),
                  "payment_reminders": (DEFAULT_REMINDERS, 0, 10)}


def whole_setting(name: str, raw: str) -> int:
    """The whole-number setting ``name`` (its default when empty); ValueError naming it when out of range."""
    from interlock.settings import whole_setting as read

    return read(name, raw, *WHOLE_SETTINGS[name])


def check_settings(values: Mapping[str, str]) -> list[str]:
    """A sentence for each of the recovery's settings its steps would refuse (`make run` and the synthesis stop)."""
    from interlock.settings import optional_address_problems, reading_problems

    readers = {name: (lambda raw, name=name: whole_setting(name, raw)) for name in WHOLE_SETTINGS}
    return reading_problems(values, readers) + optional_address_problems("customer_success_email",
                                                                         values.get("customer_success_email", ""))
