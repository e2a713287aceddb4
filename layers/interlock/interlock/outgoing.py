"""Outgoing-message text: the parts of a message that came from outside, and how they are cleaned.

Every byte of a message Interlock sends comes from a vetted template, from a person, or from outsider text
that the guardrail checked. Outsider text is anything a model, a customer or a system of record (a CRM field)
wrote. Code that composes a message declares each outsider part it put in (:class:`OutsiderPart`), so the
guardrail checks all of them with the same rules (:func:`interlock.guardrail.outsider_findings`), and cleans
it first:

* :func:`one_line`: a header-like field (a subject): one line, no control or format characters, bounded.
* :func:`clean_name`: a name for a greeting: a few words of letters, bounded, or nothing at all (the message
  then greets no one by name). No URL, address, markup, digit or control character survives.
* :func:`clean_label`: a short label from a system of record (a plan name), or nothing.
* :func:`quoted`: outsider text shown to a person (an approver): every line prefixed with ``> ``.

Platform code: it names no workflow.
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, Field

# The header an outgoing email names its own call-to-action link in (an approval link), so that a reader of the
# message (the local outbox's console) never has to search a text that quotes outsiders for it.
APPROVAL_LINK_HEADER = "X-Interlock-Approval-Link"

NAME_MAX_CHARS = 60
NAME_MAX_WORDS = 5
LABEL_MAX_CHARS = 40
SUBJECT_MAX_CHARS = 120
ELLIPSIS = "…"


class OutsiderPart(BaseModel):
    """One piece of an outgoing message that no vetted template and no person wrote."""

    part: str = Field(max_length=40)  # where it sits: "reply", "subject", "name", "plan"
    source: str = Field(max_length=40)  # who wrote it: "model", "customer", "crm"
    text: str


# Characters that are not text: controls (C0, C1, DEL), format characters (bidi overrides, zero-width),
# line and paragraph separators, surrogates, private use and unassigned code points.
_NOT_TEXT = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _visible(value: str) -> str:
    """NFKC-normalised, every non-text character (a newline included) turned into a space."""
    normal = unicodedata.normalize("NFKC", value)
    return "".join(" " if unicodedata.category(ch) in _NOT_TEXT else ch for ch in normal)


def one_line(value: str, max_chars: int = SUBJECT_MAX_CHARS) -> str:
    """``value`` as one line of text: whitespace runs (newlines included) become one space, control and format
    characters are dropped, and the result is at most ``max_chars`` characters (cut with an ellipsis)."""
    line = " ".join(_visible(value).split())
    if len(line) <= max_chars:
        return line
    return line[: max(0, max_chars - 1)].rstrip() + ELLIPSIS


# A dot followed by two letters or more: a domain's label ("J.R.R. Tolkien" has initials, "evil.example" not).
_DOMAIN_LIKE = re.compile(r"\.[^\W\d_]{2,}")

# A name is words of letters (and combining marks), joined by spaces, apostrophes, hyphens or dots.
_NAME_CHARS = frozenset("'\u2019-. ")  # U+2019: the typographic apostrophe


def _is_name_char(ch: str) -> bool:
    return ch in _NAME_CHARS or unicodedata.category(ch)[0] in ("L", "M")


def _one_text_line(value: str | None) -> str | None:
    """``value`` NFKC-normalised with its whitespace runs folded to single spaces; None when it is empty or holds a
    character that is not text (a line break inside it, a control or format character)."""
    if not value:
        return None
    normal = unicodedata.normalize("NFKC", value)
    if any(unicodedata.category(ch) in _NOT_TEXT for ch in normal.strip()):
        return None
    return " ".join(normal.split())


def clean_name(value: str | None, max_chars: int = NAME_MAX_CHARS, max_words: int = NAME_MAX_WORDS) -> str | None:
    """A person's or a company's name fit for a greeting, or None when ``value`` is not one.

    None (leave it out) rather than a repaired name: a value with a line break, a control character, a digit,
    markup, a URL or an address, more than ``max_words`` words or ``max_chars`` characters is not a name
    someone wrote by mistake, and cutting it would keep part of whatever it was.
    """
    name = _one_text_line(value)
    if not name or len(name) > max_chars or len(name.split()) > max_words:
        return None
    if not all(_is_name_char(ch) for ch in name) or not any(unicodedata.category(ch)[0] == "L" for ch in name):
        return None
    if ".." in name or _DOMAIN_LIKE.search(name):  # "evil.example", "www.evil": a domain, not an initial
        return None
    return name


_LABEL = re.compile(r"\A[^\W_][\w '&+.-]*\Z")


def clean_label(value: str | None, max_chars: int = LABEL_MAX_CHARS) -> str | None:
    """A short label from a system of record (a plan's name: "Pro", "Business 2024"), or None."""
    label = _one_text_line(value)
    if not label or len(label) > max_chars or not _LABEL.match(label) or _DOMAIN_LIKE.search(label):
        return None
    return label


def quoted(value: str, max_chars: int = 2000) -> str:
    """Outsider text for a person to read, every line prefixed with ``> `` (so none of it can pass for the
    message's own words), control and format characters dropped, bounded."""
    text = unicodedata.normalize("NFKC", value)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + ELLIPSIS
    lines = ["".join(" " if unicodedata.category(ch) in _NOT_TEXT else ch for ch in line).rstrip()
             for line in text.splitlines()] or [""]
    return "\n".join(f"> {line}".rstrip() for line in lines)
