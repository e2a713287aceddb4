"""WhatsApp Cloud API messages as :class:`~interlock.channels.Inbound` (the payload the WhatsApp source records:
``metadata``, ``contacts`` and one ``message``; https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks).

The conversation is the business phone number and the user: ``whatsapp:<phone_number_id>:<wa_id>``. The order
of a burst is WhatsApp's ``timestamp`` (seconds), not the order of arrival.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.channels import Inbound, MessageKind, NotAMessage, capped

CHANNEL = "whatsapp"


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def conversation_key(phone_number_id: str, wa_id: str) -> str:
    return f"{CHANNEL}:{phone_number_id}:{wa_id}"


def _content(message: Mapping[str, Any]) -> tuple[MessageKind, str, str | None]:
    kind = _str(message.get("type"))
    if kind == "text":
        return MessageKind.TEXT, _str(_obj(message.get("text")).get("body")), None
    if kind == "interactive":
        interactive = _obj(message.get("interactive"))
        picked = _obj(interactive.get(_str(interactive.get("type"))))  # button_reply or list_reply
        if not picked:
            raise NotAMessage("unreadable_interactive")
        return MessageKind.INTERACTIVE_REPLY, _str(picked.get("title")), _str(picked.get("id")) or None
    if kind == "button":  # a template's quick-reply button
        button = _obj(message.get("button"))
        return MessageKind.INTERACTIVE_REPLY, _str(button.get("text")), _str(button.get("payload")) or None
    if kind == "image":
        return MessageKind.IMAGE, _str(_obj(message.get("image")).get("caption")), None
    if kind == "location":
        place = _obj(message.get("location"))
        words = ", ".join(part for part in (_str(place.get("name")), _str(place.get("address"))) if part)
        lat, lon = place.get("latitude"), place.get("longitude")
        where = f"({lat}, {lon})" if isinstance(lat, int | float) and isinstance(lon, int | float) else ""
        return MessageKind.LOCATION, " ".join(part for part in (words, where) if part), None
    return MessageKind.UNSUPPORTED, "", None


def inbound(payload: Mapping[str, Any]) -> Inbound:
    """The message of a ``whatsapp.message.<type>`` event; :class:`NotAMessage` when it cannot be answered."""
    message = _obj(payload.get("message"))
    phone_number_id = _str(_obj(payload.get("metadata")).get("phone_number_id"))
    wa_id, message_id = _str(message.get("from")), _str(message.get("id"))
    if not (phone_number_id and wa_id and message_id):
        raise NotAMessage("no_sender")
    try:
        sent_at = float(_str(message.get("timestamp")))
    except ValueError:
        raise NotAMessage("no_timestamp") from None
    if not 0 < sent_at < 1e11:
        raise NotAMessage("no_timestamp")
    kind, text, reply_id = _content(message)
    return Inbound(channel=CHANNEL, conversation=conversation_key(phone_number_id, wa_id), sender=wa_id,
                   message_id=message_id, sent_at=sent_at, kind=kind, text=capped(text), reply_id=reply_id,
                   original_type=_str(message.get("type"))[:40])
