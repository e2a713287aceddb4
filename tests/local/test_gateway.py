"""The API Gateway emulation: routing, the proxy event, the proxy response, and the HTTP server."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from interlock.local.functions import Invocation, LambdaError
from interlock.local.gateway import (
    Gateway,
    MalformedProxyResponse,
    MethodNotAllowed,
    RouteTable,
    build_event,
    proxy_response,
)
from interlock.local.http_types import Request
from interlock.topology import Route, Topology

# -- routing -------------------------------------------------------------------------------------------------


def test_routes_match_templates_and_prefer_literal_resources(topology: Topology) -> None:
    table = RouteTable(topology.routes)

    match = table.match("GET", "/echo/abc%20def")
    assert match is not None
    assert (match.route.function, match.path_parameters) == ("echo", {"thing": "abc def"})
    special = table.match("GET", "/echo/special")
    assert special is not None and special.route.function == "fail"
    assert table.match("GET", "/echo") is None
    assert table.match("GET", "/echo/a/b") is None
    assert table.match("GET", "/nothing") is None


def test_a_wrong_method_on_a_known_resource_is_method_not_allowed(topology: Topology) -> None:
    with pytest.raises(MethodNotAllowed) as caught:
        RouteTable(topology.routes).match("DELETE", "/echo/abc")
    assert caught.value.allowed == ["GET", "HEAD"]


def test_greedy_path_parameters_take_the_rest_of_the_path() -> None:
    table = RouteTable((Route("GET", "/files/{key+}", "f"),))

    match = table.match("GET", "/files/a/b%2Fc")
    assert match is not None and match.path_parameters == {"key": "a/b/c"}
    assert table.match("GET", "/files") is None


# -- the proxy event ---------------------------------------------------------------------------------------------


def _request(**overrides: Any) -> Request:
    values: dict[str, Any] = {
        "method": "POST",
        "path": "/hooks/form",
        "headers": [("Host", "127.0.0.1:8000"), ("X-Tag", "a"), ("X-Tag", "b"), ("User-Agent", "t")],
        "body": b'{"hello": "w\xc3\xb6rld"}',
    }
    values.update(overrides)
    return Request(**values)


def test_the_event_is_api_gateways_rest_proxy_event(topology: Topology) -> None:
    match = RouteTable(topology.routes).match("POST", "/hooks/form")
    assert match is not None

    event = build_event(match, _request(query={"x": ["1", "2"], "y": [""]}), "10.0.0.1", "req-1", now=1700000000.5)

    assert event["resource"] == "/hooks/{source}"
    assert event["path"] == "/hooks/form"
    assert event["httpMethod"] == "POST"
    assert event["headers"] == {"Host": "127.0.0.1:8000", "X-Tag": "b", "User-Agent": "t"}
    assert event["multiValueHeaders"]["X-Tag"] == ["a", "b"]
    assert event["queryStringParameters"] == {"x": "2", "y": ""}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["pathParameters"] == {"source": "form"}
    assert event["stageVariables"] is None
    assert event["body"] == '{"hello": "wörld"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["resourcePath"] == "/hooks/{source}"
    assert context["httpMethod"] == "POST"
    assert context["path"] == "/local/hooks/form"
    assert context["stage"] == "local"
    assert context["requestId"] == "req-1"
    assert context["requestTimeEpoch"] == 1700000000500
    assert context["identity"]["sourceIp"] == "10.0.0.1"
    assert context["identity"]["userAgent"] == "t"
    assert context["accountId"] == "123456789012"
    assert context["apiId"]


def test_no_query_string_and_no_body_are_none(topology: Topology) -> None:
    match = RouteTable(topology.routes).match("GET", "/echo/x")
    assert match is not None

    event = build_event(match, _request(method="GET", path="/echo/x", body=b""), "127.0.0.1")

    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


def test_a_body_that_is_not_utf8_is_sent_base64(topology: Topology) -> None:
    match = RouteTable(topology.routes).match("POST", "/hooks/form")
    assert match is not None
    raw = b"\xff\xfe\x00binary"

    event = build_event(match, _request(body=raw), "127.0.0.1")

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


# -- the proxy response --------------------------------------------------------------------------------------------


def test_headers_merge_into_multi_value_headers_and_base64_bodies_are_decoded() -> None:
    response = proxy_response({
        "statusCode": 201,
        "headers": {"Content-Type": "image/png", "Set-Cookie": "ignored"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": base64.b64encode(b"\x89PNG").decode(),
        "isBase64Encoded": True,
    })

    assert response.status == 201
    assert response.headers == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Content-Type", "image/png")]
    assert response.body == b"\x89PNG"


@pytest.mark.parametrize("payload", [None, "text", {"body": "x"}, {"statusCode": 99}, {"statusCode": 200, "body": 5}])
def test_anything_else_is_a_malformed_proxy_response(payload: Any) -> None:
    with pytest.raises(MalformedProxyResponse):
        proxy_response(payload)


# -- the server ----------------------------------------------------------------------------------------------------


class FakeFunctions:
    """Stands in for LocalLambda: records events and answers per function."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def invoke(self, function: str, event: Any) -> Invocation:
        self.events.append((function, event))
        if function == "fail":
            try:
                raise RuntimeError("boom")
            except RuntimeError as exc:
                return Invocation(function, "r", error=LambdaError.from_exception(exc, "r"), exception=exc)
        if function == "broken":
            return Invocation(function, "r", payload={"no": "statusCode"})
        body = json.dumps({"seen_body": event["body"], "base64": event["isBase64Encoded"]})
        return Invocation(function, "r", payload={"statusCode": 200, "headers": {"X-Fn": function}, "body": body})


Served = tuple[Gateway, FakeFunctions]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def served(topology: Topology) -> Iterator[Served]:
    gateway = Gateway(topology, port=0)
    fake = FakeFunctions()
    gateway.start(fake.invoke)
    yield gateway, fake
    gateway.stop()


def test_a_request_reaches_its_function_over_http(served: Served, http: httpx.Client) -> None:
    gateway, fake = served

    response = http.post(f"{gateway.url}/hooks/form?x=1", content=b"\x00\xffraw")

    assert response.status_code == 200
    assert response.headers["X-Fn"] == "ingest"
    assert response.headers["x-amzn-RequestId"]
    assert response.json() == {"seen_body": base64.b64encode(b"\x00\xffraw").decode(), "base64": True}
    function, event = fake.events[-1]
    assert function == "ingest"
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"


def test_unknown_paths_and_wrong_methods_answer_json(served: Served, http: httpx.Client) -> None:
    gateway, fake = served

    missing = http.get(f"{gateway.url}/nope")
    wrong = http.put(f"{gateway.url}/echo/x")

    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found"})
    assert (wrong.status_code, wrong.json()) == (405, {"message": "Method Not Allowed"})
    assert wrong.headers["Allow"] == "GET, HEAD"
    assert fake.events == []


def test_a_failing_or_malformed_function_is_a_502(served: Served, http: httpx.Client, caplog) -> None:
    gateway, _ = served

    with caplog.at_level(logging.ERROR, logger="localcloud.gateway"):
        failed = http.get(f"{gateway.url}/echo/special")
        malformed = http.get(f"{gateway.url}/broken")

    assert (failed.status_code, failed.json()) == (502, {"message": "Internal server error"})
    assert (malformed.status_code, malformed.json()) == (502, {"message": "Internal server error"})
    crash = next(r for r in caplog.records if "function fail failed" in r.getMessage())
    assert crash.exc_info and "boom" in str(crash.exc_info[1])
    assert any("malformed Lambda proxy response" in r.getMessage() for r in caplog.records)


def test_the_console_never_shows_a_credential_in_a_path_or_a_query(http: httpx.Client, caplog) -> None:
    # The approval link's token and WhatsApp's hub.verify_token must not reach the runtime's log
    from interlock.topology import TOPOLOGY

    gateway = Gateway(TOPOLOGY, port=0)
    fake = FakeFunctions()
    gateway.start(fake.invoke)
    try:
        with caplog.at_level(logging.DEBUG, logger="localcloud.gateway"):
            http.get(f"{gateway.url}/approvals/tok-SECRET-123")
            http.get(f"{gateway.url}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=vt-SECRET-456&hub.challenge=7")
    finally:
        gateway.stop()

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET /approvals/… -> 200" in logged
    assert "GET /webhooks/whatsapp?hub.mode=…&hub.verify_token=…&hub.challenge=… -> 200" in logged
    assert "SECRET" not in logged
    assert fake.events[0][1]["pathParameters"] == {"token": "tok-SECRET-123"}  # the function still gets it


def test_head_answers_headers_without_a_body(served: Served, http: httpx.Client) -> None:
    gateway, fake = served

    response = http.head(f"{gateway.url}/echo/x")

    assert response.status_code == 200
    assert response.headers["X-Fn"] == "echo"
    assert int(response.headers["Content-Length"]) > 0
    assert response.content == b""
    assert fake.events[-1][1]["httpMethod"] == "HEAD"


# -- the fakes, through the same server -------------------------------------------------------------------------------


def test_the_crm_fake_answers_accounts_404s_and_outages(served: Served, http: httpx.Client) -> None:
    gateway, _ = served
    crm = f"{gateway.url}/_local/crm"

    ada = http.get(f"{crm}/accounts", params={"email": "Ada@Example.com"})
    nobody = http.get(f"{crm}/accounts", params={"email": "nobody@example.com"})
    http.post(f"{crm}/outage", json={"enabled": True})
    down = http.get(f"{crm}/accounts", params={"email": "ada@example.com"})
    http.post(f"{crm}/outage", json={"enabled": False})

    assert ada.status_code == 200
    assert {"account_id", "name", "email", "plan", "tier", "open_tickets", "lifetime_value"} <= ada.json().keys()
    assert ada.json()["plan"] == "enterprise"
    assert (nobody.status_code, nobody.json()) == (404, {"error": "not_found"})
    assert down.status_code == 503
    assert http.get(f"{crm}/accounts", params={"email": "grace@example.com"}).json()["plan"] == "pro"


def test_the_helpdesk_fake_records_a_reply_once_per_idempotency_key(served: Served, http: httpx.Client) -> None:
    gateway, _ = served
    replies = f"{gateway.url}/_local/helpdesk/replies"
    reply = {"run_id": "run-1", "to": "ada@example.com", "subject": "Re: hi", "body": "Hello"}

    first = http.post(replies, json=reply, headers={"Idempotency-Key": "run-1"})
    again = http.post(replies, json=reply, headers={"Idempotency-Key": "run-1"})
    reused = http.post(replies, json={**reply, "body": "other"}, headers={"Idempotency-Key": "run-1"})
    invalid = http.post(replies, json={"to": "ada@example.com"})

    assert first.status_code == 201
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert reused.status_code == 422
    assert invalid.status_code == 400
    listed = http.get(replies).json()["replies"]
    assert [r["reply_id"] for r in listed] == [first.json()["reply_id"]]
