"""The local fake enrichment service and fake Slack, on their own and with their connectors speaking to them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from interlock.connectors.enrichment import HttpEnrichment
from interlock.connectors.slack import HttpSlack
from interlock.errors import EnrichmentRejected, EnrichmentUnavailable, SlackRejected, SlackUnavailable
from interlock.local.fakes import FAKE_SLACK_TOKEN, FakeEnrichment, FakeSlack
from interlock.local.http_types import Request


def transport(handle: Any, mount: str) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        query = {key: request.url.params.get_list(key) for key in request.url.params}
        local = Request(request.method, request.url.path, query, list(request.headers.items()), request.content)
        response = handle(local, request.url.path.removeprefix(f"/_local/{mount}"))
        return httpx.Response(response.status, headers=response.headers, content=response.body)

    return httpx.MockTransport(answer)


def enrichment(fake: FakeEnrichment, key: str | None = None) -> HttpEnrichment:
    return HttpEnrichment("http://127.0.0.1:8000/_local/enrichment", transport=transport(fake.handle, "enrichment"),
                          token=lambda: key)


def slack(fake: FakeSlack, token: str | None = FAKE_SLACK_TOKEN) -> HttpSlack:
    return HttpSlack("http://127.0.0.1:8000/_local/slack", transport=transport(fake.handle, "slack"),
                     token=lambda: token)


# -- enrichment ------------------------------------------------------------------------------------------------


def test_a_seeded_domain_is_found_and_an_unknown_one_is_404() -> None:
    fake = FakeEnrichment()

    hooli = enrichment(fake).find_company("hooli.example")
    nowhere = enrichment(fake).find_company("nowhere.example")

    assert hooli is not None and (hooli.employees, hooli.country_code) == (12000, "US")
    assert nowhere is None
    assert fake.lookups == ["hooli.example", "nowhere.example"]


def test_the_outage_switch_makes_enrichment_unavailable_and_turning_it_off_brings_it_back() -> None:
    fake = FakeEnrichment()
    switch = fake.handle(Request("POST", "/outage", body=b'{"enabled": true}'), "/outage")

    with pytest.raises(EnrichmentUnavailable) as down:
        enrichment(fake).find_company("hooli.example")
    fake.handle(Request("POST", "/outage", body=b'{"enabled": false}'), "/outage")

    assert switch.status == 200 and down.value.details == {"status": 503}
    assert enrichment(fake).find_company("hooli.example") is not None


@pytest.mark.parametrize(("method", "path", "query", "status"), [
    ("GET", "/v2/companies/find", {}, 422), ("GET", "/v2/companies/find", {"domain": ["not a domain"]}, 422),
    ("POST", "/v2/companies/find", {"domain": ["hooli.example"]}, 405), ("GET", "/v1/people", {}, 404),
    ("POST", "/outage", {}, 400),
])
def test_bad_enrichment_input_gets_a_4xx(method: str, path: str, query: dict[str, list[str]], status: int) -> None:
    assert FakeEnrichment().handle(Request(method, path, query), path).status == status


def test_with_a_key_the_fake_enrichment_requires_it() -> None:
    with pytest.raises(EnrichmentRejected):
        enrichment(FakeEnrichment(key="k")).find_company("hooli.example")

    assert enrichment(FakeEnrichment(key="k"), key="k").find_company("hooli.example") is not None


# -- Slack -------------------------------------------------------------------------------------------------------


def test_a_posted_message_is_recorded_and_listed() -> None:
    fake = FakeSlack()

    posted = slack(fake).post_message("U07MAYA01", "New lead for you")
    listed = json.loads(fake.handle(Request("GET", "/messages"), "/messages").body)

    assert posted.channel == "U07MAYA01" and posted.ts
    assert [(m["channel"], m["text"], m["ts"]) for m in listed["messages"]] == [("U07MAYA01", "New lead for you",
                                                                                 posted.ts)]


@pytest.mark.parametrize(("token", "channel", "text", "code"), [
    (None, "U07MAYA01", "hi", "not_authed"), ("xoxb-wrong", "U07MAYA01", "hi", "invalid_auth"),
    (FAKE_SLACK_TOKEN, "C0NOPE", "hi", "channel_not_found"), (FAKE_SLACK_TOKEN, "U07MAYA01", "  ", "no_text"),
])
def test_what_slack_refuses_is_answered_ok_false_at_http_200_and_read_as_rejected(
        token: str | None, channel: str, text: str, code: str) -> None:
    fake = FakeSlack()

    with pytest.raises(SlackRejected) as refused:
        slack(fake, token).post_message(channel, text)

    assert refused.value.details["slack_error"] == code
    assert fake.messages() == []


def test_slacks_own_answers_for_a_malformed_body_and_an_unknown_method() -> None:
    fake = FakeSlack()
    auth = [("Authorization", f"Bearer {FAKE_SLACK_TOKEN}")]

    post = "/api/chat.postMessage"
    bad = fake.handle(Request("POST", post, headers=auth, body=b"channel=C1"), post)
    unknown = fake.handle(Request("POST", "/api/chat.nope", headers=auth), "/api/chat.nope")
    wrong_method = fake.handle(Request("GET", "/api/chat.postMessage", headers=auth), "/api/chat.postMessage")

    assert (bad.status, json.loads(bad.body)) == (200, {"ok": False, "error": "invalid_json"})
    assert (unknown.status, json.loads(unknown.body)["error"]) == (404, "unknown_method")
    assert wrong_method.status == 405


def test_the_rate_limit_switch_answers_429_with_retry_after_and_the_outage_switch_503() -> None:
    fake = FakeSlack()
    fake.handle(Request("POST", "/ratelimit", body=b'{"enabled": true}'), "/ratelimit")

    with pytest.raises(SlackUnavailable) as limited:
        slack(fake).post_message("U07MAYA01", "hi")
    fake.rate_limit.enabled = False
    fake.outage.enabled = True
    with pytest.raises(SlackUnavailable) as down:
        slack(fake).post_message("U07MAYA01", "hi")

    assert limited.value.details["retry_after"] == 1.0 and down.value.details["status"] == 503
    assert fake.messages() == []
