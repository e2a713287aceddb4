"""Slack (``POST /webhooks/slack``): the Events API, interactivity and slash commands, on one Request URL.

Signature (https://api.slack.com/authentication/verifying-requests-from-slack): ``X-Slack-Signature:
v0=<hex HMAC-SHA256(signing secret, "v0:{X-Slack-Request-Timestamp}:{raw body}")>``. The raw body is the
bytes as received, JSON or form-encoded alike: a form is never decoded and re-encoded before checking, since
any other encoding of the same fields is different bytes. The timestamp must be within
``timestamp_tolerance_seconds`` (300, as Slack's SDKs use) of now, either way. Any configured signing secret
may match (a rotation). Slack wants a 2xx within 3 seconds: every accepted (or duplicate) delivery is a 200.
Dedupe ids are kept a day: Slack's retries come within minutes, and a signature goes stale after five.

What a verified request becomes:

* ``url_verification`` (Events API, when the Request URL is set): answered with its ``challenge`` as
  ``text/plain`` (Slack's documented answer); nothing is stored. An ``ssl_check=1`` (slash command URL
  checks) is answered with an empty 200, signed or not, as Slack's SDKs do; nothing is stored.
* ``event_callback``: one event. Dedupe id: the envelope's ``event_id`` (``Ev...``, unique across workspaces).
  Type: ``slack.<event.type>`` (``slack.app_mention``, ``slack.reaction_added``), and for a ``message`` event
  with a subtype ``slack.message.<subtype>`` (``slack.message.bot_message``, ``slack.message.message_changed``)
  so workflows can ignore edits and bots by type. Payload: the body as sent (less ``token``, below).
  Slack retries a delivery not answered with a 2xx in 3 s (``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason``)
  with the same body, so the same ``event_id``: the ingest answers it as a 200 duplicate.
* ``app_rate_limited``: one event ``slack.app_rate_limited``, id ``app_rate_limited:{team_id}:{minute}``.
* interactivity (form field ``payload``, JSON): one event ``slack.interaction.<payload.type>``
  (``block_actions``, ``view_submission``, ``shortcut``, ``message_action``, ``view_closed``). Dedupe id: the
  ``trigger_id``, fresh for each user interaction; a payload without one (``view_closed``) uses
  ``sha256:<hex of the raw body>``: Slack does not retry interactions, so the same bytes again can only be a
  replay. ``block_suggestion`` (an external select loading options) needs its answer synchronously, which a
  queued workflow cannot give: it is answered with no options and nothing is queued.
* slash commands (form fields ``command``, ``text``, ``trigger_id`` ...): one event ``slack.command``, id the
  ``trigger_id``, payload the fields.

An accepted Events API request is answered 200 with the ingest's JSON; an accepted interaction or slash
command with an empty 200, the acknowledgement Slack expects (a JSON body would be posted as a message).

The legacy verification ``token`` Slack still puts in every body is a credential, not data: it is dropped
from every payload.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

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

TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"
VERSION = "v0"

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_SIGNATURE = re.compile(r"v0=([0-9a-fA-F]{64})")


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Slack-Signature`` value Slack sends with ``body`` at ``timestamp``."""
    return f"{VERSION}=" + hmac_sha256.sign(secret, f"{VERSION}:{timestamp}:".encode() + body)


def verify(secrets: Sequence[str], headers: Mapping[str, str], body: bytes, now: float,
           tolerance_seconds: int = 300) -> None:
    """Raise :class:`SignatureError` unless ``body`` is signed by one of ``secrets`` within the tolerance.

    ``headers`` must be keyed by lower-case names.
    """
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not timestamp or not signature:
        raise SignatureError("missing_headers")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("bad_timestamp")
    ts = int(timestamp)
    if ts < now - tolerance_seconds:
        raise SignatureError("timestamp_too_old")
    if ts > now + tolerance_seconds:
        raise SignatureError("timestamp_in_future")
    offered = _SIGNATURE.fullmatch(signature.strip())
    if offered is None:
        raise SignatureError("no_v0_signature")
    base = f"{VERSION}:{timestamp}:".encode() + body  # the header's digits exactly as Slack signed them
    if not hmac_sha256.matches_any(secrets, base, [offered.group(1)]):
        raise SignatureError("signature_mismatch")


def _without_token(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "token"}


def _is_json(body: bytes) -> bool:
    return body.lstrip()[:1] == b"{"


def _json_object(text: str | bytes, what: str) -> dict[str, Any]:
    data = read_json(text, what)
    if not isinstance(data, dict):
        raise PayloadError(f"{what} is not a JSON object")
    return data


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("the body is not UTF-8") from exc
    # The form is only read here, after the signature was checked over the bytes as received.
    return dict(parse_qsl(text, keep_blank_values=True))


class SlackSource(WebhookSource):
    payload_version = "slack.v1"
    dedupe_ttl_seconds = DAY  # Slack retries within 5 minutes; a replayed signature expires after 5 too
    accepted_status = 200  # Slack wants a 2xx within 3 s, and treats anything else as a failure
    methods = ("POST",)

    def __init__(self, name: str, settings: IngestSettings) -> None:
        self.name = name
        self.tolerance_seconds = settings.timestamp_tolerance_seconds

    def handshake(self, delivery: Delivery, secrets: SourceSecrets) -> Reply | None:
        # Slack's certificate check of a slash command URL: Slack's own SDKs answer it before (and without)
        # checking a signature. It carries no event and nothing is kept, so an empty 200 gives nothing away.
        if delivery.method == "POST" and not _is_json(delivery.body):
            try:
                form = _form(delivery.body)
            except PayloadError:
                return None
            if form.get("ssl_check") == "1" and "command" not in form and "payload" not in form:
                return Reply(200, "", "text/plain")
        return None

    def verify(self, delivery: Delivery, secrets: Sequence[str], now: float) -> None:
        verify(secrets, delivery.headers, delivery.body, now, self.tolerance_seconds)

    def acknowledgement(self, delivery: Delivery) -> Reply | None:
        # To an interaction or a slash command, Slack reads a JSON answer as a message to post or a modal
        # response_action; the acknowledgement its SDKs send is an empty 200. (The run's id is in the logs.)
        return None if _is_json(delivery.body) else Reply(200, "", "text/plain")

    def challenge(self, delivery: Delivery) -> Reply | None:
        if _is_json(delivery.body):
            try:
                body = read_json(delivery.body)
            except PayloadError:
                return None  # events() says why
            if isinstance(body, dict) and body.get("type") == "url_verification":
                challenge = body.get("challenge")
                if not isinstance(challenge, str) or not challenge:
                    return Reply(400, json.dumps({"error": "invalid_payload",
                                                  "message": "url_verification without a challenge"}))
                return Reply(200, challenge, "text/plain")
            return None
        try:
            form = _form(delivery.body)
        except PayloadError:
            return None
        if "payload" in form:
            try:
                payload = read_json(form["payload"], "the payload field")
            except PayloadError:
                return None
            if isinstance(payload, dict) and payload.get("type") == "block_suggestion":
                return Reply(200, json.dumps({"options": []}))
        return None

    def events(self, delivery: Delivery) -> list[SourceEvent]:
        if _is_json(delivery.body):
            return [self._events_api(_json_object(delivery.body, "the body"))]
        form = _form(delivery.body)
        if "payload" in form:
            return [self._interaction(delivery.body, _json_object(form["payload"], "the payload field"))]
        if "command" in form:
            return [self._command(form)]
        raise PayloadError("expected an Events API JSON body, an interactivity payload or a slash command")

    @staticmethod
    def _events_api(body: dict[str, Any]) -> SourceEvent:
        kind = body.get("type")
        if kind == "event_callback":
            event_id = body.get("event_id")
            event = body.get("event")
            if not isinstance(event_id, str) or not event_id:
                raise PayloadError("event_callback without an event_id")
            if not isinstance(event, dict):
                raise PayloadError("event_callback without an event object")
            event_type = f"slack.{type_part(event.get('type'))}"
            if event.get("type") == "message" and event.get("subtype"):
                event_type += f".{type_part(event.get('subtype'))}"
            return SourceEvent(event_id=event_id, type=event_type, payload=_without_token(body))
        if kind == "app_rate_limited":
            event_id = f"app_rate_limited:{body.get('team_id', '')}:{body.get('minute_rate_limited', '')}"
            return SourceEvent(event_id=event_id, type="slack.app_rate_limited", payload=_without_token(body))
        raise PayloadError(f"unsupported Events API request type {str(kind)[:100]!r}")

    @staticmethod
    def _interaction(raw: bytes, payload: dict[str, Any]) -> SourceEvent:
        trigger_id = payload.get("trigger_id")
        if isinstance(trigger_id, str) and trigger_id:
            event_id = trigger_id
        else:
            event_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        return SourceEvent(event_id=event_id, type=f"slack.interaction.{type_part(payload.get('type'))}",
                           payload=_without_token(payload))

    @staticmethod
    def _command(form: dict[str, str]) -> SourceEvent:
        trigger_id = form.get("trigger_id")
        if not trigger_id:
            raise PayloadError("slash command without a trigger_id")
        return SourceEvent(event_id=trigger_id, type="slack.command", payload=_without_token(dict(form)))


SOURCE_CLASS = SlackSource


def sender_headers(secret: str, body: bytes, *, now: int, event_id: str, url: str = "") -> dict[str, str]:
    """The headers Slack sends with ``body`` (``event_id`` and ``url`` are not part of Slack's scheme): the
    Events API posts JSON, interactivity and slash commands a form."""
    content_type = "application/json" if _is_json(body) else "application/x-www-form-urlencoded"
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": sign(secret, now, body)}
