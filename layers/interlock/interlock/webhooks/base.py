"""What every webhook source is: a small plug-in the ingest drives, one per provider.

A source answers four questions about a delivery (one HTTP request to ``/webhooks/{source}``):

1. is it a handshake the provider makes before any event (WhatsApp's ``GET`` verify), and what to answer;
2. is it really from the provider (:meth:`WebhookSource.verify`, over the raw body bytes, constant-time);
3. once verified, does it want an answer rather than processing (Slack's ``url_verification``);
4. which events does it carry (:meth:`WebhookSource.events`): each with its type and the provider's id
   for it, which is what deduplicates it, and the payload as the workflows will see it.

The ingest does everything else the same way for every source: the size limit, the secrets, the
envelope, dedupe, the timeline and the queue. Adding a source means adding a plug-in to the registry;
the ingest and its handler do not change.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from interlock.webhooks.standard import SignatureError

__all__ = [
    "Delivery",
    "PayloadError",
    "Reply",
    "SecretFormatError",
    "SignatureError",
    "SourceEvent",
    "SourceSecrets",
    "WebhookSource",
    "parse_secret",
    "read_json",
    "type_part",
]

DAY = 24 * 3600
_TYPE_PART = re.compile(r"[A-Za-z0-9_]{1,100}")


def type_part(value: Any) -> str:
    """A provider's name for a kind of event (``app_mention``, ``delivered``), as one part of an event type:
    itself when it is a short word, else ``unknown`` (a type is a routing key and a metric dimension, not a
    place for arbitrary text from a payload)."""
    return value if isinstance(value, str) and _TYPE_PART.fullmatch(value) else "unknown"


class PayloadError(ValueError):
    """The delivery verified but cannot be read as events: answered 400 with this message."""


def read_json(raw: bytes | str, what: str = "the body") -> Any:
    """``raw`` parsed as JSON, or :class:`PayloadError` saying why ``what`` cannot be."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise PayloadError(f"{what} is not UTF-8") from None
    except ValueError as exc:
        raise PayloadError(f"{what} is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class Delivery:
    """One request to ``/webhooks/{source}``, as API Gateway passed it on."""

    source: str
    method: str
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    body: bytes  # the raw bytes (base64-decoded when API Gateway said so): what was signed
    path: str = ""  # the request path, e.g. /webhooks/hubspot

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class SourceSecrets:
    """A source's secrets: every currently valid signing secret (several during a rotation), plus named
    extras some providers need (WhatsApp's ``verify_token``)."""

    signing: tuple[str, ...]
    extras: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.signing)


@dataclass(frozen=True)
class SourceEvent:
    event_id: str  # the provider's id for this event: the dedupe id
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """An answer the ingest returns as it is (handshakes and challenges), with nothing stored or queued."""

    status: int
    body: str
    content_type: str = "application/json"


class WebhookSource(ABC):
    """A provider's webhooks. Subclasses set the class attributes and implement verify and events."""

    name: str  # the {source} of /webhooks/{source}
    payload_version: str  # recorded on every envelope from this source
    dedupe_ttl_seconds: int = DAY  # at least the provider's retry horizon
    accepted_status: int = 202  # what an accepted (or duplicate) delivery is answered with
    methods: tuple[str, ...] = ("POST",)
    # A plain-text secret is one secret, spaces and all (GitHub's are free text), rather than several
    # whitespace-separated ones; several are then given as JSON {"signing": [...]}.
    secret_is_free_text: bool = False

    def handshake(self, delivery: Delivery, secrets: SourceSecrets) -> Reply | None:
        """An answer to an unsigned setup request (before verification), or None."""
        return None

    @abstractmethod
    def verify(self, delivery: Delivery, secrets: Sequence[str], now: float) -> None:
        """Raise :class:`SignatureError` (with a loggable reason) unless the delivery is the provider's."""

    def challenge(self, delivery: Delivery) -> Reply | None:
        """An answer to a verified request that is not an event (Slack's url_verification), or None."""
        return None

    def acknowledgement(self, delivery: Delivery) -> Reply | None:
        """The answer to an accepted (or duplicate) delivery when the provider needs a particular one (Slack's
        empty 200 to an interaction or a slash command), or None for the ingest's JSON answer."""
        return None

    @abstractmethod
    def events(self, delivery: Delivery) -> list[SourceEvent]:
        """The events a verified delivery carries; raise :class:`PayloadError` when it has none readable."""


class SecretFormatError(ValueError):
    """A stored secret cannot be read (a JSON object with a typo): an operator's mistake, answered 503 so that
    the provider retries once it is mended, and logged as such."""


def parse_secret(text: str, *, free_text: bool = False) -> SourceSecrets:
    """A source's secret value: whitespace-separated signing secrets (several during a rotation), or a JSON
    object ``{"signing": [...], "<extra>": "..."}`` for a provider that needs more (WhatsApp's
    ``verify_token``) or whose secrets may hold spaces. With ``free_text`` (GitHub's secrets are any text), a
    plain-text value is one secret, spaces and all; several are given in the JSON form."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            raise SecretFormatError("the secret starts with '{' but is not valid JSON") from None
        if not isinstance(data, dict):
            raise SecretFormatError("the secret's JSON is not an object")
        signing = data.get("signing", [])
        signing = [signing] if isinstance(signing, str) else signing
        if not isinstance(signing, list):
            raise SecretFormatError('the secret\'s "signing" is neither a list nor a string')
        extras = {k: str(v) for k, v in data.items() if k != "signing" and isinstance(v, str | int)}
        return SourceSecrets(signing=tuple(str(s) for s in signing if s), extras=extras)
    if free_text:
        return SourceSecrets(signing=(stripped,) if stripped else ())
    return SourceSecrets(signing=tuple(stripped.split()))
