"""Outsider text made safe to print on a console or write to a log line.

A request's path, method, headers, a message's subject: whatever an outsider sent may hold terminal escapes
(``\\x1b[2J`` clears the operator's screen), carriage returns that overwrite a line, or newlines that forge
one. :func:`printable` shows every such character as an escape instead (``\\x1b``, ``\\u2028``), so the text
is one line of printable characters, and bounds its length.
"""

from __future__ import annotations

__all__ = ["escape_char", "printable"]

ELLIPSIS = "…"


def escape_char(char: str) -> str:
    """One character as a backslash escape: ``\\x1b``, ``\\u202e``, ``\\U0001f600``; a backslash doubled."""
    code = ord(char)
    if char == "\\":
        return "\\\\"  # so that an escape shown can only have been made here
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: object, limit: int = 200) -> str:
    """``text`` (or its ``str()``) as one line of printable characters: every control or other non-printable
    character (Unicode's categories C and Z but the plain space: NUL, ESC, CR, LF, DEL, U+2028, lone
    surrogates...) and the backslash shown as a backslash escape, and at most ``limit`` characters of the
    text kept, with ``…`` marking a cut."""
    value = text if isinstance(text, str) else str(text)
    cut = len(value) > limit
    value = value[:limit]
    if not (value.isprintable() and "\\" not in value):
        value = "".join(char if char.isprintable() and char != "\\" else escape_char(char) for char in value)
    return value + ELLIPSIS if cut else value
