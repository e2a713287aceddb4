"""POST /webhooks/hubspot through the real handler (API Gateway REST events), against moto DynamoDB, SQS and
Secrets Manager: HubSpot's v3 signature over the public URL, batches split into events, dedupe, refusals."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import http_webhook
import pytest
from interlock.models import Envelope, run_id_for
from interlock.timeline import DynamoTimelineStore
from interlock.webhooks.sources.hubspot import sender_headers, sign_v1, sign_v2, sign_v3

from integration.support import TABLE_NAME, rest_event

BASE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
URL = f"{BASE_URL}/webhooks/hubspot"
SECRET = "3c1b7d3e-5b2a-4f7e-9a41-0d6c2f8e1a77"

EVENTS = [
    {"eventId": 3816279340, "subscriptionId": 2912540, "portalId": 62515, "appId": 1160452,
     "occurredAt": 1736933400000, "subscriptionType": "contact.creation", "attemptNumber": 0,
     "objectId": 95001234501, "changeFlag": "CREATED", "changeSource": "CRM_UI", "sourceId": "userId:4719382"},
    {"eventId": 1942118672, "subscriptionId": 2912541, "portalId": 62515, "appId": 1160452,
     "occurredAt": 1736933462000, "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
     "objectId": 95001234501, "propertyName": "lifecyclestage", "propertyValue": "marketingqualifiedlead",
     "changeSource": "CRM_UI", "sourceId": "userId:4719382"},
]
BODY = json.dumps(EVENTS, separators=(",", ":")).encode()
IDS = ["62515:2912540:3816279340", "62515:2912541:1942118672"]


@pytest.fixture
def hubspot(cloud, put_secret, monkeypatch) -> str:
    """HubSpot enabled, the API's public base URL configured, the app's client secret stored."""
    monkeypatch.setenv("INTERLOCK_ENABLED_SOURCES", "form,hubspot")
    monkeypatch.setenv("INTERLOCK_PUBLIC_BASE_URL", BASE_URL)
    put_secret("hubspot", SECRET)
    return SECRET


def signed(body: bytes = BODY, *, secret: str = SECRET, now: int | None = None, url: str = URL) -> dict[str, str]:
    return sender_headers(secret, body, now=int(time.time()) if now is None else now, event_id="", url=url)


def post(lambda_context, *, body: bytes | str, headers: dict[str, str], is_base64: bool = False,
         query: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    text = body.decode() if isinstance(body, bytes) else body
    event = rest_event("POST", "/webhooks/hubspot", "/webhooks/{source}", {"source": "hubspot"},
                       headers={"Content-Type": "application/json", "User-Agent": "HubSpot Connect 2.0", **headers},
                       body=text, is_base64=is_base64)
    if query:
        event["queryStringParameters"] = dict(query)
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    response = http_webhook.handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"])


def envelopes(cloud) -> list[Envelope]:
    return sorted((Envelope.model_validate_json(m["Body"]) for m in cloud.messages()), key=lambda e: e.event_id)


def assert_nothing_stored_or_queued(cloud) -> None:
    assert cloud.items() == []
    assert cloud.queue_depth() == 0


def refusal_reasons(caplog) -> list[str]:
    return [r.reason for r in caplog.records if hasattr(r, "reason")]


# -- accepted ----------------------------------------------------------------------------------------------------


def test_given_a_signed_batch_of_two_when_posted_then_200_two_runs_received_and_two_envelopes_queued(
    cloud, hubspot, lambda_context
):
    status, answer = post(lambda_context, body=BODY, headers=signed())

    assert status == 200
    assert answer == {"events": [
        {"run_id": run_id_for(f"hubspot:{IDS[0]}"), "event_id": IDS[0], "duplicate": False},
        {"run_id": run_id_for(f"hubspot:{IDS[1]}"), "event_id": IDS[1], "duplicate": False},
    ]}
    queued = envelopes(cloud)
    assert [(e.event_id, e.source, e.type, e.dedupe_key, e.payload_version) for e in queued] == [
        (IDS[0], "hubspot", "hubspot.contact.creation", f"hubspot:{IDS[0]}", "hubspot.webhooks.v3"),
        (IDS[1], "hubspot", "hubspot.contact.propertyChange", f"hubspot:{IDS[1]}", "hubspot.webhooks.v3"),
    ]
    assert [e.payload for e in queued] == EVENTS
    store = DynamoTimelineStore(TABLE_NAME)
    for event_id in IDS:
        view = store.get(run_id_for(f"hubspot:{event_id}"))
        assert view is not None and [e.state.value for e in view.timeline] == ["received"]


def test_given_the_same_delivery_again_when_posted_then_every_event_is_a_duplicate_and_nothing_is_queued_twice(
    cloud, hubspot, lambda_context
):
    headers = signed()
    post(lambda_context, body=BODY, headers=headers)

    status, answer = post(lambda_context, body=BODY, headers=headers)

    assert status == 200
    assert [(e["event_id"], e["duplicate"]) for e in answer["events"]] == [(IDS[0], True), (IDS[1], True)]
    assert cloud.queue_depth() == 2
    view = DynamoTimelineStore(TABLE_NAME).get(run_id_for(f"hubspot:{IDS[0]}"))
    assert [e.state.value for e in view.timeline] == ["received", "duplicate"]


def test_given_hubspots_retry_with_a_new_stamp_and_attempt_number_then_it_is_a_duplicate(
    cloud, hubspot, lambda_context
):
    post(lambda_context, body=BODY, headers=signed(now=int(time.time()) - 120))
    retry = json.dumps([{**e, "attemptNumber": 1} for e in EVENTS], separators=(",", ":")).encode()

    status, answer = post(lambda_context, body=retry, headers=signed(retry))

    assert status == 200
    assert [e["duplicate"] for e in answer["events"]] == [True, True]
    assert cloud.queue_depth() == 2


@pytest.mark.parametrize("case", [str.upper, str.lower], ids=["upper", "lower"])
def test_given_header_names_in_any_case_when_posted_then_accepted(cloud, hubspot, lambda_context, case):
    headers = {case(k): v for k, v in signed().items()}

    assert post(lambda_context, body=BODY, headers=headers)[0] == 200
    assert cloud.queue_depth() == 2


def test_given_an_api_gateway_base64_body_when_posted_then_the_signature_is_checked_on_the_decoded_bytes(
    cloud, hubspot, lambda_context
):
    status, _ = post(lambda_context, body=base64.b64encode(BODY).decode(), headers=signed(), is_base64=True)

    assert status == 200
    assert [e.payload for e in envelopes(cloud)] == EVENTS


def test_given_two_secrets_during_a_rotation_when_either_signs_then_both_are_accepted(
    cloud, put_secret, lambda_context, monkeypatch
):
    monkeypatch.setenv("INTERLOCK_ENABLED_SOURCES", "hubspot")
    monkeypatch.setenv("INTERLOCK_PUBLIC_BASE_URL", BASE_URL)
    old, new = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    put_secret("hubspot", old, new, separator="\n")
    first = json.dumps([EVENTS[0]]).encode()
    second = json.dumps([EVENTS[1]]).encode()

    assert post(lambda_context, body=first, headers=signed(first, secret=old))[0] == 200
    assert post(lambda_context, body=second, headers=signed(second, secret=new))[0] == 200
    assert cloud.queue_depth() == 2


def test_given_a_target_url_with_a_query_string_and_escapes_when_posted_then_the_url_hubspot_called_verifies(
    cloud, hubspot, lambda_context
):
    called = f"{URL}?next=https%3A%2F%2Fapp.example.com%2Fa%20b&tenant=acme"
    query = {"next": "https://app.example.com/a b", "tenant": "acme"}  # as API Gateway decodes them

    assert post(lambda_context, body=BODY, headers=signed(url=called), query=query)[0] == 200
    assert cloud.queue_depth() == 2


# -- refused --------------------------------------------------------------------------------------------------------


def _tampered(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"62515", b"62516", 1), signed(body)


def _reserialised(body: bytes) -> tuple[bytes, dict[str, str]]:
    return json.dumps(json.loads(body)).encode(), signed(body)


def _seconds(body: bytes) -> tuple[bytes, dict[str, str]]:
    stamp = str(int(time.time()))
    return body, {"X-HubSpot-Signature-v3": sign_v3(SECRET, "POST", URL, body, stamp),
                  "X-HubSpot-Request-Timestamp": stamp}


def _without(name: str):
    return lambda body: (body, {k: v for k, v in signed(body).items() if k != name})


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(_tampered, "signature_mismatch", id="one-byte-tamper"),
        pytest.param(_reserialised, "signature_mismatch", id="re-serialised-json"),
        pytest.param(lambda b: (b, signed(b, secret="99999999-9999-4999-8999-999999999999")), "signature_mismatch",
                     id="wrong-secret"),
        pytest.param(lambda b: (b, signed(b, now=int(time.time()) - 360)), "timestamp_too_old", id="stale"),
        pytest.param(lambda b: (b, signed(b, now=int(time.time()) + 360)), "timestamp_in_future", id="future"),
        pytest.param(_seconds, "timestamp_not_milliseconds", id="seconds-not-milliseconds"),
        pytest.param(_without("X-HubSpot-Signature-v3"), "missing_headers", id="missing-signature"),
        pytest.param(_without("X-HubSpot-Request-Timestamp"), "missing_headers", id="missing-timestamp"),
        pytest.param(lambda b: (b, {}), "missing_headers", id="no-headers"),
        pytest.param(lambda b: (b, signed(b, url="https://evil.example.com/prod/webhooks/hubspot")),
                     "signature_mismatch", id="signed-for-another-url"),
    ],
)
def test_given_a_request_that_does_not_verify_when_posted_then_401_with_its_reason_and_nothing_kept(
    cloud, hubspot, lambda_context, caplog, make, reason
):
    caplog.set_level(logging.INFO, logger="interlock")
    body, headers = make(BODY)

    status, answer = post(lambda_context, body=body, headers=headers)

    assert (status, answer["error"]) == (401, "invalid_signature")
    assert refusal_reasons(caplog) == [reason]
    assert_nothing_stored_or_queued(cloud)


def test_given_the_function_configured_with_a_different_public_base_url_when_posted_then_401(
    cloud, hubspot, lambda_context, monkeypatch
):
    monkeypatch.setenv("INTERLOCK_PUBLIC_BASE_URL", "https://api.example.com/interlock")

    assert post(lambda_context, body=BODY, headers=signed())[0] == 401
    assert_nothing_stored_or_queued(cloud)


def test_given_no_public_base_url_when_posted_then_401_and_the_reason_says_so(
    cloud, hubspot, lambda_context, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="interlock")
    monkeypatch.delenv("INTERLOCK_PUBLIC_BASE_URL")

    status, answer = post(lambda_context, body=BODY, headers=signed())

    assert (status, answer["error"]) == (401, "invalid_signature")
    assert refusal_reasons(caplog) == ["public_base_url_not_configured"]
    assert any(r.levelno == logging.ERROR and "INTERLOCK_PUBLIC_BASE_URL" in r.getMessage() for r in caplog.records)
    assert_nothing_stored_or_queued(cloud)


# -- legacy v1/v2 ------------------------------------------------------------------------------------------------


def _legacy_v2(body: bytes = BODY) -> dict[str, str]:
    return {"X-HubSpot-Signature": sign_v2(SECRET, "POST", URL, body), "X-HubSpot-Signature-Version": "v2"}


def test_given_a_legacy_v2_request_when_legacy_is_not_enabled_then_401_legacy_signature_disabled(
    cloud, hubspot, lambda_context, caplog
):
    caplog.set_level(logging.INFO, logger="interlock")

    assert post(lambda_context, body=BODY, headers=_legacy_v2())[0] == 401
    assert refusal_reasons(caplog) == ["legacy_signature_disabled"]
    assert_nothing_stored_or_queued(cloud)


def test_given_legacy_enabled_for_hubspot_when_a_v2_request_comes_then_accepted(
    cloud, hubspot, lambda_context, monkeypatch
):
    monkeypatch.setenv("INTERLOCK_LEGACY_SIGNATURE_SOURCES", "hubspot")

    status, answer = post(lambda_context, body=BODY, headers=_legacy_v2())

    assert status == 200
    assert [e["event_id"] for e in answer["events"]] == IDS
    assert cloud.queue_depth() == 2


def test_given_legacy_enabled_when_a_v1_request_is_tampered_then_401(cloud, hubspot, lambda_context, monkeypatch):
    monkeypatch.setenv("INTERLOCK_LEGACY_SIGNATURE_SOURCES", "hubspot")
    headers = {"X-HubSpot-Signature": sign_v1(SECRET, BODY), "X-HubSpot-Signature-Version": "v1"}

    assert post(lambda_context, body=BODY + b" ", headers=headers)[0] == 401
    assert_nothing_stored_or_queued(cloud)


# -- nothing secret reaches the logs ---------------------------------------------------------------------------


def test_given_accepted_and_refused_deliveries_when_logged_then_neither_the_secret_nor_a_signature_appears(
    cloud, hubspot, lambda_context, caplog, capsys
):
    caplog.set_level(logging.DEBUG, logger="interlock")
    good = signed()
    bad = signed(secret="99999999-9999-4999-8999-999999999999")

    assert post(lambda_context, body=BODY, headers=bad)[0] == 401
    assert post(lambda_context, body=BODY, headers=good)[0] == 200

    ours = [r for r in caplog.records if r.name.startswith(("interlock", "aws_lambda_powertools"))]
    logged = " ".join(repr(r.__dict__) for r in ours) + capsys.readouterr().out
    assert ours
    for secret_text in (SECRET, good["X-HubSpot-Signature-v3"], bad["X-HubSpot-Signature-v3"]):
        assert secret_text not in logged
