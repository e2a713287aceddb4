"""The API Gateway emulation: routing, the proxy event, the proxy response, and the HTTP server."""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
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
    assert "RuntimeError: boom" in crash.getMessage() and "Traceback" in crash.getMessage()
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


# -- what the server refuses itself, over raw sockets ---------------------------------------------------------------


def _raw(gateway: Gateway, data: bytes, *, half_close: bool = True) -> bytes:
    """Send ``data`` on a fresh connection and read the answer until the server closes it (5 s at most:
    a hang fails the test)."""
    with socket.create_connection((gateway.host, gateway.port), timeout=5) as conn:
        conn.sendall(data)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        return received


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:100]
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "TRACE", "CONNECT", "M-SEARCH", "G\x01T"])
def test_a_method_without_a_route_is_405_with_allow_on_a_known_resource_and_404_elsewhere(
        served: Served, method: str) -> None:
    gateway, fake = served

    known = _raw(gateway, f"{method} /echo/x HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    unknown = _raw(gateway, f"{method} /nope HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    assert _status(known) == 405 and b"\r\nAllow: GET, HEAD\r\n" in known
    assert _status(unknown) == 404
    assert fake.events == []


@pytest.mark.parametrize("headers", [
    "Content-Length: abc", "Content-Length: -1", "Content-Length: +5", "Content-Length: 5, 6",
    "Content-Length: 5\r\nContent-Length: 6", "Content-Length: 99999999999999999999",
    "Transfer-Encoding: gzip", "Transfer-Encoding: chunked\r\nContent-Length: 5",
], ids=["letters", "negative", "plus", "list", "two", "huge-digits", "gzip", "both"])
def test_a_body_framing_that_cannot_be_read_is_answered_400_not_a_dropped_connection(
        served: Served, headers: str) -> None:
    gateway, fake = served

    answer = _raw(gateway, f"POST /hooks/form HTTP/1.1\r\nHost: x\r\n{headers}\r\n\r\nhello".encode())

    assert _status(answer) == 400
    assert answer.endswith(b'{"message": "Bad Request"}')
    assert fake.events == []


@pytest.mark.parametrize("body", [b"zz\r\nhello\r\n0\r\n\r\n", b"-5\r\nhello\r\n0\r\n\r\n", b"5\r\nhel",
                                  b"5\r\nhelloXX0\r\n\r\n", b"5\r\nhello\r\n0\r\n", b"1" * 2000 + b"\r\n"],
                         ids=["not-hex", "negative", "cut-off", "no-crlf", "no-end", "size-line-too-long"])
def test_a_malformed_chunked_body_is_answered_400(served: Served, body: bytes) -> None:
    gateway, fake = served

    answer = _raw(gateway, b"POST /hooks/form HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)

    assert _status(answer) == 400
    assert fake.events == []


def test_a_well_formed_chunked_body_still_reaches_the_function(served: Served) -> None:
    gateway, fake = served

    answer = _raw(gateway, b"POST /hooks/form HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")

    assert _status(answer) == 200
    assert fake.events[-1][1]["body"] == "hello world"


def test_a_body_shorter_than_its_content_length_is_400_and_a_huge_one_413(served: Served) -> None:
    gateway, fake = served

    short = _raw(gateway, b"POST /hooks/form HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nhello")
    huge = _raw(gateway, b"POST /hooks/form HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nhello")

    assert (_status(short), _status(huge)) == (400, 413)
    assert fake.events == []


@pytest.mark.parametrize("line", [b"GET /\r\n", b"GET /approvals/tok-SECRET\r\n", b"POST /hooks/form\r\n"])
def test_an_http_09_request_line_is_answered_400_at_once_not_left_hanging(served: Served, line: bytes) -> None:
    gateway, _ = served

    answer = _raw(gateway, line, half_close=False)  # a 0.9 client sends nothing more, and waits

    assert answer.startswith(b"HTTP/1.0 400 ")


@pytest.mark.parametrize("line", [b"GET / HTTP/2.0\r\n\r\n", b"GET / HTTP/1.x\r\n\r\n", b"GET / HTTP/1.1 x\r\n\r\n",
                                  b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"],
                         ids=["http2", "bad-version", "four-words", "too-long"])
def test_an_unreadable_request_line_is_a_4xx_never_a_5xx(served: Served, line: bytes) -> None:
    gateway, _ = served

    assert 400 <= _status(_raw(gateway, line)) < 500


# -- the console ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "PUT /approvals/tok-SECRET-1", "DELETE /approvals/tok-SECRET-1", "OPTIONS /approvals/tok-SECRET-1",
    "FOO /approvals/tok-SECRET-1", "GET /approvals/tok-SECRET-1/x", "POST /approvals/tok-SECRET-1/x/y?z=SECRET",
    "GET /APPROVALS/tok-SECRET-1", "GET //approvals//tok-SECRET-1", "GET /approvals%2Ftok-SECRET-1",
    "GET /%61pprovals/tok-SECRET-1", "GET /approvals;x/tok-SECRET-1", "GET /approvals?tok-SECRET-1",
    "GET http://x/approvals/tok-SECRET-1",
])
def test_the_console_never_shows_an_approval_token_whatever_the_method_or_shape(
        http: httpx.Client, caplog, target: str) -> None:
    from interlock.topology import TOPOLOGY

    gateway = Gateway(TOPOLOGY, port=0)
    gateway.start(FakeFunctions().invoke)
    try:
        with caplog.at_level(logging.DEBUG, logger="localcloud.gateway"):
            answer = _raw(gateway, f"{target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    finally:
        gateway.stop()

    assert _status(answer) < 500
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/approvals/…" in logged or "/APPROVALS" not in logged
    assert "SECRET" not in logged


def test_the_console_shows_what_an_outsider_sent_escaped_never_raw(served: Served, caplog) -> None:
    gateway, _ = served

    with caplog.at_level(logging.DEBUG, logger="localcloud.gateway"):
        _raw(gateway, b"GET /echo/%1b[2Jhi\x1b[31m?q%0d%0a=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        _raw(gateway, b"G\x1bT\x7f /nope HTTP/1.1\r\nHost: x\r\n\r\n")

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "\\x1b[31m" in logged and "\\x1bT\\x7f /nope" in logged
    assert not any((ord(c) < 0x20 and c != "\n") or ord(c) == 0x7f for c in logged)


def test_the_server_keeps_a_backlog_for_connections_made_while_the_runtime_boots(topology: Topology) -> None:
    gateway = Gateway(topology, port=0)  # bound, not yet serving: the runtime is still starting the cloud
    try:
        conns = [socket.create_connection((gateway.host, gateway.port), timeout=5) for _ in range(20)]
        for conn in conns:
            conn.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        gateway.start(FakeFunctions().invoke)
        answers = [conn.recv(100) for conn in conns]
    finally:
        gateway.stop()
    assert all(answer.startswith(b"HTTP/1.1 404") for answer in answers)


def test_a_client_resetting_its_kept_connection_prints_no_traceback(served: Served, capfd) -> None:
    import struct

    gateway, _ = served
    for _ in range(3):
        conn = socket.create_connection((gateway.host, gateway.port), timeout=5)
        conn.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 404")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        conn.close()
    time.sleep(0.3)  # the server's thread reading the next request meets the reset
    assert "Traceback" not in capfd.readouterr().err


def test_a_connection_is_kept_for_the_clients_next_request_and_a_1_0_clients_is_closed(served: Served) -> None:
    gateway, _ = served
    with socket.create_connection((gateway.host, gateway.port), timeout=5) as conn:
        conn.sendall(b"GET /nope/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /nope/2 HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while received.count(b"HTTP/1.1 404") < 2:
            chunk = conn.recv(4096)
            assert chunk, "the connection was closed after the first answer"
            received += chunk
    with socket.create_connection((gateway.host, gateway.port), timeout=5) as conn:
        conn.sendall(b"GET /nope HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := conn.recv(4096):  # read to the close
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 404") and answer.endswith(b"}")


def test_a_requests_console_line_is_written_before_its_answer(served: Served, http: httpx.Client, caplog) -> None:
    # whoever holds the answer (a test, an operator's second terminal) finds its line: none is missed
    gateway, _ = served
    seen: list[bool] = []
    with caplog.at_level(logging.INFO, logger="localcloud.gateway"):
        for n in range(200):
            assert http.get(f"{gateway.url}/nope/{n}").status_code == 404  # read to its Content-Length, not the close
            seen.append(any(f"/nope/{n} -> 404" in r.getMessage() for r in caplog.records))
    assert all(seen), f"{seen.count(False)} of {len(seen)} lines came after their answer"
