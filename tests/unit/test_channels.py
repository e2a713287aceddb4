"""The channel adapters: what the assistant reads from a recorded WhatsApp or Slack event."""

from __future__ import annotations

from typing import Any

import pytest
from interlock.channels import MAX_TEXT_CHARS, MessageKind, NotAMessage, whatsapp
from interlock.channels import slack as slack_channel


def _wa(message: dict[str, Any], phone_number_id: str = "106540352242922") -> dict[str, Any]:
    base = {"from": "16315551234", "id": "wamid.HBgL1", "timestamp": "1733212800"}
    return {"waba_id": "102290129340398", "field": "messages",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16315551234"}],
            "message": {**base, **message}}


def test_a_text_message_is_one_of_the_users_conversation_on_that_number() -> None:
    got = whatsapp.inbound(_wa({"type": "text", "text": {"body": "  where is my order?  "}}))
    assert got.conversation == "whatsapp:106540352242922:16315551234"
    assert (got.sender, got.message_id, got.sent_at) == ("16315551234", "wamid.HBgL1", 1733212800.0)
    assert (got.kind, got.text, got.reply_id) == (MessageKind.TEXT, "where is my order?", None)


def test_the_same_user_on_another_business_number_is_another_conversation() -> None:
    one = whatsapp.inbound(_wa({"type": "text", "text": {"body": "hi"}}))
    other = whatsapp.inbound(_wa({"type": "text", "text": {"body": "hi"}}, phone_number_id="999"))
    assert one.conversation != other.conversation


@pytest.mark.parametrize(("message", "text", "reply_id"), [
    ({"type": "interactive", "interactive": {"type": "button_reply",
                                             "button_reply": {"id": "order_status", "title": "Order status"}}},
     "Order status", "order_status"),
    ({"type": "interactive", "interactive": {"type": "list_reply",
                                             "list_reply": {"id": "row2", "title": "Refund", "description": "x"}}},
     "Refund", "row2"),
    ({"type": "button", "button": {"payload": "RESUME", "text": "Yes, continue"}}, "Yes, continue", "RESUME"),
])
def test_a_picked_button_or_row_is_an_interactive_reply_with_its_id(message: dict[str, Any], text: str,
                                                                     reply_id: str) -> None:
    got = whatsapp.inbound(_wa(message))
    assert (got.kind, got.text, got.reply_id) == (MessageKind.INTERACTIVE_REPLY, text, reply_id)


def test_an_image_is_read_by_its_caption_and_a_location_by_its_place() -> None:
    image = whatsapp.inbound(_wa({"type": "image", "image": {"id": "1", "caption": "the broken box"}}))
    assert (image.kind, image.text) == (MessageKind.IMAGE, "the broken box")
    place = whatsapp.inbound(_wa({"type": "location", "location": {
        "latitude": 52.52, "longitude": 13.405, "name": "Depot", "address": "Hauptstr. 1"}}))
    assert (place.kind, place.text) == (MessageKind.LOCATION, "Depot, Hauptstr. 1 (52.52, 13.405)")


def test_a_type_the_assistant_cannot_read_is_unsupported_and_keeps_its_name() -> None:
    got = whatsapp.inbound(_wa({"type": "sticker", "sticker": {"id": "1"}}))
    assert (got.kind, got.text, got.original_type) == (MessageKind.UNSUPPORTED, "", "sticker")


def test_a_long_text_is_cut_at_whatsapps_own_limit() -> None:
    got = whatsapp.inbound(_wa({"type": "text", "text": {"body": "a" * (MAX_TEXT_CHARS + 50)}}))
    assert len(got.text) == MAX_TEXT_CHARS


@pytest.mark.parametrize(("change", "code"), [
    ({"from": ""}, "no_sender"),
    ({"id": None}, "no_sender"),
    ({"timestamp": "soon"}, "no_timestamp"),
    ({"timestamp": "nan"}, "no_timestamp"),
    ({"timestamp": "-5"}, "no_timestamp"),
    ({"timestamp": "1e300"}, "no_timestamp"),
    ({"type": "interactive", "interactive": {"type": "nfm_reply"}}, "unreadable_interactive"),
])
def test_a_message_without_a_sender_time_or_readable_reply_is_not_a_message(change: dict[str, Any],
                                                                              code: str) -> None:
    with pytest.raises(NotAMessage) as caught:
        whatsapp.inbound(_wa({"type": "text", "text": {"body": "x"}, **change}))
    assert caught.value.code == code


def test_a_payload_without_the_business_number_or_message_is_not_a_message() -> None:
    for payload in ({}, {"message": "x"}, {**_wa({"type": "text"}), "metadata": []}):
        with pytest.raises(NotAMessage):
            whatsapp.inbound(payload)


def _slack(event: dict[str, Any]) -> dict[str, Any]:
    return {"team_id": "T0001", "api_app_id": "A1", "type": "event_callback", "event_id": "Ev1",
            "event": {"channel": "C0001", "user": "U0001", "ts": "1733212800.000100", **event}}


def test_a_mention_starts_a_conversation_of_its_own_thread_without_the_mention() -> None:
    got = slack_channel.inbound(_slack({"type": "app_mention", "text": "<@U0APP> where is order 1042?"}))
    assert got.conversation == "slack:T0001:C0001:1733212800.000100"
    assert (got.sender, got.text, got.sent_at) == ("U0001", "where is order 1042?", 1733212800.0001)


def test_a_mention_in_a_thread_is_that_threads_conversation() -> None:
    got = slack_channel.inbound(_slack({"type": "app_mention", "text": "<@U0APP> and now?",
                                        "ts": "1733212900.000200", "thread_ts": "1733212800.000100"}))
    assert got.conversation == "slack:T0001:C0001:1733212800.000100"


def test_a_direct_message_is_the_dms_conversation_or_its_threads() -> None:
    dm = slack_channel.inbound(_slack({"type": "message", "channel_type": "im", "channel": "D0001", "text": "hi"}))
    assert dm.conversation == "slack:T0001:D0001"
    threaded = slack_channel.inbound(_slack({"type": "message", "channel_type": "im", "channel": "D0001",
                                             "text": "hi", "thread_ts": "1733212700.000001"}))
    assert threaded.conversation == "slack:T0001:D0001:1733212700.000001"


@pytest.mark.parametrize(("event", "code"), [
    ({"type": "message", "channel_type": "im", "bot_id": "B1", "text": "my own reply"}, "not_from_a_person"),
    ({"type": "message", "channel_type": "im", "subtype": "message_changed"}, "not_from_a_person"),
    ({"type": "message", "channel_type": "channel", "text": "chatter"}, "not_to_the_app"),
    ({"type": "reaction_added"}, "not_a_message"),
    ({"type": "app_mention", "user": ""}, "no_sender"),
    ({"type": "app_mention", "ts": "yesterday"}, "no_sender"),
    ({"type": "app_mention", "thread_ts": "../x"}, "no_sender"),
])
def test_bots_edits_channel_chatter_and_malformed_events_are_not_messages(event: dict[str, Any],
                                                                          code: str) -> None:
    with pytest.raises(NotAMessage) as caught:
        slack_channel.inbound(_slack(event))
    assert caught.value.code == code


def _status(status: dict[str, Any]) -> dict[str, Any]:
    return {"waba_id": "102290129340398", "metadata": {"phone_number_id": "106540352242922"},
            "status": {"id": "wamid.HBgL1", "recipient_id": "16315551234", "timestamp": "1733212860", **status}}


def test_a_delivery_status_names_the_sent_message_and_when() -> None:
    got = whatsapp.delivery_status(_status({"status": "read"}))
    assert (got.message_id, got.status, got.at, got.error_code, got.window_closed) == (
        "wamid.HBgL1", "read", 1733212860.0, None, False)


def test_a_failure_with_the_re_engagement_error_says_the_window_is_closed() -> None:
    failed = whatsapp.delivery_status(_status({"status": "failed", "errors": [
        {"code": 131047, "title": "Re-engagement message", "message": "More than 24 hours have passed"}]}))
    assert (failed.error_code, failed.window_closed) == (131047, True)
    other = whatsapp.delivery_status(_status({"status": "failed", "errors": [{"code": 131026}]}))
    assert other.window_closed is False


@pytest.mark.parametrize("status", [{"id": ""}, {"status": None}, {"timestamp": "later"},
                                    {"status": "failed", "errors": "x", "timestamp": "0"}])
def test_a_status_without_its_message_state_or_time_is_unreadable(status: dict[str, Any]) -> None:
    with pytest.raises(NotAMessage):
        whatsapp.delivery_status(_status({"status": "sent", **status}))


def _click(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions", "team": {"id": "T0001"}, "user": {"id": "U0001"},
        "container": {"type": "message", "message_ts": "1733212810.000300", "channel_id": "C0001"},
        "message": {"ts": "1733212810.000300", "thread_ts": "1733212800.000100"},
        "actions": [{"type": "button", "action_id": "reply:o1042", "value": "o1042",
                     "text": {"type": "plain_text", "text": "Order 1042"}, "action_ts": "1733212900.123456"}]}
    payload.update(changes)
    return payload


def test_a_click_on_a_reply_button_is_the_threads_next_message() -> None:
    got = slack_channel.button_click(_click())
    assert got.conversation == "slack:T0001:C0001:1733212800.000100"
    assert (got.kind, got.text, got.reply_id, got.sender) == (MessageKind.INTERACTIVE_REPLY, "Order 1042", "o1042",
                                                              "U0001")


def test_a_click_in_a_dm_outside_a_thread_is_the_dms_message() -> None:
    got = slack_channel.button_click(_click(container={"channel_id": "D0001"}, message={"ts": "1733212810.000300"}))
    assert got.conversation == "slack:T0001:D0001"


@pytest.mark.parametrize("changes", [
    {"type": "view_submission"},
    {"actions": [{"action_id": "approve_deal", "action_ts": "1733212900.1"}]},
    {"actions": []},
    {"user": {}},
    {"message": {"ts": "1733212810.000300"}},  # a channel message outside a thread is no conversation of ours
    {"message": {"thread_ts": "../../x"}},
])
def test_other_interactions_and_malformed_clicks_are_not_messages(changes: dict[str, Any]) -> None:
    with pytest.raises(NotAMessage):
        slack_channel.button_click(_click(**changes))


def test_a_persons_reply_in_a_channels_thread_names_the_thread() -> None:
    got = slack_channel.thread_reply("slack.message", _slack({"type": "message", "channel_type": "channel",
                                                              "thread_ts": "1733212700.000001", "text": " Hi "}))
    assert (got.channel, got.thread_ts, got.user, got.text, got.action) == ("C0001", "1733212700.000001", "U0001",
                                                                           "Hi", None)


def test_a_click_on_a_channel_messages_own_button_is_its_action_on_that_message() -> None:
    got = slack_channel.thread_reply("slack.interaction.block_actions", _click(
        actions=[{"action_id": "hand_back:1", "action_ts": "1733212900.123456"}]))
    assert (got.channel, got.thread_ts, got.user, got.action) == ("C0001", "1733212810.000300", "U0001", "hand_back")


@pytest.mark.parametrize(("event_type", "payload"), [
    ("slack.message", _slack({"type": "message", "channel_type": "channel"})),  # not in a thread
    ("slack.message", _slack({"type": "message", "thread_ts": "1733212800.000100"})),  # the thread's first message
    ("slack.message", _slack({"type": "message", "thread_ts": "1733212700.000001", "bot_id": "B1"})),  # the app's
    ("slack.message", _slack({"type": "message", "thread_ts": "1733212700.000001", "subtype": "message_changed"})),
    ("slack.interaction.block_actions", _click()),  # a reply button is a conversation's message, not an action
    ("slack.interaction.block_actions", _click(container={"channel_id": "C0001", "message_ts": "x"})),
])
def test_what_is_no_persons_thread_reply_or_action(event_type: str, payload: dict[str, Any]) -> None:
    with pytest.raises(NotAMessage):
        slack_channel.thread_reply(event_type, payload)
