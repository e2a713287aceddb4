"""HubSpot app webhooks (the Webhooks API): ``POST /webhooks/hubspot``, signed as HubSpot signs.

**Signature v3** (what this source verifies). HubSpot sends ``X-HubSpot-Signature-v3`` and
``X-HubSpot-Request-Timestamp`` (Unix time in *milliseconds*). The signature is the base64 of an
HMAC-SHA256, keyed by the app's client secret (UTF-8), over ``method + uri + body + timestamp`` with no
separators, where

* ``method`` is the HTTP method (``POST``);
* ``uri`` is the full URL HubSpot called, scheme and host included, with its query string if it has one,
  after decoding exactly these escapes, as HubSpot's table spells them, and no others:
  ``%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B`` (so ``%20`` stays ``%20``);
* ``body`` is the raw request body, byte for byte;
* ``timestamp`` is the ``X-HubSpot-Request-Timestamp`` header exactly as sent.

A request stamped more than 5 minutes ago is refused (HubSpot's rule), and so is one stamped more than 5
minutes ahead: a future stamp can only be clock skew, and accepting a far-future one would stretch the
window in which a captured request can be replayed. A tighter ``INTERLOCK_TIMESTAMP_TOLERANCE_SECONDS``
narrows both; a looser one does not widen HubSpot's 5 minutes. Any of the source's secrets may match (a
rotation holds the old and the new client secret); the comparison is constant-time.

**The URL is configuration.** API Gateway does not pass on the URL as it was called, so the URL is
rebuilt as ``INTERLOCK_PUBLIC_BASE_URL`` + the request path + the query string. The base URL must be what
HubSpot's target URL starts with, so that base + ``/webhooks/hubspot`` is the target URL: for the default
``execute-api`` endpoint that is ``https://{api}.execute-api.{region}.amazonaws.com/{stage}`` (API Gateway's
``path`` leaves the stage out). The query string is re-encoded from the parameters API Gateway decoded, in
the order it passed them on: a target URL with a query string verifies when its parameters are unique and
percent-encoded (``%20``, not ``+``, for a space); the simplest target URL has no query string at all. With
no base URL configured, v3 cannot be verified and every v3 delivery is refused (401, reason
``public_base_url_not_configured``), with an error logged once per cold start as well.

Why not refuse to start instead: the ingest function serves every source, and a cold-start error would
take Stripe, Slack and the forms down with it for a HubSpot setting; the base URL is also often only known
after the first deploy (the API's URL is made by the deploy). The cost, and the reason to set it before
subscribing: HubSpot does not retry a 401 (nor a 400, 403, 404 or 405), so deliveries refused for this
reason are lost to us.

**Legacy v1/v2** (``X-HubSpot-Signature`` with ``X-HubSpot-Signature-Version``) are accepted only for
sources listed in ``INTERLOCK_LEGACY_SIGNATURE_SOURCES``, and only when the request carries no v3
signature (HubSpot sends both; when v3 is there, v3 alone decides: a request whose v3 signature fails,
or is stale, is not rescued by its timeless legacy one). v1 is the SHA-256 hex of ``client_secret + body``; v2 of
``client_secret + method + uri + body``, with the URI as called (not decoded). **Neither has a
timestamp**: a captured legacy request can be replayed for ever (dedupe catches a replay of an event we
still remember, for 3 days), which is why they are off unless a source needs them.

**The body** is a JSON array of events (HubSpot batches them); each is an object with ``eventId`` and
``subscriptionType`` (``contact.creation``, ``contact.propertyChange``, ``object.creation``...). Each becomes
its own event of type ``hubspot.<subscriptionType>`` with the element, unchanged, as its payload. HubSpot's
documentation says of ``eventId``: "This value is not guaranteed to be unique", so the dedupe id scopes it
to the account and the subscription that sent it, ``<portalId>:<subscriptionId>:<eventId>``: a retry
resends the same event (with ``attemptNumber`` counting up, which is left out), and two events that happen
to share an ``eventId`` in different accounts or subscriptions are not taken for one another. It is the bare
``eventId`` only for an event carrying neither. HubSpot's retries span about a day; dedupe keys are kept for
3 days.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from interlock.observability import count, logger
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

SIGNATURE_V3_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
LEGACY_SIGNATURE_HEADER = "X-HubSpot-Signature"
LEGACY_VERSION_HEADER = "X-HubSpot-Signature-Version"

MAX_AGE_SECONDS = 300  # HubSpot: "Reject the request if the timestamp is older than 5 minutes."
# Unix time in milliseconds has had 13 digits since 2001; a stamp below this is seconds sent by mistake.
_MIN_MILLISECONDS = 10**11

# HubSpot's table: the escapes decoded in the URI before it is signed, and no others.
DECODED_ESCAPES: dict[str, str] = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}
_ESCAPES = re.compile("|".join(DECODED_ESCAPES))
_TIMESTAMP = re.compile(r"[0-9]{1,19}")


def decode_uri(uri: str) -> str:
    """The URI as HubSpot signs it: only the escapes in HubSpot's table decoded, in a single pass."""
    return _ESCAPES.sub(lambda match: DECODED_ESCAPES[match.group(0)], uri)


def request_url(base_url: str, path: str, query: Mapping[str, str]) -> str:
    """The public URL a request was sent to: ``base_url`` + ``path`` + the query string, re-encoded."""
    url = base_url.rstrip("/") + path
    if query:
        url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
    return url


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The ``X-HubSpot-Signature-v3`` value for a request to ``uri`` (as called: decoded here)."""
    return hmac_sha256.sign(secret, _v3_message(method, uri, body, timestamp), "base64")


def _v3_message(method: str, uri: str, body: bytes, timestamp: str) -> bytes:
    return method.encode() + decode_uri(uri).encode("utf-8") + body + timestamp.encode()


def sign_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode("utf-8") + body).hexdigest()


def sign_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode("utf-8") + method.encode() + uri.encode("utf-8") + body).hexdigest()


def _matches(expected: str, offered: str) -> bool:
    return hmac.compare_digest(expected.encode(), offered.encode("utf-8", "replace"))


class HubSpotEvent(BaseModel):
    """What this source needs of each element of the array; the element itself is the payload."""

    model_config = ConfigDict(extra="allow")

    eventId: StrictInt | Annotated[StrictStr, Field(min_length=1, max_length=100)]
    subscriptionType: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
    portalId: StrictInt | StrictStr | None = None
    subscriptionId: StrictInt | StrictStr | None = None

    def dedupe_id(self) -> str:
        if self.portalId is None and self.subscriptionId is None:
            return str(self.eventId)
        portal, subscription = ("-" if v is None else str(v) for v in (self.portalId, self.subscriptionId))
        return f"{portal}:{subscription}:{self.eventId}"


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())


class HubSpotSource(WebhookSource):
    # The payload's shape (the Webhooks API's event objects) whichever signature version vouched for it:
    # the signature version is how it was authenticated, not what it holds.
    payload_version = "hubspot.webhooks.v3"
    dedupe_ttl_seconds = 3 * DAY  # HubSpot retries for up to 24 hours
    accepted_status = 200

    def __init__(self, name: str, settings: IngestSettings) -> None:
        self.name = name
        self.base_url = settings.public_base_url.strip().rstrip("/")
        self.max_age_seconds = min(MAX_AGE_SECONDS, settings.timestamp_tolerance_seconds)
        legacy = {s.strip() for s in settings.legacy_signature_sources.split(",")}
        self.legacy_enabled = name in legacy
        if not self.base_url:
            logger.error("INTERLOCK_PUBLIC_BASE_URL is not set: HubSpot v3 signatures cannot be verified, and "
                         "every delivery carrying one will be refused", extra={"source": name})

    # -- verification ---------------------------------------------------------------------------------

    def verify(self, delivery: Delivery, secrets: Sequence[str], now: float) -> None:
        if delivery.header(SIGNATURE_V3_HEADER):
            self._verify_v3(delivery, secrets, now)
        elif delivery.header(LEGACY_SIGNATURE_HEADER):
            self._verify_legacy(delivery, secrets)
        else:
            raise SignatureError("missing_headers")

    def url(self, delivery: Delivery) -> str:
        return request_url(self.base_url, delivery.path or f"/webhooks/{self.name}", delivery.query)

    def _verify_v3(self, delivery: Delivery, secrets: Sequence[str], now: float) -> None:
        offered = delivery.header(SIGNATURE_V3_HEADER).strip()
        timestamp = delivery.header(TIMESTAMP_HEADER).strip()
        if not timestamp:
            raise SignatureError("missing_headers")
        if not self.base_url:
            raise SignatureError("public_base_url_not_configured")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise SignatureError("bad_timestamp")
        stamped_ms = int(timestamp)
        if stamped_ms < _MIN_MILLISECONDS:
            raise SignatureError("timestamp_not_milliseconds")
        now_ms = now * 1000
        if stamped_ms < now_ms - self.max_age_seconds * 1000:
            raise SignatureError("timestamp_too_old")
        if stamped_ms > now_ms + self.max_age_seconds * 1000:
            raise SignatureError("timestamp_in_future")
        message = _v3_message(delivery.method, self.url(delivery), delivery.body, timestamp)
        if not hmac_sha256.matches_any(secrets, message, [offered], "base64"):
            raise SignatureError("signature_mismatch")

    def _verify_legacy(self, delivery: Delivery, secrets: Sequence[str]) -> None:
        """v1 and v2 carry no timestamp: nothing bounds when a captured request can be replayed."""
        if not self.legacy_enabled:
            raise SignatureError("legacy_signature_disabled")
        version = delivery.header(LEGACY_VERSION_HEADER).strip().lower()
        offered = delivery.header(LEGACY_SIGNATURE_HEADER).strip().lower()
        if version == "v1":
            candidates = [sign_v1(secret, delivery.body) for secret in secrets]
        elif version == "v2":
            if not self.base_url:
                raise SignatureError("public_base_url_not_configured")
            uri = self.url(delivery)
            candidates = [sign_v2(secret, delivery.method, uri, delivery.body) for secret in secrets]
        else:
            raise SignatureError("unsupported_signature_version")
        if not any(_matches(expected, offered) for expected in candidates):
            raise SignatureError("signature_mismatch")

    # -- events -----------------------------------------------------------------------------------------

    def events(self, delivery: Delivery) -> list[SourceEvent]:
        body: Any = read_json(delivery.body)  # UTF-8, as HubSpot sends it (json.loads alone would guess UTF-16/32)
        if not isinstance(body, list):
            raise PayloadError(f"expected a JSON array of HubSpot events, got a JSON {type(body).__name__}")
        if not body:
            raise PayloadError("the array holds no events")
        events: list[SourceEvent] = []
        problems: list[str] = []
        for index, element in enumerate(body):
            if not isinstance(element, dict):
                problems.append(f"event {index}: expected an object, got a JSON {type(element).__name__}")
                continue
            try:
                event = HubSpotEvent.model_validate(element)
                events.append(SourceEvent(event_id=event.dedupe_id(), type=f"hubspot.{event.subscriptionType}",
                                          payload=element))
            except ValidationError as exc:
                problems.append(f"event {index}: {_problems(exc)}")
            except PayloadError as exc:  # an id beyond the shared limits (a portalId of 3,000 characters)
                problems.append(f"event {index}: {exc}")
        if problems and not events:
            raise PayloadError("; ".join(problems))
        if problems:
            # HubSpot does not retry a 4xx: refusing the batch would lose its readable events with the others.
            logger.warning("hubspot batch elements skipped", extra={"skipped": len(problems),
                                                                    "problems": problems[:10]})
            count("WebhookEventsUnreadable", len(problems))
        return events


SOURCE_CLASS = HubSpotSource


def sender_headers(secret: str, body: bytes, *, now: int, event_id: str, url: str = "") -> dict[str, str]:
    """The v3 headers HubSpot sends with ``body`` in a ``POST`` to ``url`` (the full URL called), signed with
    the app's client secret. ``event_id`` is unused: HubSpot's event ids are in the body."""
    if not url:
        raise ValueError("HubSpot signs the URL it calls: pass url= (the full public URL of /webhooks/<source>)")
    timestamp = str(now * 1000)
    return {SIGNATURE_V3_HEADER: sign_v3(secret, "POST", url, body, timestamp), TIMESTAMP_HEADER: timestamp}
