"""Stripe webhooks (``POST /webhooks/stripe``), verified the way Stripe signs them.

Every delivery carries ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` (Stripe may add other
schemes, such as ``v0`` on test-mode events; they are ignored, so a downgrade to a weaker scheme is
impossible). Each ``v1`` is the hex HMAC-SHA256 of ``{t}.{raw body}`` keyed by the endpoint's signing
secret *as text*: the whole ``whsec_...`` string, UTF-8 encoded, not base64-decoded as Standard Webhooks
does. While a secret is being rolled, Stripe signs with the old and the new secret and sends one ``v1``
for each; a delivery is accepted when any ``v1`` matches any of the source's secrets. This is what
stripe-python's ``WebhookSignature.verify_header`` checks, except that the timestamp is held to
``timestamp_tolerance_seconds`` in *both* directions (the library only refuses old ones).

The body is one Stripe event (a "snapshot" event, ``"object": "event"``): its ``id`` (``evt_...``)
deduplicates it, its ``type`` (``payment_intent.succeeded``) names it, and the whole event object, as Stripe
sent it, is the payload. Thin events (``"object": "v2.core.event"``, from an event destination set to thin
payloads) carry no object snapshot and are refused with a 400 that says so.

``payload_version`` is ``stripe.v1``: "a Stripe v1 (snapshot) Event object, verbatim". The framework records
one payload version per source, while the shape of ``data.object`` follows the API version the endpoint
is pinned to, which each event names in its own ``api_version`` field (``payload["api_version"]``):
workflows that depend on the object's shape read it there.

Stripe retries a failed delivery for up to three days, with the same event id, so the dedupe window is
four days (the retry horizon plus a margin). Stripe wants a 2xx: an accepted delivery is answered 200.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from interlock.settings import IngestSettings
from interlock.webhooks import hmac_sha256
from interlock.webhooks.base import (
    DAY,
    Delivery,
    PayloadError,
    SignatureError,
    SourceEvent,
    WebhookSource,
    read_json,
)

SIGNATURE_HEADER = "stripe-signature"
SCHEME = "v1"
PAYLOAD_VERSION = "stripe.v1"
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,250}")
_MAX_TYPE_LENGTH = 200


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` signature Stripe computes: HMAC-SHA256 of ``{timestamp}.{body}`` keyed by the secret text."""
    return hmac_sha256.sign(secret, f"{timestamp}.".encode() + body)


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Stripe-Signature`` value Stripe sends when it signs ``body`` with one secret at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def parse_header(value: str) -> tuple[int, list[str]]:
    """``t=...,v1=...,v1=...,v0=...`` -> (timestamp, the ``v1`` signatures); SignatureError if unreadable.

    Like stripe-python: items are split on ``,`` then at the first ``=``; the first ``t`` counts; items of
    any other scheme, and items without ``=``, are ignored.
    """
    timestamp: str | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None:
            timestamp = val.strip()
        elif key == SCHEME:
            signatures.append(val.strip())
    if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("bad_header")
    if not signatures:
        raise SignatureError("no_v1_signature")
    return int(timestamp), signatures


def verify(secrets: Sequence[str], header: str, body: bytes, now: float, tolerance_seconds: int = 300) -> int:
    """Check a delivery's ``Stripe-Signature``; return its timestamp or raise :class:`SignatureError`."""
    if not header.strip():
        raise SignatureError("missing_header")
    timestamp, offered = parse_header(header)
    # The signature first, so that a refusal's reason tells a forgery from a genuine but stale delivery.
    if not hmac_sha256.matches_any(secrets, f"{timestamp}.".encode() + body, offered):
        raise SignatureError("signature_mismatch")
    if timestamp < now - tolerance_seconds:
        raise SignatureError("timestamp_too_old")
    if timestamp > now + tolerance_seconds:
        raise SignatureError("timestamp_in_future")
    return timestamp


def read_event(body: bytes) -> dict[str, Any]:
    """The Stripe event a verified body holds; :class:`PayloadError` with a readable reason otherwise."""
    event = read_json(body)
    if not isinstance(event, dict):
        raise PayloadError("a Stripe webhook body is one event: a JSON object")
    kind = event.get("object")
    if kind is not None and kind != "event":
        if kind == "v2.core.event":
            raise PayloadError("this is a Stripe thin event (object v2.core.event), which carries no object "
                               "snapshot: set the event destination's payload style to snapshot")
        raise PayloadError(f"object: expected 'event', got {kind!r}")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise PayloadError("id: a Stripe event id ('evt_' followed by letters, digits and underscores) is required")
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type.strip() or len(event_type) > _MAX_TYPE_LENGTH:
        raise PayloadError(f"type: the event type (a non-empty string of at most {_MAX_TYPE_LENGTH} characters, "
                           "such as 'payment_intent.succeeded') is required")
    return event


class StripeSource(WebhookSource):
    payload_version = PAYLOAD_VERSION
    dedupe_ttl_seconds = 4 * DAY  # Stripe retries for up to 3 days
    accepted_status = 200

    def __init__(self, name: str, settings: IngestSettings) -> None:
        self.name = name
        self.tolerance_seconds = settings.timestamp_tolerance_seconds

    def verify(self, delivery: Delivery, secrets: Sequence[str], now: float) -> None:
        verify(secrets, delivery.header(SIGNATURE_HEADER), delivery.body, now, self.tolerance_seconds)

    def events(self, delivery: Delivery) -> list[SourceEvent]:
        event = read_event(delivery.body)
        return [SourceEvent(event_id=event["id"], type=event["type"], payload=event)]


SOURCE_CLASS = StripeSource


def sender_headers(secret: str, body: bytes, *, now: int, event_id: str, url: str = "") -> dict[str, str]:
    """The headers Stripe sends with ``body`` signed by ``secret`` at ``now`` (one ``v1``).

    ``event_id`` and ``url`` are not used: Stripe's event id travels in the body (its ``id``), and Stripe
    does not sign the URL.
    """
    return {
        "Stripe-Signature": signature_header(secret, now, body),
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
    }
