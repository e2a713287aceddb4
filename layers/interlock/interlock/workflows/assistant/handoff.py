"""The person's side of a hand-off, in the support channel's thread about the conversation.

The hand-off's post (the reason and the conversation so far) carries a **Hand back to the assistant** button; the
thread is linked to the conversation (``thread:slack:<channel>:<ts>`` in the conversation table: one workspace's
token posts it, and a ts is unique within its channel). A person's
message in that thread goes to the customer through the conversation's own channel, as a run of its own (a turn in
the history, sent once); the button ends the hand-off. The app's own posts (bot messages) are never relayed.
"""

from __future__ import annotations

from typing import Any

from interlock.channels.slack import ThreadReply

HAND_BACK = "hand_back"
HAND_BACK_TITLE = "Hand back to the assistant"
HANDED_BACK_POST = "<@{user}> handed the conversation back to the assistant."
HANDED_BACK_FROM_PAGE_POST = "The conversation was handed back to the assistant from the hand-off page."
WINDOW_CLOSED_POST = ("The customer's 24-hour WhatsApp window is closed: your words could not go; the re-engagement "
                      "template went instead. Write again once the customer answers.")


def thread_alias(channel: str, ts: str) -> str:
    return f"thread:slack:{channel}:{ts}"


def alias_of(reply: ThreadReply) -> str:
    return thread_alias(reply.channel, reply.thread_ts)


def post_blocks(text: str) -> list[dict[str, Any]]:
    """The hand-off's post: its text, and the button a person ends the hand-off with."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            {"type": "actions", "elements": [{"type": "button", "action_id": f"{HAND_BACK}:1", "value": HAND_BACK,
                                              "text": {"type": "plain_text", "text": HAND_BACK_TITLE}}]}]
