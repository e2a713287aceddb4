"""Malformed requests to every route of the topology, through the local runtime over real HTTP and raw sockets.

Seeded and bounded (``SEED``, a few hundred requests): each run sends the same requests. Whatever is sent,
the answer is a status below 500, it comes without the client having to give up (every socket has a
timeout), and a refused webhook leaves nothing behind (the run its event would have had does not exist).
The limits themselves are in docs/input-limits.md.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from interlock.models import run_id_for
from interlock.topology import TOPOLOGY

from tests.e2e.conftest import Runtime, plugin, scheme_of

pytestmark = pytest.mark.e2e

SEED = 20261201
CASES_PER_SOURCE = 20
TIMEOUT = 10.0  # a socket that waits longer than this is a hang

SOURCES = [source.name for source in TOPOLOGY.webhook_sources]
ROUTES = {(route.method, route.path) for route in TOPOLOGY.routes}
ODD_METHODS = ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "M-SEARCH"]


@dataclass
class Case:
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None  # the run the event would have had, were it accepted
    what: str = ""


# -- bodies ---------------------------------------------------------------------------------------------------


def sample(source: str) -> bytes:
    from interlock import cli

    scheme = scheme_of(source)
    name = "support_ticket" if scheme == "standard-webhooks" else scheme
    return bytes(cli._scheme_samples(scheme)[name].read_bytes())


def _with_id(source: str, body: Any, event_id: str) -> tuple[Any, str]:
    """The sample with a fresh provider id, and the dedupe id the ingest would give its event."""
    if source == "stripe":
        body["id"] = f"evt_{event_id}"
        return body, f"evt_{event_id}"
    if source == "slack":
        body["event_id"] = f"Ev{event_id}"
        return body, f"Ev{event_id}"
    if source == "whatsapp":
        body["entry"][0]["changes"] = body["entry"][0]["changes"][:1]
        body["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.{event_id}"
        return body, f"wamid.{event_id}"
    if source == "hubspot":
        element = {**body[0], "eventId": event_id}
        return [element], f"{element['portalId']}:{element['subscriptionId']}:{event_id}"
    return body, event_id  # form and github: the id travels in a header


def _poison(rng: random.Random, text: str, event_id: str) -> tuple[str, str]:
    """A JSON text made malformed in one of the ways a fuzzer finds, and what was done."""
    kind = rng.choice(["deep-array", "deep-object", "surrogate", "surrogate-key", "truncated", "long-id",
                       "not-an-object", "nul", "huge-number", "control"])
    if kind == "deep-array":
        return text[:-1] + ', "deep": ' + "[" * 5000 + "]" * 5000 + text[-1:], kind
    if kind == "deep-object":
        depth = rng.randint(65, 3000)
        return text[:-1] + ', "deep": ' + '{"a":' * depth + "1" + "}" * depth + text[-1:], kind
    if kind == "surrogate":
        return text[:-1] + ', "note": "\\ud800"' + text[-1:], kind
    if kind == "surrogate-key":
        return text[:-1] + ', "\\udfff": 1' + text[-1:], kind
    if kind == "truncated":
        return text[: rng.randint(1, max(1, len(text) - 1))], kind
    if kind == "long-id":
        return text.replace(event_id, event_id + "x" * rng.randint(300, 3000)), kind
    if kind == "not-an-object":
        return rng.choice(['"just a string"', "42", "null", "[]", "[1,2]", "{}"]), kind
    if kind == "nul":
        return text.replace(event_id, event_id + "\\u0000"), kind
    if kind == "huge-number":
        return text[:-1] + ', "n": ' + "9" * 5000 + text[-1:], kind
    return text.replace(event_id, event_id + "\\u001b[2J"), kind


def _signed(runtime: Runtime, source: str, body: bytes, event_id: str) -> dict[str, str]:
    endpoint = f"{runtime.url}/webhooks/{source}"
    secret = runtime.secrets(source).signing[0]
    if source == "github":  # its sender_headers reads the body to name the event: not for a poisoned one
        module = plugin(source)
        return {"X-Hub-Signature-256": module.signature(secret, body), "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": event_id, "Content-Type": "application/json"}
    headers = plugin(source).sender_headers(secret, body, now=int(time.time()), event_id=event_id, url=endpoint)
    return {"Content-Type": "application/json", **headers}


def _break_signature(rng: random.Random, headers: dict[str, str]) -> tuple[dict[str, str], str]:
    """Headers whose signature or timestamp cannot verify, in one of the ways a fuzzer finds."""
    broken = dict(headers)
    names = {k.lower(): k for k in broken}
    kind = rng.choice(["drop", "garble", "timestamp", "stripe-t", "huge"])
    signature = next((names[n] for n in names if "signature" in n and "version" not in n), None)
    timestamp = next((names[n] for n in names if "timestamp" in n), None)
    if kind == "drop" and signature:
        del broken[signature]
    elif kind == "garble" and signature:
        broken[signature] = rng.choice(["", "v1,", "sha256=zz", "v0=" + "g" * 64, "t=,v1=", "\x7f\x01", "x" * 5000])
    elif kind == "timestamp" and timestamp:
        broken[timestamp] = rng.choice(["abc", "-1", "1e9", "+1700000000", " 17", "1_700_000_000", "9" * 40, ""])
    elif kind == "stripe-t" and "stripe-signature" in names:
        broken[names["stripe-signature"]] = rng.choice(["t=abc,v1=00", "t=-5,v1=00", "t=" + "9" * 30 + ",v1=00",
                                                        "v1=00", "t=1,t=2"])
    else:
        broken[signature or "X-Nothing"] = "0" * rng.randint(0, 300)
    return broken, kind


def webhook_cases(runtime: Runtime, rng: random.Random) -> list[Case]:
    cases: list[Case] = []
    for source in SOURCES:
        for n in range(CASES_PER_SOURCE):
            fresh = f"fuzz{SEED}x{source}x{n}x{rng.randrange(10**9)}"
            event_id = (f"{rng.randrange(10**9)}" if source == "hubspot"
                        else f"7d1c0b52-{rng.randrange(10**4):04d}-4f4c-9a53-0c3f6a1f2b7d" if source == "github"
                        else fresh)
            body, dedupe_id = _with_id(source, json.loads(sample(source)), event_id)
            text, poison = _poison(rng, json.dumps(body), event_id)
            raw = text.encode("utf-8", "surrogatepass")
            if rng.random() < 0.15:
                raw = raw[: len(raw) // 2] + b"\xff\xfe\xc3" + raw[len(raw) // 2:]
                poison += "+not-utf8"
            header_id = event_id
            if source in ("form", "github") and poison in ("long-id", "nul", "control"):
                # these ids travel in a header (which can hold no control character): one past the limit
                header_id = dedupe_id = event_id + "x" * rng.randint(300, 3000)
                poison = "long-id-header"
            headers = _signed(runtime, source, raw, header_id)
            what = f"{source} signed {poison}"
            if rng.random() < 0.35:
                headers, broke = _break_signature(rng, headers)
                what = f"{source} {broke} signature {poison}"
            method = "POST" if rng.random() < 0.85 else rng.choice(["GET", *ODD_METHODS])
            cases.append(Case(method, f"/webhooks/{source}", raw, headers,
                              run_id_for(f"{source}:{dedupe_id}"), what + f" {method}"))
        # ids in headers, past a key's length
        long_id = "m" * rng.randint(2049, 4000)
        body = json.dumps(json.loads(sample(source))).encode()
        if source in ("form", "github"):
            cases.append(Case("POST", f"/webhooks/{source}", body, _signed(runtime, source, body, long_id),
                              run_id_for(f"{source}:{long_id}"), f"{source} id header past the key limit"))
    return cases


def other_cases(rng: random.Random) -> list[Case]:
    cases: list[Case] = []
    for _ in range(40):
        run_id = rng.choice(["x" * rng.randint(2049, 5000), "%00", "..%2F..%2Fetc", "%ff%fe", "a%0d%0ab",
                             quote("é" * 1500), "%1b[2J", str(rng.random()), "%ud800"])
        cases.append(Case(rng.choice(["GET", "GET", "HEAD", *ODD_METHODS]), f"/runs/{run_id}", what="runs"))
    for _ in range(40):  # a run's kept event, its event stream and its replay: ids no run can have, UUIDs of no run
        unknown = str(uuid.UUID(int=rng.getrandbits(128)))
        run_id = rng.choice(["x" * rng.randint(2049, 5000), "%00", "%ff%fe", "a%0d%0ab", "%1b[2J", "%ud800",
                             unknown, unknown.upper()])
        tail, methods = rng.choice([("event", ["GET", "GET", "HEAD", *ODD_METHODS]),
                                    ("events", ["GET", "GET", "HEAD", *ODD_METHODS]),
                                    ("replay", ["POST", "POST", "GET", *ODD_METHODS]),
                                    ("approvals/resend", ["POST", "POST", "GET", *ODD_METHODS])])
        body = rng.choice([b"", b"{}", b"\xff\xfe", b"[" * 5000, b"x" * 70_000])
        cursor = rng.choice(["", "1", "x" * 3000, "../../etc", "00000000000000000000#zz", "%00"])
        cases.append(Case(rng.choice(methods), f"/runs/{run_id}/{tail}" + (f"?after={cursor}" if cursor else ""),
                          body, {"Last-Event-ID": rng.choice(["", "' OR 1=1", "9" * 21])} if tail == "events" else {},
                          what=f"runs {tail}"))
    values = ["", "failed", "failed,", ",", "%00", "%ff%fe", "x" * 5000, "%1b[2J", "2026-13-45", "9" * 30, "-1", "0",
              "1e9", "²", "' OR 1=1", "ZmFrZQ", "eyJwIjogMX0",
              "eyJwIjoiMjAyNi0wMS0wMVQwMDowMDowMC4wMDAwMDBaIiwiZiI6IngifQ",
              "2026-12-01", "2026-12-01T00:00:00Z", "%ud800", "a%0d%0ab"]
    names = ["status", "workflow", "source", "since", "until", "q", "limit", "order", "cursor", "x", "%00", ""]
    for _ in range(80):  # the operator's lists: every parameter, with values no one should send
        path = rng.choice(["/runs", "/approvals"])
        query = "&".join(f"{rng.choice(names)}={rng.choice(values)}" for _ in range(rng.randint(0, 4)))
        cases.append(Case(rng.choice(["GET", "GET", "GET", "HEAD", *ODD_METHODS]),
                          path + (f"?{query}" if query else ""), what=f"list {path}"))
    redrives = [b"", b"{}", b"\xff\xfe", b"[" * 5000, b"x" * 70_000, b'{"dry_run": "false"}', b'{"limit": 1e400}',
                b'{"limit": -1}', b'{"dry_run": true, "limit": 101}', b'{"dry_run": null}', b"null", b'"x"',
                b'{"dry_run": true, "x": 1}', b'{"limit": 99999999999999999999999}']
    for _ in range(40):  # the DLQs and their redrive (only ever a dry run or a refusal: the runtime is shared)
        name = rng.choice(["ingest", "ingest-dlq", "nope", "%00", "%ff%fe", "x" * rng.randint(2049, 5000), "%1b[2J",
                           "..%2F..", "a%0d%0ab"])
        path = rng.choice(["/dlqs", f"/dlqs/{name}/redrive", f"/dlqs/{name}", "/dlqs/"])
        cases.append(Case(rng.choice(["GET", "POST", "POST", "HEAD", *ODD_METHODS]), path, rng.choice(redrives),
                          {"Content-Type": rng.choice(["application/json", "text/plain", ""])}, what="dlqs"))
    forms = [b"decision=approve", b"decision=reject", b"\xff\xfe", b"decision=%ff", b"decision=approve&decision=reject",
             b"decision=" + b"a" * 20_000, b"&" * 3000, b"decision", b"%", b"=" * 100, b"decision=approve\x00"]
    for _ in range(60):
        token = rng.choice(["B" * 43, "x" * rng.randint(2049, 5000), "%00", "%ff", "tok/extra", "a%2Fb",
                            base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")])
        method = rng.choice(["GET", "HEAD", "POST", "POST", "POST", *ODD_METHODS])
        body = rng.choice(forms) if method in ("POST", "PUT", "PATCH") else b""
        content_type = rng.choice(["application/x-www-form-urlencoded", "text/plain", "application/json", ""])
        cases.append(Case(method, f"/approvals/{token}", body, {"Content-Type": content_type} if content_type else {},
                          what="approvals"))
    handoff_forms = [b"action=reply", b"action=hand_back", b"action=reply&form_id=" + b"A" * 30 + b"&text=hi",
                     b"action=reply&form_id=" + b"A" * 30 + b"&text=" + b"%F0%9F%98%80" * 6000, b"action=%ff",
                     b"action=reply&action=hand_back", b"\xff\xfe", b"&" * 3000, b"text=" + b"a" * 70_000, b"%"]
    for _ in range(60):  # the hand-off page: tokens of no link, and forms it never renders
        token = rng.choice(["B" * 43, "x" * rng.randint(2049, 5000), "%00", "%ff", "tok/extra", "a%2Fb",
                            base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")])
        method = rng.choice(["GET", "HEAD", "POST", "POST", "POST", *ODD_METHODS])
        body = rng.choice(handoff_forms) if method in ("POST", "PUT", "PATCH") else b""
        content_type = rng.choice(["application/x-www-form-urlencoded", "text/plain", ""])
        cases.append(Case(method, f"/handoffs/{token}", body, {"Content-Type": content_type} if content_type else {},
                          what="handoffs"))
    unknown_run = str(uuid.UUID(int=rng.getrandbits(128)))
    json_routes = [("POST", "/dlqs/ingest/redrive"), ("POST", f"/runs/{unknown_run}/approvals/resend"),
                   ("POST", f"/runs/{unknown_run}/replay"), *LOCAL_JSON_ROUTES]
    for method, path in json_routes:  # every route that reads JSON, with each body no JSON reader may choke on
        for body in BAD_JSON:
            cases.append(Case(method, path, body, {"Content-Type": "application/json"}, what=f"json {path}"))
    return cases


# Bodies that parse badly in ways a plain ``json.loads`` does not turn into a ValueError (nesting past the
# interpreter's recursion limit), or that parse but cannot be stored (a lone surrogate), or are not text.
BAD_JSON = [b"[" * 5000 + b"]" * 5000, b'{"a": ' * 5000 + b"1" + b"}" * 5000, b'{"body": "\\ud800"}',
            b'{"\\udfff": 1}', b"\xff\xfe{}", b"\xef\xbb\xbf{", b"1e400", b"NaN", b"[1, 2"]
# The local runtime's own endpoints that read a JSON body (its rehearsal endpoints and the fakes' switches).
LOCAL_JSON_ROUTES = [("POST", "/_local/queues/ingest-dlq/messages"), ("POST", "/_local/scheduler/advance"),
                     ("POST", "/_local/scheduler/trigger"), ("PUT", "/_local/tables/conversations/items"),
                     ("PATCH", "/_local/tables/conversations/items"), ("POST", "/_local/crm/outage"),
                     ("POST", "/_local/erp/outage"), ("POST", "/_local/enrichment/outage"),
                     ("POST", "/_local/slack/ratelimit")]


RAW = [
    b"POST /webhooks/form HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /webhooks/form HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
    b"POST /webhooks/form HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n{}",
    b"POST /webhooks/form HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}",
    b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /webhooks/slack HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}",
    b"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}",
    b"POST /approvals/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /approvals/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\xff\xfe\xfd",
    b"GET /\r\n",
    b"GET /runs/x\r\n",
    b"GET /approvals/abc HTTP/2.0\r\n\r\n",
    b"GET /approvals/abc HTTP/1.x\r\n\r\n",
    b"GET /webhooks/whatsapp?hub.mode=subscribe&hub.challenge=%ff&hub.verify_token=%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"FOO /webhooks/form HTTP/1.1\r\nHost: x\r\n\r\n",
    b"G\x1bT /runs/x HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /runs/" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    b"GET /runs/x HTTP/1.1\r\n" + b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n",
    b"GET /runs/x HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
    b"\r\n\r\n",
]


def _raw(runtime: Runtime, data: bytes) -> bytes:
    parts = urlsplit(runtime.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as conn:
        conn.sendall(data)
        if b" HTTP/" in data.split(b"\n", 1)[0]:
            conn.shutdown(socket.SHUT_WR)  # all sent; but an HTTP/0.9 client just waits for the answer
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


def test_malformed_requests_to_every_route_get_a_4xx_in_time_and_leave_nothing_behind(runtime: Runtime) -> None:
    # Every event id is fresh, so the runtime shared with the other tests serves: a run that exists for one
    # of them was made by this test.
    fuzzed = runtime
    log_start = fuzzed.log_path.stat().st_size
    rng = random.Random(SEED)
    cases = webhook_cases(fuzzed, rng) + other_cases(rng)
    rng.shuffle(cases)
    covered = {("webhook", c.path) for c in cases if c.path.startswith("/webhooks/")}
    assert covered == {("webhook", f"/webhooks/{s}") for s in SOURCES}
    # /uploads is fuzzed by test_uploads.py (its requests are signed, its URLs presigned)
    assert {path for _, path in ROUTES} == {"/webhooks/{source}", "/runs", "/approvals", "/runs/{run_id}",
                                            "/runs/{run_id}/event",
                                            "/runs/{run_id}/events", "/runs/{run_id}/replay", "/approvals/{token}",
                                            "/runs/{run_id}/approvals/resend",
                                            "/handoffs/{token}", "/uploads", "/dlqs", "/dlqs/{name}/redrive"}

    failures: list[str] = []
    refused: list[Case] = []
    with httpx.Client(timeout=TIMEOUT) as client:
        for case in cases:
            try:
                response = client.request(case.method, fuzzed.url + case.path, content=case.body, headers=case.headers)
            except httpx.TimeoutException:
                failures.append(f"no answer within {TIMEOUT}s: {case.what} {case.method} {case.path[:80]}")
                continue
            if response.status_code >= 500:
                failures.append(f"{response.status_code}: {case.what} {case.method} {case.path[:80]}: "
                                f"{response.text[:120]!r}")
            elif response.status_code >= 400 and case.run_id:
                refused.append(case)
        for data in RAW:
            try:
                answer = _raw(fuzzed, data)
            except TimeoutError:
                failures.append(f"no answer within {TIMEOUT}s: raw {data[:60]!r}")
                continue
            if (data.strip() and not answer.startswith(b"HTTP/1.")) or answer[9:10] == b"5":
                failures.append(f"raw {data[:60]!r} answered {answer[:80]!r}")
        for case in refused:
            stored = client.get(f"{fuzzed.url}/runs/{case.run_id}")
            if stored.status_code != 404:
                failures.append(f"refused but stored ({stored.status_code}): {case.what}")

    assert not failures, "\n".join(failures[:40]) + f"\n...{len(failures)} in all\n{fuzzed.log_tail()}"
    assert len(refused) > len(SOURCES) * CASES_PER_SOURCE // 2  # most webhook cases are refusals to check
    with fuzzed.log_path.open("rb") as log:
        log.seek(log_start)
        assert b"\x1b" not in log.read()  # nothing an outsider sent reached the console raw
