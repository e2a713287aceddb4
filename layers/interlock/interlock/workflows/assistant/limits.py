"""The assistant's settings, read the same way where they are checked (``check_settings``: `make run` and the
synthesis refuse a bad one) and where its steps use them. Light on purpose: `make run` imports it early.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Each whole-number setting: its default (when empty) and its range.
WHOLE_SETTINGS = {"assistant_debounce_seconds": (3, 0, 20), "assistant_history_turns": (20, 0, 100),
                  # a hand-off page's link: 72 h by default, from 5 minutes to 30 days
                  "assistant_handoff_ttl_seconds": (72 * 3600, 300, 30 * 24 * 3600)}
# An approved template's name (Meta: lower-case letters, digits and underscores) and its language code (en_US).
_TEMPLATE = re.compile(r"^([a-z0-9_]{1,512})(?::([a-z]{2,3}(?:_[A-Z]{2})?))?$")
# A Slack channel by id (C…, G…) or by name (#support).
_CHANNEL = re.compile(r"^(?:[CG][A-Z0-9]{8,20}|#[a-z0-9][a-z0-9._-]{0,79})$")


def whole_setting(name: str, raw: str) -> int:
    from interlock.settings import whole_setting as read

    return read(name, raw, *WHOLE_SETTINGS[name])


def template(raw: str) -> tuple[str, str] | None:
    """``assistant_reengagement_template``: ``name`` or ``name:language`` (default ``en_US``); None when empty."""
    text = raw.strip()
    if not text:
        return None
    match = _TEMPLATE.fullmatch(text)
    if match is None:
        raise ValueError("assistant_reengagement_template must be a template name (lower-case letters, digits, '_'), "
                         f"optionally ':' and its language (en_US), not {text[:60]!r}")
    return match.group(1), match.group(2) or "en_US"


def support_channel(raw: str) -> str | None:
    """``assistant_support_channel``: a Slack channel id or ``#name``; None when empty (no post)."""
    text = raw.strip()
    if not text:
        return None
    if not _CHANNEL.fullmatch(text):
        raise ValueError("assistant_support_channel must be a Slack channel id (C0123ABCD) or #name, "
                         f"not {text[:60]!r}")
    return text


def handoff_email(raw: str) -> str | None:
    """``assistant_handoff_email``: one address, or None when empty (no email)."""
    from interlock.settings import optional_address_problems

    problems = optional_address_problems("assistant_handoff_email", raw)
    if problems:
        raise ValueError(problems[0])
    return raw.strip() or None


def check_settings(values: Mapping[str, str]) -> list[str]:
    """A sentence for each of the assistant's settings its steps would refuse."""
    from interlock.settings import reading_problems

    readers = {name: (lambda raw, name=name: whole_setting(name, raw)) for name in WHOLE_SETTINGS}
    return reading_problems(values, {**readers, "assistant_reengagement_template": template,
                                     "assistant_support_channel": support_channel,
                                     "assistant_handoff_email": handoff_email})
