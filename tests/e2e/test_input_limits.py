"""Each input limit of docs/input-limits.md, over real HTTP (and raw sockets) through the local runtime."""

from __future__ import annotations

import json
import socket
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from interlock.models import run_id_for

from tests.e2e.conftest import LOW_RISK, Runtime

pytestmark = pytest.mark.e2e


def _raw(runtime: Runtime, data: bytes, *, half_close: bool = True) -> bytes:
    parts = urlsplit(runtime.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(data)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        return received


def test_a_webhook_id_too_long_for_a_key_is_400_and_no_run(runtime: Runtime) -> None:
    msg_id = "msg_" + "x" * 3000

    response = runtime.send(LOW_RISK, msg_id=msg_id)

    assert (response.status_code, response.json()["error"]) == (400, "invalid_payload")
    assert httpx.get(f"{runtime.url}/runs/{run_id_for('form:' + msg_id)}", timeout=10).status_code == 404


@pytest.mark.parametrize(("body", "says"), [
    (b'{"type": "support.ticket", "data": {"deep": ' + b"[" * 20_000 + b"]" * 20_000 + b"}}", "nested"),
    (b'{"type": "support.ticket", "data": ' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}", "nested"),
    (b'{"type": "support.ticket", "data": {"subject": "\\ud800", "body": "x", "customer_email": "a@b.co"}}',
     "surrogate"),
], ids=["deep-arrays", "deep-objects", "lone-surrogate"])
def test_a_signed_body_nested_too_deep_or_with_a_lone_surrogate_is_400_and_no_run(runtime: Runtime, body: bytes,
                                                                                   says: str) -> None:
    msg_id = f"msg_{uuid.uuid4().hex}"

    response = runtime.send(body, msg_id=msg_id)

    assert response.status_code == 400 and says in response.json()["message"]
    assert httpx.get(f"{runtime.url}/runs/{run_id_for('form:' + msg_id)}", timeout=10).status_code == 404


@pytest.mark.parametrize("timestamp", ["abc", "-1", "1e9", "9" * 40])
def test_a_timestamp_that_is_not_a_number_is_401_not_a_traceback(runtime: Runtime, timestamp: str) -> None:
    body = json.dumps(LOW_RISK).encode()
    response = runtime.send(body, headers={"webhook-timestamp": timestamp})

    assert (response.status_code, response.json()["error"]) == (401, "invalid_signature")


@pytest.mark.parametrize("body", [b"\xff\xfe", b"decision=approve&decision=reject", b"decision=" + b"a" * 10_000])
def test_an_approval_form_that_is_not_the_pages_form_is_400_with_its_page(runtime: Runtime, body: bytes) -> None:
    response = httpx.post(f"{runtime.url}/approvals/{'B' * 43}", content=body, timeout=10,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "PUT", "DELETE"])
def test_a_method_without_a_route_is_405_with_allow(runtime: Runtime, method: str) -> None:
    response = httpx.request(method, f"{runtime.url}/approvals/{'B' * 43}", timeout=10)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, POST"


@pytest.mark.parametrize("request_bytes", [
    b"POST /webhooks/form HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /webhooks/form HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n{}",
    b"POST /webhooks/form HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
], ids=["letters", "negative", "bad-chunk"])
def test_unreadable_body_framing_is_answered_400(runtime: Runtime, request_bytes: bytes) -> None:
    assert _raw(runtime, request_bytes).startswith(b"HTTP/1.1 400 ")


def test_an_http_09_request_is_answered_400_at_once(runtime: Runtime) -> None:
    assert _raw(runtime, b"GET /runs/x\r\n", half_close=False).startswith(b"HTTP/1.0 400 ")


def test_the_console_hides_an_approval_token_for_every_method_and_sub_path(runtime: Runtime) -> None:
    token = "tok" + uuid.uuid4().hex
    start = runtime.log_path.stat().st_size
    for method, path in [("PUT", token), ("DELETE", token), ("OPTIONS", token), ("GET", f"{token}/x"),
                         ("POST", f"{token}/x?next={token}")]:
        httpx.request(method, f"{runtime.url}/approvals/{path}", timeout=10)
    httpx.get(f"{runtime.url}/runs/after-{token[:6]}", timeout=10)  # the last line, so the others are written

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and f"after-{token[:6]}" not in runtime.log_path.read_text(errors="replace"):
        time.sleep(0.1)
    with runtime.log_path.open("rb") as log:
        log.seek(start)
        written = log.read().decode(errors="replace")
    assert written.count("/approvals/…") >= 5
    assert token not in written
