"""Messaging channels behind one small port: what a conversational workflow reads and how its replies go out.

An adapter turns one recorded event of its webhook source into an :class:`Inbound` (the conversation it belongs
to, who wrote, when by the channel's own clock, what kind of message and its text), or raises
:class:`NotAMessage` with a code for an event that is no message to answer (a bot's own post, an edit, a
malformed item). It sends an :class:`OutgoingReply` to a conversation in the channel's own form (WhatsApp: text,
reply buttons, or the approved template when the 24-hour window is closed; Slack: a threaded message with Block
Kit buttons) and answers :class:`Sent`. Channel differences live here, never in a workflow (docs/conversations.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
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

    @property
    def window_closed(self) -> bool:
        return self.status == "failed" and self.error_code == REENGAGEMENT_ERROR


# WhatsApp's "Re-engagement message": more than 24 hours since the user's last message; only a template can go.
REENGAGEMENT_ERROR = 131047
