"""The one-time link tokens of emailed links (approvals, hand-off pages): 256 random bits, URL-safe; only their
SHA-256 is ever stored, so a copy of the table opens no link."""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_PATTERN = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")  # secrets.token_urlsafe(32); \Z: no trailing newline


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
