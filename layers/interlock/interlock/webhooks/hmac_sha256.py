"""HMAC-SHA256 signatures as the providers send them, and the one constant-time way to check them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Literal

Encoding = Literal["hex", "base64"]


def sign(secret: str, message: bytes, encoding: Encoding = "hex") -> str:
    """HMAC-SHA256 of ``message`` keyed by the secret's UTF-8 text, as lower-case hex or base64."""
    mac = hmac.new(secret.encode("utf-8"), message, hashlib.sha256)
    return mac.hexdigest() if encoding == "hex" else base64.b64encode(mac.digest()).decode()


def matches_any(secrets: Iterable[str], message: bytes, offered: Sequence[str], encoding: Encoding = "hex") -> bool:
    """True if one of ``offered`` is the signature of ``message`` under one of ``secrets``.

    Every pair is compared, with no early exit, so the time taken says nothing about which matched; a blank
    secret never matches (an HMAC under an empty key is a signature anybody can make); offered text that is
    not ASCII cannot match and cannot make the comparison raise. Hex is compared case-insensitively.
    """
    normalise = str.lower if encoding == "hex" else str
    candidates = [normalise(o).encode("ascii", "replace") for o in offered]
    matched = False
    for secret in secrets:
        if not secret.strip():
            continue
        expected = sign(secret, message, encoding).encode("ascii")
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    return matched
