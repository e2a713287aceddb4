"""Slack and WhatsApp deliveries through the real ingest handler (API Gateway REST events), against moto
DynamoDB, SQS and Secrets Manager."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import http_webhook
import pytest
from interlock.models import Envelope, run_id_for
from interlock.timeline import DynamoTimelineStore
from interlock.webhooks.sources import slack, whatsapp
from slack_sdk.signature import SignatureVerifier

from integration.support import TABLE_NAME, header, rest_event

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_OLD = "0123456789abcdef0123456789abcdef"
APP_SECRET = "6f1d0c3a9e8b4f27a1c5d9e0b3f7a2c4"
APP_SECRET_OLD = "00112233445566778899aabbccddeeff"
VERIFY_TOKEN = "meatyhamhock"

MENTION = {
    "token": "XXYYZZ", "team_id": "T123ABC", "api_app_id": "A123ABC", "type": "event_callback",
    "event_id": "Ev08MFMKH6", "event_time": 1_700_000_000,
    "event": {"type": "app_mention", "user": "U061F7AUR", "text": "<@U0LAN0Z89> refund please",
              "ts": "1515449522.000016", "channel": "C0LAN2Q65", "event_ts": "1515449522000016"},
}
BLOCK_ACTIONS = {
    "type": "block_actions", "token": "XXYYZZ", "trigger_id": "13345224609.738474920.8088930838d88f008e0",
    "user": {"id": "U061F7AUR"}, "team": {"id": "T123ABC"}, "api_app_id": "A123ABC",
    "response_url": "https://hooks.slack.com/actions/T123ABC/1/abc",
    "actions": [{"action_id": "approve", "type": "button", "value": "yes: 100% & more",
                 "action_ts": "1548426417.840180"}],
}
METADATA = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}
TEXT = {"from": "16505551234", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
        "timestamp": "1749416383", "type": "text", "text": {"body": "Does it come in another color?"}}
DELIVERED = {"id": "wamid.SENT1", "status": "delivered", "timestamp": "1750263773", "recipient_id": "16505551234"}
BATCH = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
    {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": METADATA,
                                    "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
                                    "messages": [TEXT]}},
    {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": METADATA,
                                    "statuses": [DELIVERED]}},
]}]}


@pytest.fixture(autouse=True)
def sources_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_ENABLED_SOURCES", "form,slack,whatsapp")


@pytest.fixture
def slack_secret(cloud, put_secret) -> str:
    put_secret("slack", SLACK_SECRET)
    return SLACK_SECRET


@pytest.fixture
def whatsapp_secret(cloud, put_secret) -> str:
    put_secret("whatsapp", json.dumps({"signing": [APP_SECRET], "verify_token": VERIFY_TOKEN}))
    return APP_SECRET


def call(lambda_context, source: str, *, method: str = "POST", body: bytes | None = None,
         headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
         content_type: str = "application/json", is_base64: bool = False) -> dict[str, Any]:
    text = None if body is None else (base64.b64encode(body).decode() if is_base64 else body.decode())
    event = rest_event(method, f"/webhooks/{source}", "/webhooks/{source}", {"source": source},
                       headers={"Content-Type": content_type, **(headers or {})}, body=text, is_base64=is_base64)
    if query:
        event["queryStringParameters"] = dict(query)
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    return http_webhook.handler(event, lambda_context)


def answer(response: dict[str, Any]) -> tuple[int, Any]:
    body = response["body"]
    if (header(response, "Content-Type") or "").startswith("application/json"):
        body = json.loads(body)
    return response["statusCode"], body


def body_of(payload: object) -> bytes:
    return json.dumps(payload).encode()


def as_slack_form(fields: dict[str, str]) -> bytes:
    """A form percent-encoded with %20 and %3A, as a sender may: not what urlencode would produce."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in fields.items()).encode()


def upper(headers: dict[str, str]) -> dict[str, str]:
    return {k.upper(): v for k, v in headers.items()}


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def slack_headers(body: bytes, *, secret: str = SLACK_SECRET, at: int | None = None) -> dict[str, str]:
    return slack.sender_headers(secret, body, now=int(time.time()) if at is None else at, event_id="")


def wa_headers(body: bytes, *, secret: str = APP_SECRET) -> dict[str, str]:
    return whatsapp.sender_headers(secret, body, now=int(time.time()), event_id="")


def envelopes(cloud) -> list[Envelope]:
    return [Envelope.model_validate_json(m["Body"]) for m in cloud.messages()]


def assert_nothing_stored_or_queued(cloud) -> None:
    assert cloud.items() == []
    assert cloud.queue_depth() == 0


# -- Slack: accepted -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [upper, lower, lambda h: h], ids=["UPPER", "lower", "As-Sent"])
def test_given_a_signed_slack_event_when_posted_then_200_one_envelope_keyed_by_event_id(
    cloud, slack_secret, lambda_context, spelling
):
    body = body_of(MENTION)
    headers = slack_headers(body)
    assert SignatureVerifier(SLACK_SECRET).is_valid_request(body, headers)  # what the official SDK accepts

    status, result = answer(call(lambda_context, "slack", body=body, headers=spelling(headers)))

    assert status == 200
    assert result == {"run_id": run_id_for("slack:Ev08MFMKH6"), "event_id": "Ev08MFMKH6", "duplicate": False}
    (envelope,) = envelopes(cloud)
    assert (envelope.source, envelope.type, envelope.dedupe_key, envelope.payload_version) == (
        "slack", "slack.app_mention", "slack:Ev08MFMKH6", "slack.v1")
    assert envelope.payload == {k: v for k, v in MENTION.items() if k != "token"}


def test_given_a_slack_sdk_signature_when_posted_then_it_is_accepted(cloud, slack_secret, lambda_context):
    body = body_of(MENTION)
    now = str(int(time.time()))
    theirs = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=now, body=body)
    assert theirs is not None
    headers = {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": theirs}

    assert answer(call(lambda_context, "slack", body=body, headers=headers))[0] == 200
    assert cloud.queue_depth() == 1


def test_given_a_slack_retry_of_a_processed_event_when_posted_then_a_200_duplicate_and_nothing_requeued(
    cloud, slack_secret, lambda_context
):
    body = body_of(MENTION)
    _, first = answer(call(lambda_context, "slack", body=body, headers=slack_headers(body)))

    retry_headers = {**slack_headers(body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    status, retried = answer(call(lambda_context, "slack", body=body, headers=retry_headers))

    assert status == 200
    assert retried == {"run_id": first["run_id"], "event_id": "Ev08MFMKH6", "duplicate": True}
    assert cloud.queue_depth() == 1
    view = DynamoTimelineStore(TABLE_NAME).get(first["run_id"])
    assert view is not None and [e.state.value for e in view.timeline] == ["received", "duplicate"]


def test_given_two_slack_signing_secrets_during_a_rotation_when_either_signs_then_both_are_accepted(
    cloud, put_secret, lambda_context
):
    put_secret("slack", SLACK_OLD, SLACK_SECRET)
    for n, secret in enumerate((SLACK_OLD, SLACK_SECRET)):
        body = body_of({**MENTION, "event_id": f"Ev{n}"})
        assert answer(call(lambda_context, "slack", body=body, headers=slack_headers(body, secret=secret)))[0] == 200
    assert cloud.queue_depth() == 2


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_given_an_api_gateway_base64_slack_body_when_posted_then_the_decoded_bytes_verify(
    cloud, slack_secret, lambda_context, form
):
    body = as_slack_form({"payload": json.dumps(BLOCK_ACTIONS)}) if form else body_of(MENTION)

    status, _ = answer(call(lambda_context, "slack", body=body, headers=slack_headers(body), is_base64=True,
                            content_type="application/x-www-form-urlencoded" if form else "application/json"))

    assert status == 200
    assert cloud.queue_depth() == 1


def test_given_a_form_encoded_interaction_when_posted_then_its_bytes_as_received_verify_and_a_re_encoding_does_not(
    cloud, slack_secret, lambda_context
):
    body = as_slack_form({"payload": json.dumps(BLOCK_ACTIONS)})
    headers = slack_headers(body)
    re_encoded = urlencode(parse_qsl(body.decode())).encode()  # the same fields, as a framework would re-encode
    assert re_encoded != body

    refused, _ = answer(call(lambda_context, "slack", body=re_encoded, headers=headers,
                             content_type="application/x-www-form-urlencoded"))
    assert refused == 401
    assert_nothing_stored_or_queued(cloud)

    status, result = answer(call(lambda_context, "slack", body=body, headers=headers,
                                 content_type="application/x-www-form-urlencoded"))
    assert (status, result) == (200, ""), "Slack's acknowledgement of an interaction is an empty 200"
    (envelope,) = envelopes(cloud)
    assert envelope.event_id == BLOCK_ACTIONS["trigger_id"]
    assert envelope.type == "slack.interaction.block_actions"
    assert envelope.payload == {k: v for k, v in BLOCK_ACTIONS.items() if k != "token"}


def test_given_a_slash_command_when_posted_then_one_envelope_keyed_by_trigger_id(cloud, slack_secret, lambda_context):
    body = (b"token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&command=%2Fweather&text=94070&user_id=U2147483697"
            b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678"
            b"&trigger_id=13345224609.738474920.8088930838d88f008e0")

    status, result = answer(call(lambda_context, "slack", body=body, headers=slack_headers(body),
                                 content_type="application/x-www-form-urlencoded"))

    assert (status, result) == (200, ""), "a JSON answer to a slash command would be posted as a message"
    (envelope,) = envelopes(cloud)
    assert envelope.event_id == "13345224609.738474920.8088930838d88f008e0"
    assert envelope.type == "slack.command"
    assert envelope.payload["command"] == "/weather" and "token" not in envelope.payload


def test_given_slacks_ssl_check_then_an_empty_200_signed_or_not_and_nothing_stored(cloud, slack_secret, lambda_context):
    body = b"ssl_check=1&token=XXYYZZ"

    unsigned = answer(call(lambda_context, "slack", body=body, content_type="application/x-www-form-urlencoded"))
    signed = answer(call(lambda_context, "slack", body=body, headers=slack_headers(body),
                         content_type="application/x-www-form-urlencoded"))

    assert unsigned == signed == (200, "")
    assert_nothing_stored_or_queued(cloud)


# -- Slack: url_verification -----------------------------------------------------------------------------------


def test_given_a_signed_url_verification_then_the_challenge_is_answered_and_unsigned_is_401_nothing_stored(
    cloud, slack_secret, lambda_context
):
    body = body_of({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "type": "url_verification",
                    "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})

    signed = call(lambda_context, "slack", body=body, headers=slack_headers(body))
    unsigned = call(lambda_context, "slack", body=body)

    assert signed["statusCode"] == 200
    assert signed["body"] == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    assert (header(signed, "Content-Type") or "").startswith("text/plain")
    assert header(signed, "Cache-Control") == "no-store"
    assert unsigned["statusCode"] == 401
    assert_nothing_stored_or_queued(cloud)


# -- Slack: refused ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda b: (b[:-2] + b"X" + b[-1:], slack_headers(b)), id="one-byte-tamper"),
        pytest.param(lambda b: (json.dumps(json.loads(b), separators=(",", ":")).encode(), slack_headers(b)),
                     id="re-serialised-json"),
        pytest.param(lambda b: (b, slack_headers(b, secret=SLACK_OLD)), id="wrong-secret"),
        pytest.param(lambda b: (b, slack_headers(b, at=int(time.time()) - 360)), id="stale"),
        pytest.param(lambda b: (b, slack_headers(b, at=int(time.time()) + 360)), id="future"),
        pytest.param(lambda b: (b, {}), id="no-headers"),
        pytest.param(lambda b: (b, {"X-Slack-Request-Timestamp": slack_headers(b)["X-Slack-Request-Timestamp"]}),
                     id="missing-signature"),
        pytest.param(lambda b: (b, {"X-Slack-Signature": slack_headers(b)["X-Slack-Signature"]}),
                     id="missing-timestamp"),
    ],
)
def test_given_a_slack_request_that_does_not_verify_when_posted_then_401_and_nothing_stored_or_queued(
    cloud, slack_secret, lambda_context, make
):
    body, headers = make(body_of(MENTION))

    status, result = answer(call(lambda_context, "slack", body=body, headers=headers))

    assert status == 401 and result["error"] == "invalid_signature"
    assert_nothing_stored_or_queued(cloud)


# -- WhatsApp: the GET verification --------------------------------------------------------------------------------


def test_given_metas_verification_with_the_right_token_then_the_bare_challenge_as_text_plain(
    cloud, whatsapp_secret, lambda_context
):
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}

    response = call(lambda_context, "whatsapp", method="GET", query=query)

    assert (response["statusCode"], response["body"]) == (200, "1158201444")
    assert (header(response, "Content-Type") or "").startswith("text/plain")
    assert_nothing_stored_or_queued(cloud)


@pytest.mark.parametrize("query", [
    {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "wrong"},
    {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
    None,
], ids=["wrong-token", "no-token", "no-query"])
def test_given_a_verification_with_a_wrong_token_then_403_and_nothing_stored(
    cloud, whatsapp_secret, lambda_context, query
):
    response = call(lambda_context, "whatsapp", method="GET", query=query)

    assert response["statusCode"] == 403
    assert "1158201444" not in response["body"]
    assert_nothing_stored_or_queued(cloud)


# -- WhatsApp: notifications -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [upper, lower], ids=["UPPER", "lower"])
def test_given_a_signed_batch_when_posted_then_each_message_and_status_is_its_own_envelope(
    cloud, whatsapp_secret, lambda_context, spelling
):
    body = body_of(BATCH)

    status, result = answer(call(lambda_context, "whatsapp", body=body, headers=spelling(wa_headers(body))))

    assert status == 200
    assert result == {"events": [
        {"run_id": run_id_for(f"whatsapp:{TEXT['id']}"), "event_id": TEXT["id"], "duplicate": False},
        {"run_id": run_id_for("whatsapp:wamid.SENT1:delivered"), "event_id": "wamid.SENT1:delivered",
         "duplicate": False},
    ]}
    by_type = {e.type: e for e in envelopes(cloud)}
    assert set(by_type) == {"whatsapp.message.text", "whatsapp.status.delivered"}
    message = by_type["whatsapp.message.text"]
    assert message.payload["message"] == TEXT and message.payload["metadata"] == METADATA
    assert message.payload["contacts"] == [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}]
    assert by_type["whatsapp.status.delivered"].payload["status"] == DELIVERED
    assert {e.payload_version for e in by_type.values()} == {"whatsapp.v1"}


def test_given_the_same_batch_redelivered_then_it_is_processed_once(cloud, whatsapp_secret, lambda_context):
    body = body_of(BATCH)
    call(lambda_context, "whatsapp", body=body, headers=wa_headers(body))

    status, again = answer(call(lambda_context, "whatsapp", body=body, headers=wa_headers(body)))

    assert status == 200
    assert [e["duplicate"] for e in again["events"]] == [True, True]
    assert cloud.queue_depth() == 2


def test_given_a_verified_delivery_without_changes_then_200_no_events_nothing_stored(
    cloud, whatsapp_secret, lambda_context
):
    body = body_of({"object": "whatsapp_business_account", "entry": []})

    assert answer(call(lambda_context, "whatsapp", body=body, headers=wa_headers(body))) == (200, {"events": []})
    assert_nothing_stored_or_queued(cloud)


def test_given_a_change_of_another_field_then_it_is_queued_as_its_own_event_once(
    cloud, whatsapp_secret, lambda_context
):
    body = body_of({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]}]})

    status, first = answer(call(lambda_context, "whatsapp", body=body, headers=wa_headers(body)))
    _, again = answer(call(lambda_context, "whatsapp", body=body, headers=wa_headers(body)))

    assert status == 200 and first["duplicate"] is False and again["duplicate"] is True
    (envelope,) = envelopes(cloud)
    assert envelope.type == "whatsapp.account_update"


def test_given_two_app_secrets_during_a_rotation_when_either_signs_then_both_are_accepted(
    cloud, put_secret, lambda_context
):
    put_secret("whatsapp", json.dumps({"signing": [APP_SECRET_OLD, APP_SECRET], "verify_token": VERIFY_TOKEN}))
    for n, secret in enumerate((APP_SECRET_OLD, APP_SECRET)):
        body = body_of({**BATCH, "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "metadata": METADATA, "messages": [{**TEXT, "id": f"wamid.ROT{n}"}]}}]}]})
        assert answer(call(lambda_context, "whatsapp", body=body, headers=wa_headers(body, secret=secret)))[0] == 200
    assert cloud.queue_depth() == 2


def test_given_an_api_gateway_base64_whatsapp_body_when_posted_then_the_decoded_bytes_verify(
    cloud, whatsapp_secret, lambda_context
):
    body = json.dumps(BATCH, ensure_ascii=False).encode()

    status, _ = answer(call(lambda_context, "whatsapp", body=body, headers=wa_headers(body), is_base64=True))

    assert status == 200
    assert cloud.queue_depth() == 2


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda b: (b[:-2] + b"X" + b[-1:], wa_headers(b)), id="one-byte-tamper"),
        pytest.param(lambda b: (json.dumps(json.loads(b), separators=(",", ":")).encode(), wa_headers(b)),
                     id="re-serialised-json"),
        pytest.param(lambda b: (b, wa_headers(b, secret=APP_SECRET_OLD)), id="wrong-secret"),
        pytest.param(lambda b: (b, {}), id="missing-header"),
        pytest.param(lambda b: (b, {"X-Hub-Signature-256": wa_headers(b)["X-Hub-Signature-256"][7:]}),
                     id="no-sha256-prefix"),
    ],
)
def test_given_a_whatsapp_delivery_that_does_not_verify_when_posted_then_401_and_nothing_stored_or_queued(
    cloud, whatsapp_secret, lambda_context, make
):
    body, headers = make(body_of(BATCH))

    status, result = answer(call(lambda_context, "whatsapp", body=body, headers=headers))

    assert status == 401 and result["error"] == "invalid_signature"
    assert_nothing_stored_or_queued(cloud)


def test_given_the_verify_token_as_a_signature_secret_then_nothing_verifies(cloud, whatsapp_secret, lambda_context):
    body = body_of(BATCH)

    status, _ = answer(call(lambda_context, "whatsapp", body=body, headers=wa_headers(body, secret=VERIFY_TOKEN)))

    assert status == 401
    assert_nothing_stored_or_queued(cloud)
