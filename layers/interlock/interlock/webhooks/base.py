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
    "check_id",
    "parse_secret",
    "read_json",
    "type_part",
]

DAY = 24 * 3600
_TYPE_PART = re.compile(r"[A-Za-z0-9_]{1,100}")

# The limits every source's input is held to (docs/input-limits.md). An event id is part of DynamoDB keys
# (the dedupe key is ``<source>:<id>``; a key may hold 2,048 bytes); a type is a routing key and a metric
# dimension. Nesting deeper than any provider sends is refused before anything recurses over it.
MAX_ID_BYTES = 256
MAX_TYPE_BYTES = 256
MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def type_part(value: Any) -> str:
    """A provider's name for a kind of event (``app_mention``, ``delivered``), as one part of an event type:
    itself when it is a short word, else ``unknown`` (a type is a routing key and a metric dimension, not a
    place for arbitrary text from a payload)."""
    return value if isinstance(value, str) and _TYPE_PART.fullmatch(value) else "unknown"


class PayloadError(ValueError):
    """The delivery verified but cannot be read as events: answered 400 with this message."""


def read_json(raw: bytes | str, what: str = "the body") -> Any:
    """``raw`` (UTF-8) parsed as JSON, or :class:`PayloadError` saying why ``what`` cannot be.

    Every provider body is read here, so every source is held to the same limits: nesting at most
    :data:`MAX_JSON_DEPTH` deep, and no lone surrogate (``"\\ud800"``) in any string or key, which would parse
    but could never be written to the queue or a table as UTF-8.
    """
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise PayloadError(f"{what} is not UTF-8") from None
    if _too_deep(text):
        raise PayloadError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = json.loads(text)
    except RecursionError:  # not reached with the depth check above; kept so no parse can become a 5xx
        raise PayloadError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as exc:
        raise PayloadError(f"{what} is not valid JSON: {exc}") from None
    if _has_surrogate(value):
        raise PayloadError(f"{what} holds a lone surrogate escape (such as \\ud800), which is not text")
    return value


_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def _too_deep(text: str) -> bool:
    """True if the JSON text opens more than :data:`MAX_JSON_DEPTH` arrays or objects inside one another.

    Counted over the text, brackets inside strings skipped, before parsing, so that nothing (the parser
    included) recurses over a deeper one; linear in the text. An unbalanced text is left to the parser.
    """
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    in_string = False
    escaped_at = -1  # the position of the character a backslash escapes
    for match in _STRUCTURE.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if at == escaped_at:
                continue
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _has_surrogate(value: Any) -> bool:
    """True if a string anywhere in a parsed JSON value (keys included) holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def check_id(value: str, what: str = "the event id") -> str:
    """``value`` if it can be a provider's id here: 1 to :data:`MAX_ID_BYTES` bytes of UTF-8, printable
    characters only (no control characters, no lone surrogates); else :class:`PayloadError`."""
    if not value:
        raise PayloadError(f"{what} is empty")
    if not value.isprintable():
        raise PayloadError(f"{what} holds characters that are not printable")
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise PayloadError(f"{what} is longer than {MAX_ID_BYTES} bytes")
    return value


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
    """One event a delivery carries. Made only with an id and a type within the shared limits
    (:func:`check_id`): a source building one from a provider's field gets :class:`PayloadError`, a 400,
    for one that is not."""

    event_id: str  # the provider's id for this event: the dedupe id
    type: str
    payload: dict[str, Any]

    def __post_init__(self) -> None:
        check_id(self.event_id)
        if not self.type or not self.type.isprintable() or len(self.type.encode("utf-8")) > MAX_TYPE_BYTES:
            raise PayloadError(f"the event type must be 1 to {MAX_TYPE_BYTES} bytes of printable text")


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
