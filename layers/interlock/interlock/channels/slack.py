"""Slack Events API messages to the app as :class:`~interlock.channels.Inbound`: an ``app_mention`` in a channel,
or a direct message (``message`` in an ``im``). The payload is the event callback the Slack source records.

The conversation is the thread: ``slack:<team>:<channel>:<thread_ts>`` (a mention that starts a thread is its own
``ts``); a direct message outside a thread is the whole DM, ``slack:<team>:<channel>``. The app's own posts, other
bots' and edits are no messages to answer (their types are ``slack.message.<subtype>``, and a bot's post carries
``bot_id``): answering them would loop.

A reply goes to the conversation's thread with ``chat.postMessage`` (``thread_ts``); its buttons are a Block Kit
``actions`` block whose clicks come back through the Slack source as ``block_actions`` interactions (each
button's ``action_id`` is ``reply:<id>`` and its ``value`` the id).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
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
)
from interlock.connectors.slack import Slack

CHANNEL = "slack"
CONNECTOR = "slack"
BUTTON_EVENT = "slack.interaction.block_actions"

_MENTION = re.compile(r"<@[A-Z0-9]+>")
_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")


def inbound(payload: Mapping[str, Any]) -> Inbound:
    event = object_of(payload.get("event"))
    kind = text_of(event.get("type"))
    if event.get("bot_id") or text_of(event.get("subtype")):
        raise NotAMessage("not_from_a_person")
    if kind == "message" and text_of(event.get("channel_type")) != "im":
        raise NotAMessage("not_to_the_app")
    if kind not in ("app_mention", "message"):
        raise NotAMessage("not_a_message")
    team, channel = text_of(payload.get("team_id")), text_of(event.get("channel"))
    user, ts = text_of(event.get("user")), text_of(event.get("ts"))
    if not (team and channel and user and _TS.fullmatch(ts)):
        raise NotAMessage("no_sender")
    thread = text_of(event.get("thread_ts"))
    if thread and not _TS.fullmatch(thread):
        raise NotAMessage("no_sender")
    if kind == "app_mention":
        conversation = f"{CHANNEL}:{team}:{channel}:{thread or ts}"
    else:
        conversation = f"{CHANNEL}:{team}:{channel}" + (f":{thread}" if thread else "")
    text = _MENTION.sub("", text_of(event.get("text"))).strip()
    return Inbound(channel=CHANNEL, conversation=conversation, sender=user, message_id=ts, sent_at=float(ts),
                   kind=MessageKind.TEXT, text=capped(text), original_type=kind)


def button_click(payload: Mapping[str, Any]) -> Inbound:
    """A ``block_actions`` interaction on one of the workflow's buttons (``action_id`` ``reply:<id>``) as the
    conversation's next message: an interactive reply with the button's id and title."""
    actions = payload.get("actions")
    action = object_of(actions[0]) if isinstance(actions, list) and actions else {}
    action_id = text_of(action.get("action_id"))
    if not action_id.startswith("reply:") or text_of(payload.get("type")) != "block_actions":
        raise NotAMessage("not_a_reply_button")
    team, user = text_of(object_of(payload.get("team")).get("id")), text_of(object_of(payload.get("user")).get("id"))
    container = object_of(payload.get("container"))
    channel = text_of(container.get("channel_id")) or text_of(object_of(payload.get("channel")).get("id"))
    thread = text_of(object_of(payload.get("message")).get("thread_ts"))
    at = text_of(action.get("action_ts"))
    if not (team and user and channel and _TS.fullmatch(at)) or (thread and not _TS.fullmatch(thread)):
        raise NotAMessage("no_sender")
    if not thread and not channel.startswith("D"):  # in a channel the workflow always answers in a thread
        raise NotAMessage("no_conversation")
    conversation = f"{CHANNEL}:{team}:{channel}" + (f":{thread}" if thread else "")
    title = text_of(object_of(action.get("text")).get("text"))
    return Inbound(channel=CHANNEL, conversation=conversation, sender=user, message_id=at, sent_at=float(at),
                   kind=MessageKind.INTERACTIVE_REPLY, text=capped(title), reply_id=action_id[len("reply:"):][:256],
                   original_type="block_actions")


def read(event_type: str, payload: Mapping[str, Any]) -> Inbound:
    """The message of an Events API event (``slack.app_mention``, ``slack.message``) or of a click on one of the
    workflow's buttons (``slack.interaction.block_actions``)."""
    if event_type == BUTTON_EVENT:
        return button_click(payload)
    return inbound(payload)


@dataclass(frozen=True)
class ThreadReply:
    """A person's message in a thread of a channel (a support channel's thread, say), or their click on a button of
    the thread's first message (``action``, from ``action_id`` ``<action>:…``); ``thread_ts`` names the thread."""

    team: str
    channel: str
    thread_ts: str
    user: str
    ts: str
    text: str = ""
    action: str | None = None


def thread_reply(event_type: str, payload: Mapping[str, Any]) -> ThreadReply:
    """A person's reply in a channel's thread (``slack.message``) or a click on a button of a thread's message that
    is not a reply button (``slack.interaction.block_actions``); :class:`NotAMessage` for anything else."""
    if event_type == BUTTON_EVENT:
        actions = payload.get("actions")
        action = object_of(actions[0]) if isinstance(actions, list) and actions else {}
        name = text_of(action.get("action_id")).partition(":")[0]
        team = text_of(object_of(payload.get("team")).get("id"))
        user = text_of(object_of(payload.get("user")).get("id"))
        container = object_of(payload.get("container"))
        channel = text_of(container.get("channel_id"))
        message_ts, at = text_of(container.get("message_ts")), text_of(action.get("action_ts"))
        if not (name and name != "reply" and team and user and channel and _TS.fullmatch(message_ts)
                and _TS.fullmatch(at)):
            raise NotAMessage("not_a_thread_action")
        return ThreadReply(team=team, channel=channel, thread_ts=message_ts, user=user, ts=at, action=name[:40])
    event = object_of(payload.get("event"))
    if text_of(event.get("type")) != "message" or event.get("bot_id") or text_of(event.get("subtype")):
        raise NotAMessage("not_from_a_person")
    team, channel = text_of(payload.get("team_id")), text_of(event.get("channel"))
    user, ts, thread = text_of(event.get("user")), text_of(event.get("ts")), text_of(event.get("thread_ts"))
    if not (team and channel and user and _TS.fullmatch(ts) and _TS.fullmatch(thread)) or thread == ts:
        raise NotAMessage("not_in_a_thread")
    return ThreadReply(team=team, channel=channel, thread_ts=thread, user=user, ts=ts,
                       text=capped(text_of(event.get("text"))))


def read_status(event_type: str, payload: Mapping[str, Any]) -> DeliveryStatus | None:
    """Slack reports no delivery statuses: no event is one."""
    return None


def address(conversation: str) -> tuple[str, str | None]:
    """The channel and the thread (None for a whole DM) of a conversation key."""
    parts = conversation.split(":")
    if parts[0] != CHANNEL or len(parts) not in (3, 4) or not all(parts[1:3]):
        raise ValueError("not a Slack conversation key")
    thread = parts[3] if len(parts) == 4 else None
    if thread is not None and not _TS.fullmatch(thread):
        raise ValueError("not a Slack conversation key")
    return parts[2], thread


def blocks(reply: OutgoingReply) -> list[dict[str, Any]] | None:
    """The reply's text and buttons as Block Kit blocks (None when it has no buttons: the text is enough)."""
    if not reply.buttons:
        return None
    return [{"type": "section", "text": {"type": "mrkdwn", "text": reply.text}},
            {"type": "actions", "elements": [
                {"type": "button", "action_id": f"reply:{button_id}", "value": button_id,
                 "text": {"type": "plain_text", "text": title, "emoji": False}}
                for button_id, title in reply.buttons]}]


def send(client: Slack, conversation: str, reply: OutgoingReply) -> Sent:
    channel, thread = address(conversation)
    posted = client.post_message(channel, reply.text, thread_ts=thread, blocks=blocks(reply))
    return Sent(posted.ts, SentAs.BUTTONS if reply.buttons else SentAs.TEXT)


def deliver(client: Slack, conversation: str, reply: OutgoingReply, *, last_inbound_at: float | None, now: float,
            template: Template | None) -> Sent:
    """:func:`send`, with the registry's uniform signature: Slack has no customer-service window."""
    return send(client, conversation, reply)
