"""The WhatsApp connector (``interlock.connectors.whatsapp``) speaking to the local fake Graph API, through an httpx
MockTransport handing each request to the fake as the gateway does."""

from __future__ import annotations

import httpx
import pytest
from interlock.connectors.whatsapp import HttpWhatsApp, button_message, template_message, text_message
from interlock.errors import WhatsAppRejected, WhatsAppUnavailable
from interlock.local.fakes import FAKE_GRAPH_TOKEN, FakeGraphApi
from interlock.local.http_types import Request

from .test_fake_enrichment_slack import transport

NUMBER = "106540352242922"


def graph(fake: FakeGraphApi, token: str | None = FAKE_GRAPH_TOKEN) -> HttpWhatsApp:
    return HttpWhatsApp("http://127.0.0.1:8000/_local/graph", "v23.0", transport=transport(fake.handle, "graph"),
                        token=lambda: token)


def test_each_kind_of_message_is_recorded_with_its_wamid_and_business_number() -> None:
    fake = FakeGraphApi()
    client = graph(fake)
    ids = [client.send(NUMBER, body).message_id for body in (
        text_message("16315551234", "Your order shipped."),
        button_message("16315551234", "Which order?", [("o1", "Order 1042"), ("o2", "Order 1043")]),
        template_message("16315551234", "order_update", "en_US"))]

    sent = fake.messages()
    assert [m["id"] for m in sent] == ids and len(set(ids)) == 3
    assert all(i.startswith("wamid.") for i in ids)
    assert [(m["phone_number_id"], m["to"], m["type"]) for m in sent] == [
        (NUMBER, "16315551234", "text"), (NUMBER, "16315551234", "interactive"), (NUMBER, "16315551234", "template")]
    assert sent[0]["body"]["text"]["body"] == "Your order shipped."


@pytest.mark.parametrize("token", [None, "another-token"])
def test_a_missing_or_wrong_token_is_metas_code_190_and_sends_nothing(token: str | None) -> None:
    fake = FakeGraphApi()
    with pytest.raises(WhatsAppRejected) as caught:
        graph(fake, token).send(NUMBER, text_message("16315551234", "hi"))
    assert caught.value.details["whatsapp_error"] == 190
    assert fake.messages() == []


@pytest.mark.parametrize("body", [
    {"messaging_product": "sms", "to": "16315551234", "type": "text", "text": {"body": "hi"}},
    {"messaging_product": "whatsapp", "to": "not-a-number", "type": "text", "text": {"body": "hi"}},
    {"messaging_product": "whatsapp", "to": "16315551234", "type": "text", "text": {"body": ""}},
    {"messaging_product": "whatsapp", "to": "16315551234", "type": "audio", "audio": {"id": "1"}},
    {"messaging_product": "whatsapp", "to": "16315551234", "type": "interactive",
     "interactive": {"type": "button", "body": {"text": "?"}, "action": {"buttons": []}}},
    {"messaging_product": "whatsapp", "to": "16315551234", "type": "template", "template": {"name": "x"}},
])
def test_a_body_metas_validation_refuses_is_code_100(body: dict[str, object]) -> None:
    fake = FakeGraphApi()
    with pytest.raises(WhatsAppRejected) as caught:
        graph(fake).send(NUMBER, body)  # type: ignore[arg-type]
    assert caught.value.details["whatsapp_error"] == 100
    assert fake.messages() == []


def test_an_outage_and_the_throughput_limit_are_transient() -> None:
    fake = FakeGraphApi()
    for switch in (fake.outage, fake.rate_limit):
        switch.enabled = True
        with pytest.raises(WhatsAppUnavailable):
            graph(fake).send(NUMBER, text_message("16315551234", "hi"))
        switch.enabled = False
    assert fake.messages() == []


def test_sent_messages_are_listed_and_unknown_paths_are_graph_errors() -> None:
    fake = FakeGraphApi()
    graph(fake).send(NUMBER, text_message("16315551234", "hi"))
    listed = httpx.Client(transport=transport(fake.handle, "graph")).get("http://x/_local/graph/messages").json()
    assert [m["to"] for m in listed["messages"]] == ["16315551234"]
    answer = fake.handle(Request("POST", "/_local/graph/v23.0/me/accounts", {}, [], b"{}"), "/v23.0/me/accounts")
    assert answer.status == 400
