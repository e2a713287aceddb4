"""Reading an outsider's payload for a workflow's ``run_summary`` (interlock.kit.RunSummary) without ever raising:
fields of the wrong type read as absent, and texts are taken from a bounded slice."""

from __future__ import annotations

from typing import Any

FIRST_WORDS = 80  # the most of a message that names a run


def as_object(value: object) -> dict[str, Any]:
    """``value`` when it is a JSON object; an empty one otherwise."""
    return value if isinstance(value, dict) else {}


def first_item(value: object) -> dict[str, Any]:
    """The first item of a list field, when it is an object."""
    return as_object(value[0]) if isinstance(value, list) and value else {}


def text(value: object) -> str | None:
    """A string field, stripped; None when it is no string or empty."""
    return (value.strip() or None) if isinstance(value, str) else None


def first_words(value: object, limit: int = FIRST_WORDS) -> str | None:
    """The first ``limit`` characters of a text on one line, cut at a word, from a bounded slice of it."""
    if not isinstance(value, str):
        return None
    words = " ".join(value[:limit * 8].split())
    if len(words) <= limit:
        return words or None
    cut = words[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "..."
