"""The channel adapters sending a reply, against the local fakes of the Graph API and Slack's Web API (the real
connectors, through an httpx MockTransport handing each request to the fake as the gateway does)."""

from __future__ import annotations

import pytest
from interlock.channels import OutgoingReply, SentAs, Template, window_open
from interlock.channels import slack as slack_channel
from interlock.channels import whatsapp as whatsapp_channel
from interlock.connectors.slack import HttpSlack
from interlock.connectors.whatsapp import HttpWhatsApp
from interlock.errors import NotConfigured, SlackRejected
from interlock.local.fakes import FAKE_GRAPH_TOKEN, FAKE_SLACK_TOKEN, FakeGraphApi, FakeSlack

from .test_fake_enrichment_slack import transport

WA = "whatsapp:106540352242922:16315551234"
NOW = 1_733_300_000.0
TEMPLATE = Template("order_update", "en_US")


def graph(fake: FakeGraphApi) -> HttpWhatsApp:
    return HttpWhatsApp("http://127.0.0.1:8000/_local/graph", "v23.0", transport=transport(fake.handle, "graph"),
                        token=lambda: FAKE_GRAPH_TOKEN)


def slack(fake: FakeSlack) -> HttpSlack:
    return HttpSlack("http://127.0.0.1:8000/_local/slack", transport=transport(fake.handle, "slack"),
                     token=lambda: FAKE_SLACK_TOKEN)


def test_the_window_is_open_for_24_hours_after_the_users_last_message() -> None:
    assert window_open(NOW - 24 * 3600 + 1, NOW)
    assert not window_open(NOW - 24 * 3600, NOW)
    assert not window_open(None, NOW)


def test_a_reply_in_the_window_goes_as_text_from_the_conversations_business_number() -> None:
    fake = FakeGraphApi()
    sent = whatsapp_channel.send(graph(fake), WA, OutgoingReply("Your order shipped."), last_inbound_at=NOW - 60,
                                 now=NOW, template=TEMPLATE)
    (message,) = fake.messages()
    assert (sent.message_id, sent.sent_as) == (message["id"], SentAs.TEXT)
    assert (message["phone_number_id"], message["to"], message["body"]["text"]["body"]) == (
        "106540352242922", "16315551234", "Your order shipped.")


def test_a_clarification_goes_as_reply_buttons() -> None:
    fake = FakeGraphApi()
    reply = OutgoingReply("Which order do you mean?", (("o1042", "Order 1042"), ("o1043", "Order 1043")))
    sent = whatsapp_channel.send(graph(fake), WA, reply, last_inbound_at=NOW - 60, now=NOW, template=TEMPLATE)
    (message,) = fake.messages()
    assert sent.sent_as == SentAs.BUTTONS
    assert [b["reply"]["id"] for b in message["body"]["interactive"]["action"]["buttons"]] == ["o1042", "o1043"]


def test_outside_the_window_only_the_approved_template_is_sent() -> None:
    fake = FakeGraphApi()
    sent = whatsapp_channel.send(graph(fake), WA, OutgoingReply("free text Meta would not deliver"),
                                 last_inbound_at=NOW - 25 * 3600, now=NOW, template=TEMPLATE)
    (message,) = fake.messages()
    assert sent.sent_as == SentAs.TEMPLATE
    assert message["body"]["template"] == {"name": "order_update", "language": {"code": "en_US"}}
    assert "free text" not in str(message["body"])


def test_outside_the_window_without_a_template_nothing_is_sent() -> None:
    fake = FakeGraphApi()
    with pytest.raises(NotConfigured) as caught:
        whatsapp_channel.send(graph(fake), WA, OutgoingReply("hi"), last_inbound_at=None, now=NOW, template=None)
    assert caught.value.reason == "no_template"
    assert fake.messages() == []


@pytest.mark.parametrize("key", ["slack:T1:C1:1.2", "whatsapp:abc:123", "whatsapp:1", "whatsapp:1:2:3x", ""])
def test_a_key_that_is_no_whatsapp_conversation_sends_nothing(key: str) -> None:
    fake = FakeGraphApi()
    with pytest.raises(ValueError):
        whatsapp_channel.send(graph(fake), key, OutgoingReply("hi"), last_inbound_at=NOW, now=NOW, template=None)
    assert fake.messages() == []


def test_a_slack_reply_goes_to_the_conversations_thread() -> None:
    fake = FakeSlack(conversations=frozenset({"C0001"}))
    sent = slack_channel.send(slack(fake), "slack:T0001:C0001:1733212800.000100", OutgoingReply("Order 1042 shipped."))
    (message,) = fake.messages()
    assert (sent.message_id, sent.sent_as) == (message["ts"], SentAs.TEXT)
    assert (message["channel"], message["body"]["thread_ts"]) == ("C0001", "1733212800.000100")
    assert "blocks" not in message["body"]


def test_a_slack_dm_outside_a_thread_is_answered_in_the_dm() -> None:
    fake = FakeSlack(conversations=frozenset({"D0001"}))
    slack_channel.send(slack(fake), "slack:T0001:D0001", OutgoingReply("hi"))
    (message,) = fake.messages()
    assert "thread_ts" not in message["body"]


def test_slack_buttons_are_block_kit_actions_whose_clicks_name_the_button() -> None:
    fake = FakeSlack(conversations=frozenset({"C0001"}))
    reply = OutgoingReply("Which order?", (("o1042", "Order 1042"), ("o1043", "Order 1043")))
    sent = slack_channel.send(slack(fake), "slack:T0001:C0001:1733212800.000100", reply)
    (message,) = fake.messages()
    assert sent.sent_as == SentAs.BUTTONS
    section, actions = message["body"]["blocks"]
    assert section["text"]["text"] == "Which order?" and message["body"]["text"] == "Which order?"
    assert [(e["action_id"], e["value"], e["text"]["text"]) for e in actions["elements"]] == [
        ("reply:o1042", "o1042", "Order 1042"), ("reply:o1043", "o1043", "Order 1043")]


def test_the_fake_slack_refuses_blocks_slack_would_refuse() -> None:
    fake = FakeSlack(conversations=frozenset({"C0001"}))
    with pytest.raises(SlackRejected):
        slack(fake).post_message("C0001", "hi", blocks=[{"no": "type"}])
    assert fake.messages() == []


@pytest.mark.parametrize("key", ["whatsapp:1:2", "slack:T1", "slack:T1::1.2", "slack:T1:C1:../x", "slack:T:C:1:2"])
def test_a_key_that_is_no_slack_conversation_posts_nothing(key: str) -> None:
    fake = FakeSlack(conversations=frozenset({"C1"}))
    with pytest.raises(ValueError):
        slack_channel.send(slack(fake), key, OutgoingReply("hi"))
    assert fake.messages() == []
