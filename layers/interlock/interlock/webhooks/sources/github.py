"""GitHub webhooks (``POST /webhooks/github``), verified the way GitHub signs them.

Every delivery from a webhook with a secret carries ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256
of the raw body keyed by the webhook's secret (UTF-8 text). The legacy SHA-1 ``X-Hub-Signature`` is never
accepted in its place. GitHub has one secret per webhook, any text (spaces included): a plain-text secret
value is that one secret, as typed into GitHub. During a change of secret the source holds both, as JSON
``{"signing": ["<new>", "<old>"]}``, and either verifies.

``X-GitHub-Event`` names the event (``issues``) and the body's top-level ``action``, when there is one, the
activity (``opened``): the event type is ``issues.opened``, or ``push`` for an event without an action.
``X-GitHub-Delivery`` (a GUID) identifies the delivery, and deduplicates it: a redelivery, which GitHub
allows for deliveries of the past three days, keeps the same GUID. GitHub signs no timestamp, so that
dedupe is the only replay protection: its window is four days (the redelivery horizon plus a margin). A
verified delivery without those two headers cannot be used, and is answered 400, not 401.

Note that GitHub signs the body only: ``X-GitHub-Event`` and ``X-GitHub-Delivery`` are not covered by the
signature. Someone holding a captured delivery could resend its body under another delivery GUID (a new
event to the dedupe) or another event name; the body they resend is still GitHub's, unchanged.

The webhook's content type may be ``application/json`` (the body is the payload) or
``application/x-www-form-urlencoded`` (the payload is the form field ``payload``); both are read, and the
signature is over the raw body either way. GitHub's ``ping``, sent when a webhook is created, is answered
200 once verified, with nothing recorded: it is a setup check, not an event for a workflow.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

from interlock.settings import IngestSettings
from interlock.webhooks import hmac_sha256
from interlock.webhooks.base import (
    DAY,
    Delivery,
    PayloadError,
    Reply,
    SignatureError,
    SourceEvent,
    WebhookSource,
    read_json,
)

SIGNATURE_HEADER = "x-hub-signature-256"
EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"
PREFIX = "sha256="
PAYLOAD_VERSION = "github.v1"
USER_AGENT = "GitHub-Hookshot/interlock"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ACTION = re.compile(r"[A-Za-z0-9_.-]{1,100}")
# Sender headers only: a delivery GUID made from an id that is not one (uuid5, so the same id gives the same GUID).
_DELIVERY_NAMESPACE = uuid.UUID("6f1d9c52-3b0e-4f4c-9a53-0c3f6a1f2b7d")


def signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends: ``sha256=`` + hex HMAC-SHA256 of the body."""
    return PREFIX + hmac_sha256.sign(secret, body)


def verify(secrets: Sequence[str], header: str, body: bytes) -> None:
    """Raise :class:`SignatureError` unless ``header`` is the signature of ``body`` under one of ``secrets``."""
    offered = header.strip()
    if not offered:
        raise SignatureError("missing_header")
    if not offered.startswith(PREFIX):
        raise SignatureError("bad_header")
    if not hmac_sha256.matches_any(secrets, body, [offered.removeprefix(PREFIX)]):
        raise SignatureError("signature_mismatch")


def read_payload(body: bytes, content_type: str) -> dict[str, Any]:
    """The event payload of a verified body, JSON or form-encoded; :class:`PayloadError` otherwise."""
    raw: str | bytes = body
    if content_type.split(";", 1)[0].strip().lower() == FORM_CONTENT_TYPE:
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise PayloadError("the body is not UTF-8") from None
        if len(fields.get("payload", [])) != 1:
            raise PayloadError("a form-encoded GitHub delivery carries its JSON in one form field named 'payload'")
        raw = fields["payload"][0]
    payload = read_json(raw, "the payload")
    if not isinstance(payload, dict):
        raise PayloadError("a GitHub webhook payload is a JSON object")
    return payload


def event_name(delivery: Delivery) -> str:
    name = delivery.header(EVENT_HEADER).strip()
    if not name:
        raise PayloadError("the X-GitHub-Event header, which names the event, is missing")
    if not _EVENT_NAME.fullmatch(name):
        raise PayloadError("the X-GitHub-Event header is not a GitHub event name (lower-case letters, digits, _)")
    return name


def event_type(name: str, payload: dict[str, Any]) -> str:
    """``issues`` + ``{"action": "opened"}`` -> ``issues.opened``; an event without an action is its name."""
    action = payload.get("action")
    if action is None:
        return name
    if not isinstance(action, str) or not _ACTION.fullmatch(action):
        raise PayloadError("action: expected a GitHub action name such as 'opened'")
    return f"{name}.{action}"


class GitHubSource(WebhookSource):
    payload_version = PAYLOAD_VERSION
    dedupe_ttl_seconds = 4 * DAY  # GitHub redelivers (same GUID) deliveries of the past 3 days
    secret_is_free_text = True

    def __init__(self, name: str, settings: IngestSettings) -> None:
        self.name = name

    def verify(self, delivery: Delivery, secrets: Sequence[str], now: float) -> None:
        verify(secrets, delivery.header(SIGNATURE_HEADER), delivery.body)

    def challenge(self, delivery: Delivery) -> Reply | None:
        if delivery.header(EVENT_HEADER).strip() != "ping":
            return None
        # A verified ping: the webhook is set up right. Say so, and keep nothing.
        return Reply(200, json.dumps({"ok": True, "event": "ping"}))

    def events(self, delivery: Delivery) -> list[SourceEvent]:
        name = event_name(delivery)
        delivery_id = delivery.header(DELIVERY_HEADER).strip()
        if not delivery_id:
            raise PayloadError("the X-GitHub-Delivery header, which identifies the delivery, is missing")
        if not _DELIVERY_ID.fullmatch(delivery_id):
            raise PayloadError("the X-GitHub-Delivery header is not a delivery GUID")
        payload = read_payload(delivery.body, delivery.header("content-type"))
        return [SourceEvent(event_id=delivery_id, type=event_type(name, payload), payload=payload)]


SOURCE_CLASS = GitHubSource


# -- what GitHub sends (for `interlock send github` and the tests) -----------------------------------------------

# Top-level payload keys that tell which event a payload is, most specific first.
_EVENT_BY_KEYS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("zen", "hook_id"), "ping"),
    (("pull_request", "comment"), "pull_request_review_comment"),
    (("pull_request", "review"), "pull_request_review"),
    (("pull_request", "thread"), "pull_request_review_thread"),
    (("pull_request",), "pull_request"),
    (("issue", "comment"), "issue_comment"),
    (("issue",), "issues"),
    (("discussion", "comment"), "discussion_comment"),
    (("discussion",), "discussion"),
    (("ref", "before", "after", "commits"), "push"),
    (("workflow_run",), "workflow_run"),
    (("workflow_job",), "workflow_job"),
    (("check_run",), "check_run"),
    (("check_suite",), "check_suite"),
    (("release",), "release"),
    (("deployment_status",), "deployment_status"),
    (("deployment",), "deployment"),
    (("comment",), "commit_comment"),
)


def infer_event(payload: dict[str, Any]) -> str:
    """The ``X-GitHub-Event`` name for a payload, told by its top-level keys (ValueError if it cannot be)."""
    for keys, name in _EVENT_BY_KEYS:
        if all(key in payload for key in keys):
            return name
    raise ValueError("cannot tell which GitHub event this payload is; pass event=<X-GitHub-Event name>")


def delivery_guid(event_id: str) -> str:
    """``event_id`` if it is a GUID, else a GUID made from it (the same id always gives the same GUID)."""
    try:
        return str(uuid.UUID(event_id))
    except ValueError:
        return str(uuid.uuid5(_DELIVERY_NAMESPACE, event_id))


def sender_headers(
    secret: str, body: bytes, *, now: int, event_id: str, url: str = "", event: str | None = None
) -> dict[str, str]:
    """The headers GitHub sends with ``body`` from a repository webhook with ``secret``.

    The event name is ``event``, or told from the payload (an issue without a comment is ``issues``);
    ``X-GitHub-Delivery`` is ``event_id`` as a GUID. ``now`` and ``url`` are not used: GitHub signs neither.
    """
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("a GitHub webhook payload is a JSON object")
    repository = payload.get("repository")
    headers = {
        "X-GitHub-Delivery": delivery_guid(event_id),
        "X-GitHub-Event": event or infer_event(payload),
        "X-GitHub-Hook-ID": str(payload.get("hook_id", 1)),
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": signature(secret, body),
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
    }
    if isinstance(repository, dict) and "id" in repository:
        headers["X-GitHub-Hook-Installation-Target-Type"] = "repository"
        headers["X-GitHub-Hook-Installation-Target-ID"] = str(repository["id"])
    return headers
