"""The ingest reads API Gateway's event and writes its answer itself, as Powertools' ``APIGatewayRestResolver`` did.

It stopped importing ``aws_lambda_powertools.event_handler`` for its cold start (docs/cold-start.md). Each case
goes through both: the ingest's ``receive`` and a resolver with the routes and the route body the ingest had
before, and they must give the same request to the service and the same answer back.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from typing import Any

import http_webhook
import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from interlock.http import NO_STORE, json_response, lower_headers
from interlock.ingest.service import Outcome, RawRequest


class FakeService:
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.requests: list[RawRequest] = []
        self.deadlines: list[float | None] = []

    def accept(self, request: RawRequest, deadline: float | None = None) -> Outcome:
        self.requests.append(request)
        self.deadlines.append(deadline)
        return self.outcome


def through_the_resolver(event: dict[str, Any], outcome: Outcome) -> tuple[dict[str, Any], list[RawRequest]]:
    """What the ingest answered on APIGatewayRestResolver (its route body before, the service faked)."""
    app = APIGatewayRestResolver()
    service = FakeService(outcome)

    @app.post("/webhooks/<source>")
    @app.get("/webhooks/<source>")
    def receive(source: str) -> Response:
        current = app.current_event
        done = service.accept(RawRequest(
            source=source, headers=lower_headers(current.headers), body=current.body,
            is_base64=bool(current.is_base64_encoded), method=current.http_method,
            query=dict(current.query_string_parameters or {}), path=current.path))
        if isinstance(done.body, str):
            return Response(status_code=done.status, content_type=done.content_type, body=done.body,
                            headers=NO_STORE)
        return json_response(done.status, done.body)

    return app.resolve(event, None), service.requests  # type: ignore[arg-type]


def through_the_ingest(event: dict[str, Any], outcome: Outcome, monkeypatch) -> tuple[dict[str, Any], list[RawRequest]]:
    service = FakeService(outcome)
    monkeypatch.setattr(http_webhook, "ingest_service", lambda: service)
    return http_webhook.receive(event, None), service.requests


def event(method: str = "POST", path: str = "/webhooks/form", **extra: Any) -> dict[str, Any]:
    return {"resource": "/webhooks/{source}", "path": path, "httpMethod": method,
            "headers": {"Content-Type": "application/json", "X-Signature": "v1,abc"},
            "multiValueHeaders": {"Content-Type": ["application/json"], "X-Signature": ["v1,abc"]},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": {"source": path.rsplit("/", 1)[-1]}, "body": '{"a": 1}', "isBase64Encoded": False,
            "requestContext": {"stage": "prod", "requestId": "r-1", "path": f"/prod{path}"}, **extra}


ACCEPTED = Outcome(202, {"run_id": "run_1", "received": "2024-05-01T12:00:00Z"})
CHALLENGE = Outcome(200, "1158201444", "text/plain; charset=utf-8")

CASES = {
    "accepted": (event(), ACCEPTED),
    "text answer": (event("GET", queryStringParameters={"hub.challenge": "1158201444", "hub.mode": "subscribe"}),
                    CHALLENGE),
    "lowercase method": (event("post"), ACCEPTED),
    "refused": (event(), Outcome(401, {"error": "missing_headers", "message": "no signature"})),
    "null headers": (event(headers=None, multiValueHeaders=None), ACCEPTED),
    "mixed-case headers": (event(headers={"X-HUB-Signature": "a", "x-hub-signature": "b"}), ACCEPTED),
    "base64 body": (event(body=base64.b64encode(b"\x00\xff").decode(), isBase64Encoded=True), ACCEPTED),
    "no body": (event(body=None), ACCEPTED),
    "odd source": (event(path="/webhooks/a b~!$&'()*+,;=:@%<>[]{}|^é"), ACCEPTED),
    "trailing newline": (event(path="/webhooks/form\n"), ACCEPTED),
    "other method": (event("PUT"), ACCEPTED),
    "deeper path": (event(path="/webhooks/form/more"), ACCEPTED),
    "no source": (event(path="/webhooks/"), ACCEPTED),
    "other path": (event(path="/runs/abc"), ACCEPTED),
    "body with a non-JSON-native value": (event(), Outcome(503, {"error": "unavailable", "at": object.__name__})),
}


@pytest.mark.parametrize("case", list(CASES))
def test_given_an_event_then_the_ingest_sends_the_same_request_and_answer_as_the_resolver(case, monkeypatch) -> None:
    incoming, outcome = CASES[case]

    ours, our_requests = through_the_ingest(json.loads(json.dumps(incoming)), outcome, monkeypatch)
    theirs, their_requests = through_the_resolver(json.loads(json.dumps(incoming)), outcome)

    assert our_requests == their_requests
    assert ours == theirs
    assert json.loads(json.dumps(ours)) == ours  # plain JSON, as Lambda serialises it


def test_given_a_served_route_then_the_service_gets_the_source_and_a_deadline_from_the_context(monkeypatch) -> None:
    service = FakeService(ACCEPTED)
    monkeypatch.setattr(http_webhook, "ingest_service", lambda: service)

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 5_000

    answer = http_webhook.receive(event(path="/webhooks/stripe"), Context())

    assert answer["statusCode"] == 202
    assert [r.source for r in service.requests] == ["stripe"]
    assert service.deadlines[0] is not None and service.deadlines[0] > time.monotonic() + 4


def test_given_the_ingest_handler_module_when_imported_then_powertools_event_handler_is_not() -> None:
    code = ("import sys, http_webhook; "
            "print(sorted(m for m in sys.modules if m.startswith('aws_lambda_powertools.event_handler')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                          env={"PATH": "", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
                               "PYTHONPATH": ":".join(sys.path)})
    assert done.stdout.strip() == "[]"
