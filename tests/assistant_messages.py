"""Messages to the assistant as WhatsApp's and Slack's webhooks deliver them (the e2e tests' senders)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from interlock.models import run_id_for

PHONE_NUMBER_ID = "106540352242922"
CUSTOMER = "447700900123"  # the seeded sales orders SO-10042 and SO-10043 are this customer's
TEAM = "T0001ACME"


def new_customer() -> str:
    """A wa_id of its own, so that each test has its own conversation."""
    return "4477009" + str(uuid.uuid4().int)[:5]


def whatsapp(text: str = "", *, wa_id: str = CUSTOMER, at: float | None = None, kind: str = "text",
             reply: tuple[str, str] | None = None, message_id: str | None = None) -> bytes:
    """One WhatsApp Cloud API ``messages`` notification: a text, or (``reply``) a tapped reply button."""
    message: dict[str, Any] = {"from": wa_id, "id": message_id or f"wamid.{uuid.uuid4().hex}",
                               "timestamp": str(int(at if at is not None else time.time())), "type": kind}
    if reply is not None:
        message.update(type="interactive", interactive={"type": "button_reply",
                                                        "button_reply": {"id": reply[0], "title": reply[1]}})
    elif kind == "text":
        message["text"] = {"body": text}
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
             "contacts": [{"profile": {"name": "A customer"}, "wa_id": wa_id}], "messages": [message]}
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}
                      ).encode()


def slack_ts() -> str:
    return f"{time.time():.6f}"


def slack_mention(text: str, *, channel: str = "C0LAN2Q65", ts: str | None = None, thread_ts: str | None = None,
                  user: str = "U061F7AUR") -> bytes:
    event: dict[str, Any] = {"type": "app_mention", "user": user, "text": f"<@U0LAN0Z89> {text}",
                             "ts": ts or slack_ts(), "channel": channel}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return json.dumps({"token": "XXYYZZ", "team_id": TEAM, "api_app_id": "A0INTERLOCK", "event": event,
                       "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
                       "event_time": int(time.time())}).encode()


def slack_button(button_id: str, title: str, *, channel: str, thread_ts: str, user: str = "U061F7AUR"
                 ) -> tuple[bytes, str]:
    """A click on one of the assistant's Block Kit buttons, as Slack posts it (form-encoded ``payload``), and the
    id of the run it starts (Slack's interactions are answered with an empty 200: the run is named by its
    trigger id)."""
    payload = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": user}, "api_app_id": "A0INTERLOCK",
               "container": {"type": "message", "channel_id": channel, "message_ts": slack_ts()},
               "channel": {"id": channel}, "message": {"ts": slack_ts(), "thread_ts": thread_ts},
               "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}",
               "actions": [{"type": "button", "action_id": f"reply:{button_id}", "block_id": "b",
                            "text": {"type": "plain_text", "text": title}, "value": button_id,
                            "action_ts": slack_ts()}]}
    return urlencode({"payload": json.dumps(payload)}).encode(), run_id_for(f"slack:{payload['trigger_id']}")


def slack_thread_message(text: str, *, channel: str, thread_ts: str, user: str = "U07AGENT01") -> bytes:
    """A person's message in a channel's thread (Events API ``message``, as ``message.channels`` delivers it)."""
    event = {"type": "message", "channel_type": "channel", "user": user, "text": text, "ts": slack_ts(),
             "thread_ts": thread_ts, "channel": channel}
    return json.dumps({"token": "XXYYZZ", "team_id": TEAM, "api_app_id": "A0INTERLOCK", "event": event,
                       "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
                       "event_time": int(time.time())}).encode()


def slack_message_button(action_id: str, *, channel: str, message_ts: str, user: str = "U07AGENT01"
                         ) -> tuple[bytes, str]:
    """A click on a button of a channel's message (the hand-off post's), and the id of the run it starts."""
    payload = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": user}, "api_app_id": "A0INTERLOCK",
               "container": {"type": "message", "channel_id": channel, "message_ts": message_ts},
               "channel": {"id": channel}, "message": {"ts": message_ts},
               "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}",
               "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": "x",
                            "text": {"type": "plain_text", "text": "a button"}, "action_ts": slack_ts()}]}
    return urlencode({"payload": json.dumps(payload)}).encode(), run_id_for(f"slack:{payload['trigger_id']}")


def whatsapp_status(message_id: str, status: str, *, wa_id: str, at: float | None = None,
                    error_code: int | None = None) -> bytes:
    """One WhatsApp ``statuses`` notification about a message the business sent."""
    item: dict[str, Any] = {"id": message_id, "status": status, "timestamp": str(int(at or time.time())),
                            "recipient_id": wa_id}
    if error_code is not None:
        item["errors"] = [{"code": error_code, "title": "Re-engagement message",
                           "error_data": {"details": "Message failed to send because more than 24 hours have "
                                                     "passed since the customer last replied to this number."}}]
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
             "statuses": [item]}
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}
                      ).encode()


def slack_direct_message(text: str, *, channel: str = "D07ADA0001", user: str = "U061F7AUR") -> bytes:
    """A direct message to the app (Events API ``message``, ``channel_type`` im), outside any thread."""
    event = {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": slack_ts(),
             "channel": channel}
    return json.dumps({"token": "XXYYZZ", "team_id": TEAM, "api_app_id": "A0INTERLOCK", "event": event,
                       "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
                       "event_time": int(time.time())}).encode()
