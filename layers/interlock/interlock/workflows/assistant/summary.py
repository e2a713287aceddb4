"""What an operator's list of runs shows of an assistant run (``Workflow.run_summary``), read from the event that
starts it:

* a WhatsApp message (``whatsapp.message.<type>``, the payload's ``message``): its first words (a text's body, the
  title of the button or row picked, a caption, a place), or ``WhatsApp <type> message``; the customer is the
  sender's WhatsApp id (``from``, their phone number);
* a WhatsApp delivery status (``whatsapp.status.<status>``): ``WhatsApp message <status>`` (a failure's error code
  with it); the customer is the recipient's WhatsApp id;
* a Slack mention or direct message (``slack.app_mention``, ``slack.message``: the payload's ``event``): its first
  words, the app's mention left out; the customer is the Slack user id of its author;
* a click on a Slack button (``slack.interaction.block_actions``): ``Clicked: <the button's text>``, by its user;
* the workflow's follow-ups (``data.conversation``, a conversation key): the next turn, a person's reply from the
  hand-off page (its first words, by whom) or the hand-back; the customer is the WhatsApp id the conversation key
  names (a Slack conversation's key names a channel, no person).

The router calls it on an outsider's payload before any step has checked it: it never raises, takes strings only,
and builds nothing long (the platform trims and cleans what it returns: interlock.run_list.checked_summary).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from interlock.kit import RunSummary
from interlock.kit.summaries import as_object as _object
from interlock.kit.summaries import first_item as _first
from interlock.kit.summaries import first_words as _first_words
from interlock.kit.summaries import text as _text

if TYPE_CHECKING:
    from interlock.models import Envelope

WHATSAPP_MESSAGE, WHATSAPP_STATUS = "whatsapp.message.", "whatsapp.status."
SLACK_MESSAGES = ("slack.app_mention", "slack.message")
SLACK_BUTTON = "slack.interaction.block_actions"
FOLLOW_UP_SOURCE = "workflow"
NEXT_TURN, PAGE_REPLY, PAGE_HAND_BACK = "next_turn", "page_reply", "page_hand_back"
FIRST_WORDS = 80  # the most of a message that names the run
PART = 60  # the most of a name or a type that goes into a subject
_MENTION = re.compile(r"<@[A-Z0-9]{1,40}>")
_WA_ID = re.compile(r"[0-9]{1,20}")


# -- WhatsApp ------------------------------------------------------------------------------------------------------


def _whatsapp_words(message: dict[str, Any]) -> str | None:
    """The words of a WhatsApp message, as the channel's adapter reads them (interlock.channels.whatsapp)."""
    kind = message.get("type")
    if kind == "text":
        return _first_words(_object(message.get("text")).get("body"))
    if kind == "interactive":
        interactive = _object(message.get("interactive"))
        picked = interactive.get("type")  # button_reply or list_reply: the object of that name holds its title
        return _first_words(_object(interactive.get(picked) if isinstance(picked, str) else None).get("title"))
    if kind == "button":
        return _first_words(_object(message.get("button")).get("text"))
    if kind == "location":
        place = _object(message.get("location"))
        return _first_words(" ".join(part for part in (_first_words(place.get("name")),
                                                       _first_words(place.get("address"))) if part))
    if isinstance(kind, str) and kind in ("image", "video", "document"):
        return _first_words(_object(message.get(kind)).get("caption"))
    return None


def _whatsapp_message(envelope: Envelope, payload: dict[str, Any]) -> RunSummary:
    message = _object(payload.get("message"))
    kind = _first_words(message.get("type"), PART) or _first_words(envelope.type[len(WHATSAPP_MESSAGE):], PART)
    subject = _whatsapp_words(message) or (f"WhatsApp {kind} message" if kind else "WhatsApp message")
    return RunSummary(subject=subject,
                      customer=_text(message.get("from")) or _text(_first(payload.get("contacts")).get("wa_id")))


def _whatsapp_status(envelope: Envelope, payload: dict[str, Any]) -> RunSummary:
    status = _object(payload.get("status"))
    state = _first_words(status.get("status"), PART) or _first_words(envelope.type[len(WHATSAPP_STATUS):], PART)
    subject = f"WhatsApp message {state}" if state else "WhatsApp message status"
    code = _first(status.get("errors")).get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code < 10**12:
        subject += f" (error {code})"
    return RunSummary(subject=subject, customer=_text(status.get("recipient_id")))


# -- Slack ---------------------------------------------------------------------------------------------------------


def _slack_message(payload: dict[str, Any]) -> RunSummary:
    event = _object(payload.get("event"))
    text = event.get("text")
    words = _first_words(_MENTION.sub("", text[:FIRST_WORDS * 8])) if isinstance(text, str) else None
    return RunSummary(subject=words or "Slack message", customer=_text(event.get("user")))


def _slack_button(payload: dict[str, Any]) -> RunSummary:
    title = _first_words(_object(_first(payload.get("actions")).get("text")).get("text"))
    return RunSummary(subject=f"Clicked: {title}" if title else "Slack button click",
                      customer=_text(_object(payload.get("user")).get("id")))


# -- the follow-ups ------------------------------------------------------------------------------------------------


def _conversation_customer(conversation: object) -> str | None:
    """The WhatsApp id of a conversation key ``whatsapp:<phone_number_id>:<wa_id>``; None for any other."""
    if not isinstance(conversation, str):
        return None
    parts = conversation[:100].split(":")
    return parts[2] if len(parts) == 3 and parts[0] == "whatsapp" and _WA_ID.fullmatch(parts[2]) else None


def _follow_up(envelope: Envelope, payload: dict[str, Any]) -> RunSummary:
    name = envelope.type.partition(".")[2]
    given = _object(payload.get("data"))
    customer = _conversation_customer(given.get("conversation"))
    by = _first_words(given.get("by"), PART)
    if name == NEXT_TURN:
        channel = _text(given.get("conversation"))
        channel = channel[:20].partition(":")[0] if channel else None
        label = {"whatsapp": "WhatsApp", "slack": "Slack"}.get(channel or "")
        return RunSummary(subject=f"Next turn of a {label} conversation" if label else "Next turn of a conversation",
                          customer=customer)
    if name == PAGE_REPLY:
        words = _first_words(given.get("text"))
        subject = f"Reply by {by}" if by else "Reply from the hand-off page"
        return RunSummary(subject=f"{subject}: {words}" if words else subject, customer=customer)
    if name == PAGE_HAND_BACK:
        return RunSummary(subject=f"Handed back by {by}" if by else "Handed back", customer=customer)
    return RunSummary()


def summary(envelope: Envelope) -> RunSummary:
    payload = _object(envelope.payload)
    event_type = envelope.type
    if envelope.source == FOLLOW_UP_SOURCE:
        return _follow_up(envelope, payload)
    if event_type.startswith(WHATSAPP_MESSAGE):
        return _whatsapp_message(envelope, payload)
    if event_type.startswith(WHATSAPP_STATUS):
        return _whatsapp_status(envelope, payload)
    if event_type in SLACK_MESSAGES:
        return _slack_message(payload)
    if event_type == SLACK_BUTTON:
        return _slack_button(payload)
    return RunSummary()
