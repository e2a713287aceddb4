"""WhatsApp Cloud API (Meta webhooks): ``GET /webhooks/whatsapp`` to subscribe, ``POST`` for notifications.

Subscribing (https://developers.facebook.com/docs/graph-api/webhooks/getting-started): Meta sends
``GET ?hub.mode=subscribe&hub.challenge=<int>&hub.verify_token=<the token set in the App Dashboard>``. When the
token matches the source's ``verify_token`` (compared in constant time) the bare challenge is answered as
``text/plain`` 200; anything else is a 403. Nothing is stored.

Notifications: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``, any configured app
secret may match (a rotation). There is no timestamp in the scheme, so deduplication is the replay
protection: ids are kept for 8 days, longer than the 7 days Meta keeps retrying a delivery not answered 200.

A delivery batches ``entry[].changes[].value``; each value may carry ``messages[]`` (from WhatsApp users) and
``statuses[]`` (of messages the business sent). Each is its own event:

* a message: id its ``wamid.…``; type ``whatsapp.message.<type>`` (``text``, ``image``, ``interactive``,
  ``button``, ``reaction`` ...);
* a status: id ``{wamid}:{status}`` (one event per transition: sent, delivered, read, failed, ...), with
  ``:{recipient_participant_id}`` appended for a message sent to a group, where every participant's device
  reports its own; type ``whatsapp.status.<status>``.

Each payload is the message (``message``) or the status (``status``) with the context it came with: the
business account id (``waba_id``), ``metadata`` (the business phone number) and ``contacts`` (the senders'
profiles).

A change with neither (another subscribed field, such as ``account_update`` or
``message_template_status_update``, or a ``messages`` change carrying only ``errors``) is one event too, so
that it is recorded (as ``no_route`` until a workflow wants it) rather than dropped: type
``whatsapp.<field>``, payload the context and the change's ``value``, id ``<field>:<sha256>`` of the change
and its account, which Meta's retry of the same delivery repeats exactly. A verified delivery with no
change at all (no entries, or another object's notification) is answered 200 with an empty list, so Meta
does not retry it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from interlock.observability import count, logger
from interlock.settings import IngestSettings
from interlock.webhooks import hmac_sha256
from interlock.webhooks.base import (
    DAY,
    Delivery,
    PayloadError,
    Reply,
    SignatureError,
    SourceEvent,
    SourceSecrets,
    WebhookSource,
    read_json,
    type_part,
)

SIGNATURE_HEADER = "x-hub-signature-256"
VERIFY_TOKEN = "verify_token"  # the source secret's extra holding the App Dashboard's Verify Token

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_CHALLENGE = re.compile(r"[A-Za-z0-9_.\-]{1,256}")


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return "sha256=" + hmac_sha256.sign(secret, body)


def verify(secrets: Sequence[str], headers: Mapping[str, str], body: bytes) -> None:
    """Raise :class:`SignatureError` unless ``body`` is signed with one of ``secrets``.

    ``headers`` must be keyed by lower-case names.
    """
    signature = headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise SignatureError("missing_headers")
    offered = _SIGNATURE.fullmatch(signature.strip())
    if offered is None:
        raise SignatureError("no_sha256_signature")
    if not hmac_sha256.matches_any(secrets, body, [offered.group(1)]):
        raise SignatureError("signature_mismatch")


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    yield from (item for item in _items(value) if isinstance(item, dict))


def _items(value: Any) -> list[Any]:
    """A list field's items; anything else (a verified body can still be malformed) has none."""
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class WhatsAppSource(WebhookSource):
    payload_version = "whatsapp.v1"
    dedupe_ttl_seconds = 8 * DAY  # Meta retries for up to 7 days, and no timestamp bounds a replay
    accepted_status = 200  # Meta counts only a 200 as delivered
    methods = ("GET", "POST")

    def __init__(self, name: str, settings: IngestSettings) -> None:
        self.name = name

    def handshake(self, delivery: Delivery, secrets: SourceSecrets) -> Reply | None:
        if delivery.method != "GET":
            return None
        expected = secrets.extras.get(VERIFY_TOKEN, "")
        offered = delivery.query.get("hub.verify_token", "")
        challenge = delivery.query.get("hub.challenge", "")
        token_ok = bool(expected) and hmac.compare_digest(offered.encode(), expected.encode())
        if delivery.query.get("hub.mode") == "subscribe" and token_ok and _CHALLENGE.fullmatch(challenge):
            return Reply(200, challenge, "text/plain")
        return Reply(403, "Forbidden", "text/plain")

    def verify(self, delivery: Delivery, secrets: Sequence[str], now: float) -> None:
        verify(secrets, delivery.headers, delivery.body)

    def events(self, delivery: Delivery) -> list[SourceEvent]:
        body = read_json(delivery.body)
        if not isinstance(body, dict) or not isinstance(body.get("entry", []), list):
            raise PayloadError("expected a webhook notification: an object with an entry array")
        events: list[SourceEvent] = []
        unreadable = 0
        for entry in _dicts(body.get("entry")):
            for change in _dicts(entry.get("changes")):
                value = change.get("value")
                if not isinstance(value, dict):
                    continue
                context = {"waba_id": _text(entry.get("id")), "field": _text(change.get("field")),
                           "metadata": value.get("metadata") or {}, "contacts": value.get("contacts") or []}
                unreadable += sum(key in value and not isinstance(value[key], list) for key in ("messages", "statuses"))
                for message in _items(value.get("messages")):
                    event = self._message(message, context)
                    unreadable += event is None
                    events += [event] if event else []
                for status in _items(value.get("statuses")):
                    event = self._status(status, context)
                    unreadable += event is None
                    events += [event] if event else []
                if "messages" not in value and "statuses" not in value:
                    events.append(self._change(entry, change, value, context))
        if unreadable:
            logger.warning("whatsapp items without an id or type skipped", extra={"skipped": unreadable})
            count("WebhookEventsUnreadable", unreadable)
            if not events:
                raise PayloadError("no message or status in the delivery has an id")
        return events

    @staticmethod
    def _message(message: Any, context: dict[str, Any]) -> SourceEvent | None:
        if not isinstance(message, dict) or not _text(message.get("id")):
            return None
        try:
            return SourceEvent(event_id=message["id"], type=f"whatsapp.message.{type_part(message.get('type'))}",
                               payload={**context, "message": message})
        except PayloadError:  # an id beyond the shared limits: unreadable, like one without an id
            return None

    @staticmethod
    def _change(entry: dict[str, Any], change: dict[str, Any], value: dict[str, Any],
                context: dict[str, Any]) -> SourceEvent:
        field = type_part(change.get("field"))
        canonical = json.dumps({"entry": entry.get("id"), "change": change}, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:40]
        return SourceEvent(event_id=f"{field}:{digest}", type=f"whatsapp.{field}", payload={**context, "value": value})

    @staticmethod
    def _status(status: Any, context: dict[str, Any]) -> SourceEvent | None:
        if not isinstance(status, dict) or not _text(status.get("id")) or not _text(status.get("status")):
            return None
        event_id = f"{status['id']}:{status['status']}"
        if _text(status.get("recipient_participant_id")):
            event_id += f":{status['recipient_participant_id']}"
        try:
            return SourceEvent(event_id=event_id, type=f"whatsapp.status.{type_part(status.get('status'))}",
                               payload={**context, "status": status})
        except PayloadError:  # an id beyond the shared limits: unreadable, like one without an id
            return None


SOURCE_CLASS = WhatsAppSource


def sender_headers(secret: str, body: bytes, *, now: int, event_id: str, url: str = "") -> dict[str, str]:
    """The headers Meta sends with ``body`` (the scheme has no timestamp, id or URL in it)."""
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, body)}
