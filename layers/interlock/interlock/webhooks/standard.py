"""Standard Webhooks (https://www.standardwebhooks.com), the scheme of the ``form`` source.

Headers ``webhook-id``, ``webhook-timestamp`` (unix seconds) and ``webhook-signature`` (space-separated
``v1,<base64>``; any one may match, which is how a sender rotates secrets). The signature is
HMAC-SHA256 over ``{id}.{timestamp}.{raw body}`` keyed by the base64-decoded part of the secret after
``whsec_``. Svix senders use the same scheme with ``svix-*`` header names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
HEADER_NAMES = (("webhook-id", "webhook-timestamp", "webhook-signature"),
                ("svix-id", "svix-timestamp", "svix-signature"))


class SignatureError(Exception):
    """The request is not provably from the sender: answered 401. ``reason`` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def secret_key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    raw += "=" * (-len(raw) % 4)  # senders may hand out unpadded base64; the official libraries accept it
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64") from exc
    if not key:
        # HMAC under an empty key is a signature anybody can make.
        raise ValueError("a Standard Webhooks secret may not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value a sender holding ``secret`` would send."""
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_seconds: int = 300,
) -> str:
    """Check a delivery; return its message id, or raise :class:`SignatureError` with a loggable reason.

    ``headers`` must be keyed by lower-case names.
    """
    id_name, ts_name, sig_name = next((names for names in HEADER_NAMES if names[0] in headers), HEADER_NAMES[0])
    msg_id = headers.get(id_name, "")
    timestamp = headers.get(ts_name, "")
    signatures = headers.get(sig_name, "")
    if not msg_id or not timestamp or not signatures:
        raise SignatureError("missing_headers")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("bad_timestamp")  # plain digits only: int() would take "+1", " 1" and "1_0"
    ts = int(timestamp)
    if ts < now - tolerance_seconds:
        raise SignatureError("timestamp_too_old")
    if ts > now + tolerance_seconds:
        raise SignatureError("timestamp_in_future")
    signed = f"{msg_id}.{ts}.".encode() + body
    offered = [part.split(",", 1)[1] for part in signatures.split() if part.startswith("v1,")]
    if not offered:
        raise SignatureError("no_v1_signature")
    keys = _usable_keys(secrets)
    if not keys:
        raise SignatureError("no_usable_secret")
    for key in keys:
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for candidate in offered:
            if hmac.compare_digest(expected.encode(), candidate.encode()):
                return msg_id
    raise SignatureError("signature_mismatch")


def _usable_keys(secrets: Sequence[str]) -> list[bytes]:
    """The keys of the secrets that are Standard Webhooks secrets. One that is not (a typo while rotating) is
    skipped and logged, so the others still verify; with none usable, nothing does."""
    keys: list[bytes] = []
    for position, secret in enumerate(secrets):
        try:
            keys.append(secret_key(secret))
        except ValueError as exc:
            from interlock.observability import logger  # only on this path: senders import this module too

            logger.error("a stored Standard Webhooks secret is unusable and skipped",
                         extra={"position": position, "problem": str(exc)})
    return keys
