"""The Graph API messages connector: the bodies it sends, and Meta's answers as the step errors they are."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from interlock.connectors import whatsapp
from interlock.connectors.whatsapp import HttpWhatsApp, button_message, template_message, text_message
from interlock.errors import WhatsAppRejected, WhatsAppUnavailable

TOKEN = "EAAG-test-token"


def connector(answer: httpx.Response | Exception, seen: list[httpx.Request]) -> HttpWhatsApp:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return HttpWhatsApp("https://graph.test/", "v23.0", transport=httpx.MockTransport(handle), token=lambda: TOKEN)


def accepted(wamid: str = "wamid.HBgLMTYz") -> httpx.Response:
    return httpx.Response(200, json={"messaging_product": "whatsapp",
                                     "contacts": [{"input": "16315551234", "wa_id": "16315551234"}],
                                     "messages": [{"id": wamid}]})


def meta_error(status: int, code: int) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": "(#x) something", "type": "OAuthException",
                                                  "code": code, "fbtrace_id": "Az8or"}})


def test_a_text_goes_to_the_business_numbers_messages_endpoint_with_the_token() -> None:
    seen: list[httpx.Request] = []
    sent = connector(accepted(), seen).send("106540352242922", text_message("16315551234", "Your order shipped."))

    assert sent.message_id == "wamid.HBgLMTYz"
    (request,) = seen
    assert str(request.url) == "https://graph.test/v23.0/106540352242922/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {"messaging_product": "whatsapp", "recipient_type": "individual",
                                           "to": "16315551234", "type": "text",
                                           "text": {"body": "Your order shipped.", "preview_url": False}}


def test_buttons_are_reply_buttons_of_an_interactive_message() -> None:
    body = button_message("16315551234", "Which order?", [("o1", "Order 1042"), ("o2", "Order 1043")])
    assert body["type"] == "interactive"
    assert body["interactive"] == {"type": "button", "body": {"text": "Which order?"}, "action": {"buttons": [
        {"type": "reply", "reply": {"id": "o1", "title": "Order 1042"}},
        {"type": "reply", "reply": {"id": "o2", "title": "Order 1043"}}]}}


def test_a_template_names_its_approved_template_and_language() -> None:
    assert template_message("16315551234", "order_update", "en_US")["template"] == {
        "name": "order_update", "language": {"code": "en_US"}}


@pytest.mark.parametrize("buttons", [
    [], [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")], [("a", "A"), ("a", "B")], [("a", "x" * 21)],
    [("", "A")], [("i" * 257, "A")], [("a", "   ")],
])
def test_buttons_meta_would_refuse_are_refused_before_sending(buttons: list[tuple[str, str]]) -> None:
    with pytest.raises(WhatsAppRejected):
        button_message("16315551234", "Which one?", buttons)


@pytest.mark.parametrize("text", ["", "   ", "x" * (whatsapp.MAX_TEXT_CHARS + 1)])
def test_an_empty_or_too_long_text_is_refused_before_sending(text: str) -> None:
    with pytest.raises(WhatsAppRejected):
        text_message("16315551234", text)


@pytest.mark.parametrize("answer", [
    httpx.Response(429), httpx.Response(503), meta_error(400, 130429), meta_error(400, 131056), meta_error(403, 4),
    httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
    httpx.Response(200, text="<html>"), httpx.Response(200, json={"messages": []}),
])
def test_throttling_outages_and_unreadable_answers_are_transient(answer: Any) -> None:
    with pytest.raises(WhatsAppUnavailable) as caught:
        connector(answer, []).send("106540352242922", text_message("16315551234", "hi"))
    assert TOKEN not in str(caught.value) and "16315551234" not in str(caught.value)


@pytest.mark.parametrize(("answer", "code"), [
    (meta_error(401, 190), 190), (meta_error(400, 100), 100), (meta_error(400, 131047), 131047),
    (httpx.Response(404, text="nope"), None),
])
def test_other_refusals_are_rejected_with_metas_code(answer: httpx.Response, code: int | None) -> None:
    with pytest.raises(WhatsAppRejected) as caught:
        connector(answer, []).send("106540352242922", text_message("16315551234", "hi"))
    assert caught.value.details["whatsapp_error"] == code
    assert TOKEN not in str(caught.value) and "graph.test" not in str(caught.value)


def test_a_phone_number_id_that_is_not_a_number_never_reaches_the_url() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(WhatsAppRejected):
        connector(accepted(), seen).send("../me/accounts", text_message("16315551234", "hi"))
    assert seen == []


def test_the_connector_is_built_from_its_settings_or_not_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock import settings

    def built() -> HttpWhatsApp | None:
        whatsapp.from_settings.cache_clear()
        settings.load.cache_clear()
        return whatsapp.from_settings()

    monkeypatch.delenv("INTERLOCK_WHATSAPP_GRAPH_URL", raising=False)
    assert built() is None
    monkeypatch.setenv("INTERLOCK_WHATSAPP_GRAPH_URL", "https://graph.facebook.com")
    monkeypatch.setenv("INTERLOCK_WHATSAPP_API_VERSION", "v24.0")
    client = built()
    assert client is not None and (client.graph_url, client.api_version) == ("https://graph.facebook.com", "v24.0")
    monkeypatch.setenv("INTERLOCK_WHATSAPP_API_VERSION", "../v1")  # it is part of the URL's path
    with pytest.raises(Exception, match="INTERLOCK_WHATSAPP_API_VERSION"):
        built()
    whatsapp.from_settings.cache_clear()
    settings.load.cache_clear()
