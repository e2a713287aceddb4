"""Messaging channels behind one small port: what a conversational workflow reads from an inbound message.

An adapter turns one recorded event of its webhook source into an :class:`Inbound` (the conversation it belongs
to, who wrote, when by the channel's own clock, what kind of message and its text), or raises
:class:`NotAMessage` with a code for an event that is no message to answer (a bot's own post, an edit, a
malformed item). Channel differences live here, never in a workflow (docs/conversations.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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
