"""Messaging channels behind one small port: what a conversational workflow reads and how its replies go out.

An adapter turns one recorded event of its webhook source into an :class:`Inbound` (the conversation it belongs
to, who wrote, when by the channel's own clock, what kind of message and its text), or raises
:class:`NotAMessage` with a code for an event that is no message to answer (a bot's own post, an edit, a
malformed item). It sends an :class:`OutgoingReply` to a conversation in the channel's own form (WhatsApp: text,
reply buttons, or the approved template when the 24-hour window is closed; Slack: a threaded message with Block
Kit buttons) and answers :class:`Sent`. Channel differences live here, never in a workflow (docs/conversations.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType
from typing import Any

# The most of one message's text kept for a turn: WhatsApp's own limit for a text body.
MAX_TEXT_CHARS = 4096


class MessageKind(StrEnum):
    TEXT = "text"
    INTERACTIVE_REPLY = "interactive_reply"  # a quick-reply button or list row the user picked
    IMAGE = "image"  # its caption is the text
    LOCATION = "location"
    UNSUPPORTED = "unsupported"  # audio, a sticker, a reaction ...: answered, never guessed at


@dataclass(frozen=True)
class Inbound:
    channel: str  # the adapter's name: "whatsapp", "slack"
    conversation: str  # the conversation's key, e.g. "whatsapp:<phone_number_id>:<wa_id>"
    sender: str  # the channel's id of the person (a wa_id, a Slack user id)
    message_id: str
    sent_at: float  # seconds since the epoch, by the channel's clock (the order of a burst)
    kind: MessageKind
    text: str
    reply_id: str | None = None  # the id of the button or row picked, for an interactive reply
    original_type: str = ""  # the channel's own name of the type, for an unsupported one


class NotAMessage(ValueError):
    """The event is not a message to answer; ``code`` says why (recorded as the run's reason)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def capped(text: str) -> str:
    return text[:MAX_TEXT_CHARS]


def text_of(value: Any) -> str:
    """A string field of a verified but untrusted payload, stripped; anything else is empty."""
    return value.strip() if isinstance(value, str) else ""


def object_of(value: Any) -> Mapping[str, Any]:
    """An object field of a verified but untrusted payload; anything else is empty."""
    return value if isinstance(value, Mapping) else {}


# Outside this many seconds since the user's last message WhatsApp accepts only approved templates.
SERVICE_WINDOW_SECONDS = 24 * 3600
MAX_BUTTONS = 3


@dataclass(frozen=True)
class OutgoingReply:
    """What a workflow sends: its vetted text and up to three quick-reply buttons, each ``(id, title)``."""

    text: str
    buttons: tuple[tuple[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Template:
    """An approved WhatsApp template: the one message that may open a closed customer-service window."""

    name: str
    language: str = "en_US"


class SentAs(StrEnum):
    TEXT = "text"
    BUTTONS = "buttons"
    TEMPLATE = "template"


@dataclass(frozen=True)
class Sent:
    message_id: str  # the channel's id of the message (a wamid, a Slack ts): delivery statuses name it
    sent_as: SentAs


def window_open(last_inbound_at: float | None, now: float) -> bool:
    """Whether WhatsApp's customer-service window is open: the user wrote within the last 24 hours."""
    return last_inbound_at is not None and now - last_inbound_at < SERVICE_WINDOW_SECONDS


@dataclass(frozen=True)
class DeliveryStatus:
    """What the channel says became of a message the workflow sent (``sent``, ``delivered``, ``read``, ``failed``)."""

    message_id: str
    status: str
    at: float
    error_code: int | None = None  # the channel's code of a failure (WhatsApp's 131047: the window is closed)
    conversation: str = ""  # the conversation the message went to, when the status names it

    @property
    def window_closed(self) -> bool:
        return self.status == "failed" and self.error_code == REENGAGEMENT_ERROR


# WhatsApp's "Re-engagement message": more than 24 hours since the user's last message; only a template can go.
REENGAGEMENT_ERROR = 131047


# -- the registry: the adapter of a webhook source, or of a conversation key's channel -----------------------------

# Each adapter module has CHANNEL and CONNECTOR (the name of its sender in interlock.kit.connectors),
# ``read(event_type, payload) -> Inbound``, ``read_status(event_type, payload) -> DeliveryStatus | None`` and
# ``deliver(client, conversation, reply, *, last_inbound_at, now, template) -> Sent``. Imported on first use: a
# workflow's step loads only the channel it handles.
ADAPTERS = {"whatsapp": "interlock.channels.whatsapp", "slack": "interlock.channels.slack"}


class UnknownChannel(LookupError):
    pass


def adapter(channel: str) -> ModuleType:
    """The adapter module of ``channel`` (a webhook source's name, or a conversation key's first part)."""
    try:
        return importlib.import_module(ADAPTERS[channel])
    except KeyError:
        raise UnknownChannel(f"no channel adapter named {channel[:40]!r}") from None


def channel_of(conversation: str) -> str:
    return conversation.partition(":")[0]


def read(source: str, event_type: str, payload: Mapping[str, Any]) -> Inbound:
    """The message of a recorded event of ``source``; :class:`NotAMessage` when it is none to answer."""
    return adapter(source).read(event_type, payload)


def status(source: str, event_type: str, payload: Mapping[str, Any]) -> DeliveryStatus | None:
    """The delivery status an event of ``source`` reports, or None when it is no status (or its channel has none);
    :class:`NotAMessage` for a status that cannot be read."""
    if source not in ADAPTERS:
        return None
    return adapter(source).read_status(event_type, payload)


def deliver(connector: Callable[[str], Any], conversation: str, reply: OutgoingReply, *,
            last_inbound_at: float | None, now: float, template: Template | None) -> Sent:
    """Send ``reply`` in ``conversation`` through its channel's adapter, with the sender ``connector(name)``
    gives (:class:`~interlock.errors.NotConfigured` when that channel's sender is not configured)."""
    from interlock.errors import NotConfigured

    module = adapter(channel_of(conversation))
    client = connector(module.CONNECTOR)
    if client is None:
        raise NotConfigured(f"the {module.CHANNEL} sender is not configured", step="send",
                            reason="channel_not_configured", channel=module.CHANNEL)
    return module.deliver(client, conversation, reply, last_inbound_at=last_inbound_at,
                          now=now, template=template)
