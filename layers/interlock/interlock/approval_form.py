"""The approval page's form, as posted to ``POST /approvals/{token}``: read into a decision, or refused.

The body is outsider bytes (anyone holding a link, or a scanner following it): whatever it is, reading it
answers a :class:`~interlock.approvals.Decision` or None (the page's "bad decision" answer, a 400), never an
exception. A form the page itself posts is ``decision=approve`` or ``decision=reject``, URL-encoded UTF-8.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs

from interlock.approvals import Decision

MAX_FORM_BYTES = 4096  # the page's form is one short field; a body larger than this is no answer to it
MAX_FORM_FIELDS = 20


def read_form(body: str | None, is_base64: bool = False,
              max_bytes: int = MAX_FORM_BYTES) -> dict[str, list[str]] | None:
    """A posted URL-encoded form's fields; None if the body is none (empty, not base64 when marked so, not UTF-8,
    larger than ``max_bytes``, more than :data:`MAX_FORM_FIELDS` fields)."""
    if not body:
        return None
    if is_base64:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        return None
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                        max_num_fields=MAX_FORM_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None


def read_decision(body: str | None, is_base64: bool = False) -> Decision | None:
    """The decision a posted form carries; None if the body is not the page's form (:func:`read_form`; no
    ``decision`` or more than one, or not one of the choices)."""
    fields = read_form(body, is_base64)
    if fields is None:
        return None
    values = fields.get("decision", [])
    if len(values) != 1:
        return None
    try:
        return Decision(values[0])
    except ValueError:
        return None
