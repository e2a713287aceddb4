"""The enrichment and Slack connectors: their requests, how they read answers and map failures, their tokens."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from interlock.connectors.enrichment import HttpEnrichment
from interlock.connectors.http import bearer, parse_token, token_source
from interlock.connectors.slack import HttpSlack
from interlock.errors import EnrichmentRejected, EnrichmentUnavailable, SlackRejected, SlackUnavailable

KEY = "sk_enrich_secret_key"
TOKEN = "xoxb-1111-2222-secret"
CLEARBIT = {"name": "Hooli", "domain": "hooli.example", "category": {"industry": "Internet"},
            "metrics": {"employees": 12000, "raised": 1}, "geo": {"country": "United States", "countryCode": "us"}}


def mock(answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return httpx.MockTransport(handle)


def enrichment(answer: Callable[[httpx.Request], httpx.Response],
               seen: list[httpx.Request] | None = None) -> HttpEnrichment:
    return HttpEnrichment("https://company.enrich.example/", transport=mock(answer, [] if seen is None else seen),
                          token=lambda: KEY)


def slack(answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request] | None = None) -> HttpSlack:
    return HttpSlack("https://slack.example", transport=mock(answer, [] if seen is None else seen),
                     token=lambda: TOKEN)


# -- enrichment ------------------------------------------------------------------------------------------------


def test_a_company_is_found_by_its_domain_in_the_query_with_the_key_as_a_bearer_token() -> None:
    seen: list[httpx.Request] = []

    found = enrichment(lambda r: httpx.Response(200, json=CLEARBIT), seen).find_company("hooli.example")

    assert found is not None
    assert (found.name, found.employees, found.industry, found.country_code) == ("Hooli", 12000, "Internet", "US")
    assert str(seen[0].url) == "https://company.enrich.example/v2/companies/find?domain=hooli.example"
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"


def test_an_unknown_domain_is_none_and_missing_details_stay_unknown() -> None:
    assert enrichment(lambda r: httpx.Response(404, json={"error": {"type": "unknown_record"}})).find_company(
        "nowhere.example") is None
    narnia = {"geo": {"countryCode": "Narnia"}}
    sparse = enrichment(lambda r: httpx.Response(200, json=narnia)).find_company("a.example")
    assert sparse is not None and (sparse.employees, sparse.industry, sparse.country_code) == (None, None, None)


@pytest.mark.parametrize(("status", "error"), [(202, EnrichmentUnavailable), (429, EnrichmentUnavailable),
                                               (500, EnrichmentUnavailable), (503, EnrichmentUnavailable),
                                               (401, EnrichmentRejected), (422, EnrichmentRejected)])
def test_enrichment_failures_are_retried_or_refused_naming_the_status_only(status: int,
                                                                          error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        enrichment(lambda r: httpx.Response(status, json={"echo": KEY})).find_company("hooli.example")

    assert str(status) in str(raised.value) and KEY not in str(raised.value)
    assert "company.enrich.example" not in str(raised.value)


@pytest.mark.parametrize("failure", [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"),
                                     httpx.ConnectError("refused")])
def test_an_enrichment_timeout_is_unavailable_and_retried(failure: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(EnrichmentUnavailable) as raised:
        enrichment(fail).find_company("hooli.example")

    assert raised.value.retryable and type(failure).__name__ in str(raised.value)


def test_an_unreadable_enrichment_answer_is_unavailable_naming_only_fields() -> None:
    with pytest.raises(EnrichmentUnavailable, match=r"unreadable company \(metrics.employees\)"):
        enrichment(lambda r: httpx.Response(200, json={"metrics": {"employees": "many"}})).find_company("a.example")


def test_the_enrichment_timeout_is_on_every_request_with_connect_capped() -> None:
    seen: list[httpx.Request] = []
    HttpEnrichment("https://e.example", timeout_seconds=3.0, transport=mock(lambda r: httpx.Response(404), seen)) \
        .find_company("a.example")

    assert seen[0].extensions["timeout"]["read"] == 3.0 and seen[0].extensions["timeout"]["connect"] == 2.0


# -- Slack -------------------------------------------------------------------------------------------------------


def test_a_message_is_posted_as_json_with_the_bot_token() -> None:
    seen: list[httpx.Request] = []
    answer = {"ok": True, "channel": "D07ABC", "ts": "1736933400.000100", "message": {"text": "hi"}}

    posted = slack(lambda r: httpx.Response(200, json=answer), seen).post_message("U07MAYA01", "New lead")

    assert (posted.channel, posted.ts) == ("D07ABC", "1736933400.000100")
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", "https://slack.example/api/chat.postMessage")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert json.loads(request.content) == {"channel": "U07MAYA01", "text": "New lead", "unfurl_links": False,
                                           "unfurl_media": False}


@pytest.mark.parametrize(("code", "error"), [("channel_not_found", SlackRejected), ("invalid_auth", SlackRejected),
                                             ("not_authed", SlackRejected), ("no_text", SlackRejected),
                                             ("ratelimited", SlackUnavailable), ("internal_error", SlackUnavailable),
                                             ("service_unavailable", SlackUnavailable), (None, SlackRejected)])
def test_slacks_ok_false_answers_at_http_200_map_by_their_error_code(code: str | None,
                                                                     error: type[Exception]) -> None:
    answer = {"ok": False, **({"error": code} if code else {})}

    with pytest.raises(error) as raised:
        slack(lambda r: httpx.Response(200, json=answer)).post_message("C1", "text")

    assert raised.value.details["slack_error"] == (code or "unknown_error")  # type: ignore[attr-defined]


def test_a_429_is_retryable_with_slacks_retry_after() -> None:
    with pytest.raises(SlackUnavailable) as raised:
        slack(lambda r: httpx.Response(429, headers={"Retry-After": "30"})).post_message("C1", "text")

    assert raised.value.retryable and raised.value.details["retry_after"] == 30.0


@pytest.mark.parametrize(("status", "error"), [(500, SlackUnavailable), (502, SlackUnavailable),
                                               (404, SlackRejected), (410, SlackRejected)])
def test_other_http_statuses_map_to_retried_or_refused(status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        slack(lambda r: httpx.Response(status, text=TOKEN)).post_message("C1", "the message")

    assert TOKEN not in str(raised.value) and "the message" not in str(raised.value)


def test_an_unreadable_slack_answer_is_unavailable() -> None:
    with pytest.raises(SlackUnavailable, match="unreadable"):
        slack(lambda r: httpx.Response(200, content=b"<html>")).post_message("C1", "text")


def test_a_message_over_the_limit_is_refused_before_sending() -> None:
    seen: list[httpx.Request] = []

    with pytest.raises(SlackRejected, match="longer than"):
        slack(lambda r: httpx.Response(200), seen).post_message("C1", "x" * 4001)

    assert seen == []


# -- tokens ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stored", "token"), [("xoxb-1", "xoxb-1"), ("  xoxb-1\n", "xoxb-1"), ('"xoxb-1"', "xoxb-1"),
                                               ('{"token": "xoxb-1"}', "xoxb-1"), ("{}", None), ("", None),
                                               (None, None), ('{"token": 5}', None), ("{broken", None)])
def test_a_stored_token_is_plain_text_a_json_string_or_an_object(stored: str | None, token: str | None) -> None:
    assert parse_token(stored) == token


def test_a_plain_token_is_used_only_when_no_secret_is_named() -> None:
    assert token_source("", " xoxb-local ", 300, reason="r")() == "xoxb-local"
    assert token_source("", "", 300, reason="r")() is None
    assert bearer(None) == {} and bearer("t") == {"Authorization": "Bearer t"}
