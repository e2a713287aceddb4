"""WhatsApp Cloud API messages as :class:`~interlock.channels.Inbound` (the payload the WhatsApp source records:
``metadata``, ``contacts`` and one ``message``; https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks).

The conversation is the business phone number and the user: ``whatsapp:<phone_number_id>:<wa_id>``. The order
of a burst is WhatsApp's ``timestamp`` (seconds), not the order of arrival.

A reply goes from the conversation's business number to the user: as text, as reply buttons, or — when the user's
last message is more than 24 hours old and Meta accepts nothing else — as the approved template.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.channels import (
    DeliveryStatus,
    Inbound,
    MessageKind,
    NotAMessage,
    OutgoingReply,
    Sent,
    SentAs,
    Template,
    capped,
    object_of,
    text_of,
    window_open,
)
from interlock.connectors.whatsapp import WhatsApp, button_message, template_message, text_message
from interlock.errors import NotConfigured

CHANNEL = "whatsapp"
CONNECTOR = "whatsapp"
MESSAGE_EVENT = "whatsapp.message."
STATUS_EVENT = "whatsapp.status."


def conversation_key(phone_number_id: str, wa_id: str) -> str:
    return f"{CHANNEL}:{phone_number_id}:{wa_id}"


def _content(message: Mapping[str, Any]) -> tuple[MessageKind, str, str | None]:
    kind = text_of(message.get("type"))
    if kind == "text":
        return MessageKind.TEXT, text_of(object_of(message.get("text")).get("body")), None
    if kind == "interactive":
        interactive = object_of(message.get("interactive"))
        picked = object_of(interactive.get(text_of(interactive.get("type"))))  # button_reply or list_reply
        if not picked:
            raise NotAMessage("unreadable_interactive")
        return MessageKind.INTERACTIVE_REPLY, text_of(picked.get("title")), text_of(picked.get("id")) or None
    if kind == "button":  # a template's quick-reply button
        button = object_of(message.get("button"))
        return MessageKind.INTERACTIVE_REPLY, text_of(button.get("text")), text_of(button.get("payload")) or None
    if kind == "image":
        return MessageKind.IMAGE, text_of(object_of(message.get("image")).get("caption")), None
    if kind == "location":
        place = object_of(message.get("location"))
        words = ", ".join(part for part in (text_of(place.get("name")), text_of(place.get("address"))) if part)
        lat, lon = place.get("latitude"), place.get("longitude")
        where = f"({lat}, {lon})" if isinstance(lat, int | float) and isinstance(lon, int | float) else ""
        return MessageKind.LOCATION, " ".join(part for part in (words, where) if part), None
    return MessageKind.UNSUPPORTED, "", None


def _seconds(value: Any) -> float:
    try:
        seconds = float(text_of(value))
    except ValueError:
        raise NotAMessage("no_timestamp") from None
    if not 0 < seconds < 1e11:  # NaN and infinities fail too
        raise NotAMessage("no_timestamp")
    return seconds


def delivery_status(payload: Mapping[str, Any]) -> DeliveryStatus:
    """The status of a ``whatsapp.status.<status>`` event: the sent message's wamid, the status, its time, and the
    first error's code for a failure."""
    status = object_of(payload.get("status"))
    message_id, state = text_of(status.get("id")), text_of(status.get("status"))
    if not message_id or not state:
        raise NotAMessage("no_message_id")
    errors = status.get("errors")
    first = object_of(errors[0]) if isinstance(errors, list) and errors else {}
    code = first.get("code")
    phone_number_id = text_of(object_of(payload.get("metadata")).get("phone_number_id"))
    recipient = text_of(status.get("recipient_id"))
    return DeliveryStatus(message_id=message_id, status=state[:40], at=_seconds(status.get("timestamp")),
                          error_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                          conversation=conversation_key(phone_number_id, recipient)
                          if phone_number_id.isdigit() and recipient.isdigit() else "")


def read_status(event_type: str, payload: Mapping[str, Any]) -> DeliveryStatus | None:
    """The status of a ``whatsapp.status.<status>`` event; None for any other event."""
    return delivery_status(payload) if event_type.startswith(STATUS_EVENT) else None


def inbound(payload: Mapping[str, Any]) -> Inbound:
    """The message of a ``whatsapp.message.<type>`` event; :class:`NotAMessage` when it cannot be answered."""
    message = object_of(payload.get("message"))
    phone_number_id = text_of(object_of(payload.get("metadata")).get("phone_number_id"))
    wa_id, message_id = text_of(message.get("from")), text_of(message.get("id"))
    if not (phone_number_id and wa_id and message_id):
        raise NotAMessage("no_sender")
    sent_at = _seconds(message.get("timestamp"))
    kind, text, reply_id = _content(message)
    return Inbound(channel=CHANNEL, conversation=conversation_key(phone_number_id, wa_id), sender=wa_id,
                   message_id=message_id, sent_at=sent_at, kind=kind, text=capped(text), reply_id=reply_id,
                   original_type=text_of(message.get("type"))[:40])


def read(event_type: str, payload: Mapping[str, Any]) -> Inbound:
    """The message of a ``whatsapp.message.<type>`` event (any other event is :class:`NotAMessage`)."""
    if not event_type.startswith(MESSAGE_EVENT):
        raise NotAMessage("not_a_message")
    return inbound(payload)


def address(conversation: str) -> tuple[str, str]:
    """The business phone number id and the user's wa_id of a conversation key."""
    channel, _, rest = conversation.partition(":")
    phone_number_id, _, wa_id = rest.partition(":")
    if channel != CHANNEL or not phone_number_id.isdigit() or not wa_id.isdigit():
        raise ValueError("not a WhatsApp conversation key")
    return phone_number_id, wa_id


def send(client: WhatsApp, conversation: str, reply: OutgoingReply, *, last_inbound_at: float | None, now: float,
         template: Template | None) -> Sent:
    """Send ``reply`` in the conversation; the template instead when the customer-service window is closed
    (:class:`~interlock.errors.NotConfigured` when there is none to send)."""
    phone_number_id, wa_id = address(conversation)
    if not window_open(last_inbound_at, now):
        if template is None:
            raise NotConfigured("the 24-hour window is closed and no re-engagement template is set", step="send",
                                reason="no_template")
        sent = client.send(phone_number_id, template_message(wa_id, template.name, template.language))
        return Sent(sent.message_id, SentAs.TEMPLATE)
    if reply.buttons:
        sent = client.send(phone_number_id, button_message(wa_id, reply.text, reply.buttons))
        return Sent(sent.message_id, SentAs.BUTTONS)
    return Sent(client.send(phone_number_id, text_message(wa_id, reply.text)).message_id, SentAs.TEXT)


deliver = send  # the registry's uniform name (interlock.channels.deliver)
