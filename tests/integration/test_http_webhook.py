"""POST /webhooks/{source} through the real handler, against moto DynamoDB, SQS and Secrets Manager."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import http_webhook
import pytest
from interlock.models import Envelope, run_id_for, utcnow
from interlock.timeline import DynamoTimelineStore
from interlock.webhooks.standard import sign, signed_headers

from integration.support import TABLE_NAME, header, rest_event

TICKET = {"type": "support.ticket", "timestamp": "2024-05-01T12:00:00Z",
          "data": {"subject": "Refund please", "body": "I was charged twice", "customer_email": "ada@example.com"}}


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def post(lambda_context, source: str = "form", *, body: bytes | str | None, headers: dict[str, str] | None = None,
         is_base64: bool = False) -> tuple[int, dict[str, Any], dict[str, Any]]:
    text = body.decode() if isinstance(body, bytes) else body
    event = rest_event("POST", f"/webhooks/{source}", "/webhooks/{source}", {"source": source},
                       headers={"Content-Type": "application/json", **(headers or {})}, body=text,
                       is_base64=is_base64)
    response = http_webhook.handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"]), response


def as_sent(headers: dict[str, str]) -> dict[str, str]:
    """Header names as a sender might capitalise them (API Gateway passes them through as sent)."""
    return {"-".join(part.capitalize() for part in k.split("-")): v for k, v in headers.items()}


@pytest.fixture
def secret(cloud, put_secret, new_whsec) -> str:
    value = new_whsec()
    put_secret("form", value)
    return value


def store() -> DynamoTimelineStore:
    return DynamoTimelineStore(TABLE_NAME)


def assert_nothing_stored_or_queued(cloud) -> None:
    assert cloud.items() == []
    assert cloud.queue_depth() == 0


# -- accepted -------------------------------------------------------------------------------------------


def test_given_a_signed_ticket_when_posted_then_202_the_run_is_received_and_one_envelope_is_queued(
    cloud, secret, lambda_context
):
    body = body_of(TICKET)

    status, answer, response = post(lambda_context, body=body,
                                     headers=as_sent(signed_headers(secret, "msg_abc", int(time.time()), body)))

    assert status == 202
    run_id = run_id_for("form:msg_abc")
    assert answer == {"run_id": run_id, "event_id": "msg_abc", "duplicate": False}
    assert header(response, "Cache-Control") == "no-store"
    view = store().get(run_id)
    assert view is not None
    assert view.status.value == "received"
    assert [e.state.value for e in view.timeline] == ["received"]
    messages = cloud.messages()
    assert len(messages) == 1
    envelope = Envelope.model_validate_json(messages[0]["Body"])
    assert (envelope.run_id, envelope.event_id, envelope.source, envelope.type) == (
        run_id, "msg_abc", "form", "support.ticket")
    assert envelope.dedupe_key == "form:msg_abc"
    assert envelope.payload == TICKET
    attributes = {k: v["StringValue"] for k, v in messages[0]["MessageAttributes"].items()}
    # The message carries the token of the acceptance that queued it (the router drops superseded ones).
    acceptance = store().dedupe_record("form:msg_abc").token
    assert acceptance
    assert attributes == {"source": "form", "type": "support.ticket", "run_id": run_id, "acceptance": acceptance}


def test_given_the_same_webhook_id_twice_when_posted_then_the_second_is_a_duplicate_with_the_same_run(
    cloud, secret, lambda_context
):
    body = body_of(TICKET)
    _, first, _ = post(lambda_context, body=body, headers=signed_headers(secret, "msg_dup", int(time.time()), body))

    status, second, _ = post(lambda_context, body=body,
                             headers=signed_headers(secret, "msg_dup", int(time.time()), body))

    assert status == 202
    assert second == {"run_id": first["run_id"], "event_id": "msg_dup", "duplicate": True}
    view = store().get(first["run_id"])
    assert [e.state.value for e in view.timeline] == ["received", "duplicate"]
    assert view.status.value == "received"
    assert cloud.queue_depth() == 1


def test_given_two_secrets_during_rotation_when_either_signs_then_both_are_accepted(
    cloud, put_secret, new_whsec, lambda_context
):
    old, new = new_whsec(), new_whsec()
    put_secret("form", old, new, separator="\n  ")
    now = int(time.time())
    body = body_of(TICKET)

    assert post(lambda_context, body=body, headers=signed_headers(old, "msg_old", now, body))[0] == 202
    assert post(lambda_context, body=body, headers=signed_headers(new, "msg_new", now, body))[0] == 202
    assert cloud.queue_depth() == 2


def test_given_svix_header_names_when_posted_then_it_is_accepted(cloud, secret, lambda_context):
    body = body_of(TICKET)
    now = int(time.time())
    headers = {"svix-id": "msg_svix", "svix-timestamp": str(now), "svix-signature": sign(secret, "msg_svix", now, body)}

    status, answer, _ = post(lambda_context, body=body, headers=headers)

    assert status == 202
    assert answer["event_id"] == "msg_svix"


def test_given_an_api_gateway_base64_body_when_posted_then_the_signature_is_checked_on_the_decoded_bytes(
    cloud, secret, lambda_context
):
    body = body_of(TICKET)
    headers = signed_headers(secret, "msg_b64", int(time.time()), body)

    status, answer, _ = post(lambda_context, body=base64.b64encode(body).decode(), headers=headers, is_base64=True)

    assert status == 202
    assert answer["event_id"] == "msg_b64"
    assert Envelope.model_validate_json(cloud.messages()[0]["Body"]).payload == TICKET


def test_given_a_body_with_non_ascii_text_when_posted_then_the_exact_bytes_verify(cloud, secret, lambda_context):
    payload = {"type": "support.ticket", "data": {"subject": "Rückerstattung ✓", "body": "naïve café"}}
    body = json.dumps(payload, ensure_ascii=False).encode()

    status, _, _ = post(lambda_context, body=body, headers=signed_headers(secret, "msg_utf8", int(time.time()), body))

    assert status == 202
    assert Envelope.model_validate_json(cloud.messages()[0]["Body"]).payload["data"] == payload["data"]


# -- refused: signature ----------------------------------------------------------------------------------


def _bad_signature(secret: str, body: bytes) -> dict[str, str]:
    now = int(time.time())
    headers = signed_headers(secret, "msg_x", now, body)
    return {**headers, "webhook-signature": sign(secret, "msg_x", now, body + b" ")}


@pytest.mark.parametrize(
    "make_headers",
    [
        pytest.param(_bad_signature, id="bad-signature"),
        pytest.param(lambda s, b: signed_headers(s, "msg_x", int(time.time()) - 360, b), id="stale"),
        pytest.param(lambda s, b: signed_headers(s, "msg_x", int(time.time()) + 360, b), id="future"),
        pytest.param(lambda s, b: {}, id="no-headers"),
        pytest.param(lambda s, b: {k: v for k, v in signed_headers(s, "msg_x", int(time.time()), b).items()
                                   if k != "webhook-id"}, id="missing-id"),
        pytest.param(lambda s, b: {k: v for k, v in signed_headers(s, "msg_x", int(time.time()), b).items()
                                   if k != "webhook-timestamp"}, id="missing-timestamp"),
        pytest.param(lambda s, b: {k: v for k, v in signed_headers(s, "msg_x", int(time.time()), b).items()
                                   if k != "webhook-signature"}, id="missing-signature"),
        pytest.param(lambda s, b: {**signed_headers(s, "msg_x", int(time.time()), b), "webhook-timestamp": "soon"},
                     id="non-integer-timestamp"),
        pytest.param(lambda s, b: signed_headers("whsec_" + base64.b64encode(b"z" * 32).decode(), "msg_x",
                                                 int(time.time()), b), id="wrong-secret"),
    ],
)
def test_given_a_request_that_does_not_verify_when_posted_then_401_and_nothing_is_stored_or_queued(
    cloud, secret, lambda_context, make_headers
):
    body = body_of(TICKET)

    status, answer, _ = post(lambda_context, body=body, headers=make_headers(secret, body))

    assert status == 401
    assert answer["error"] == "invalid_signature"
    assert_nothing_stored_or_queued(cloud)


def test_given_a_valid_signature_over_different_bytes_of_the_same_json_when_posted_then_401(
    cloud, secret, lambda_context
):
    body = body_of(TICKET)
    headers = signed_headers(secret, "msg_x", int(time.time()), body)
    same_json = json.dumps(TICKET, separators=(",", ":")).encode()

    assert post(lambda_context, body=same_json, headers=headers)[0] == 401
    assert_nothing_stored_or_queued(cloud)


# -- refused: body -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"type": "support.ticket", "data": ', "not valid JSON"),
        (b'{"data": {"subject": "no type"}}', "type: Field required"),
        (b'{"type": ""}', "type: String should have at least 1 character"),
        (b"[]", "body: Input should be a valid dictionary"),
    ],
    ids=["malformed-json", "no-type", "empty-type", "not-an-object"],
)
def test_given_a_signed_body_that_is_not_a_valid_payload_when_posted_then_400_with_the_reason_and_nothing_kept(
    cloud, secret, lambda_context, raw, fragment
):
    status, answer, _ = post(lambda_context, body=raw, headers=signed_headers(secret, "msg_x", int(time.time()), raw))

    assert status == 400
    assert answer["error"] == "invalid_payload"
    assert fragment in answer["message"]
    assert_nothing_stored_or_queued(cloud)


def test_given_a_body_over_the_limit_when_posted_then_413_and_nothing_kept(cloud, secret, lambda_context,
                                                                           monkeypatch):
    monkeypatch.setenv("INTERLOCK_MAX_BODY_BYTES", "1024")
    body = body_of({"type": "support.ticket", "data": {"body": "x" * 2000}})

    status, answer, _ = post(lambda_context, body=body, headers=signed_headers(secret, "msg_x", int(time.time()), body))

    assert status == 413
    assert answer["error"] == "body_too_large"
    assert_nothing_stored_or_queued(cloud)


def test_given_a_body_at_the_default_limit_plus_one_when_posted_then_413(cloud, secret, lambda_context):
    body = b'{"type": "t", "data": {"pad": "' + b"x" * (256 * 1024) + b'"}}'

    assert post(lambda_context, body=body, headers=signed_headers(secret, "m", int(time.time()), body))[0] == 413
    assert_nothing_stored_or_queued(cloud)


def test_given_a_body_marked_base64_that_is_not_when_posted_then_400(cloud, secret, lambda_context):
    status, answer, _ = post(lambda_context, body="%%% not base64 %%%", headers={}, is_base64=True)

    assert status == 400
    assert answer["error"] == "bad_body"
    assert_nothing_stored_or_queued(cloud)


# -- refused: source --------------------------------------------------------------------------------------


def test_given_an_unknown_source_when_posted_then_404(cloud, secret, lambda_context):
    body = body_of(TICKET)

    status, answer, _ = post(lambda_context, "hubspot", body=body,
                             headers=signed_headers(secret, "msg_x", int(time.time()), body))

    assert status == 404
    assert answer["error"] == "unknown_source"
    assert_nothing_stored_or_queued(cloud)


def test_given_an_enabled_source_without_a_secret_when_posted_then_404(cloud, secret, lambda_context, monkeypatch):
    monkeypatch.setenv("INTERLOCK_ENABLED_SOURCES", "form,typeform=standard-webhooks")
    body = body_of(TICKET)

    status, answer, _ = post(lambda_context, "typeform", body=body,
                             headers=signed_headers(secret, "msg_x", int(time.time()), body))

    assert status == 404
    assert answer["error"] == "unknown_source"
    assert_nothing_stored_or_queued(cloud)


def test_given_the_form_source_without_a_secret_when_posted_then_404(cloud, lambda_context, new_whsec):
    body = body_of(TICKET)

    status, _, _ = post(lambda_context, body=body, headers=signed_headers(new_whsec(), "m", int(time.time()), body))

    assert status == 404
    assert_nothing_stored_or_queued(cloud)


# -- the queue is down --------------------------------------------------------------------------------------


def test_given_the_queue_does_not_exist_when_posted_then_503_and_nothing_is_left_in_the_table(
    cloud, secret, lambda_context, monkeypatch
):
    monkeypatch.setenv("INTERLOCK_INGEST_QUEUE_URL", cloud.queue_url.replace("interlock-test-ingest", "nope"))
    body = body_of(TICKET)
    headers = signed_headers(secret, "msg_lost", int(time.time()), body)

    status, answer, _ = post(lambda_context, body=body, headers=headers)

    assert status == 503
    assert answer["error"] == "unavailable"
    assert_nothing_stored_or_queued(cloud)


def test_given_an_invocation_nearly_out_of_time_when_posted_then_503_and_nothing_is_kept(cloud, secret):
    # The handler hands the Lambda context's remaining time to the ingest as its deadline: with one second left,
    # there is no room to record, queue and (should queueing fail) undo the event.
    from tests.conftest import FakeLambdaContext

    class NearlyOut(FakeLambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return 1_000

    body = body_of(TICKET)
    headers = signed_headers(secret, "msg_late", int(time.time()), body)

    status, answer, _ = post(NearlyOut(), body=body, headers=headers)

    assert (status, answer["error"]) == (503, "unavailable")
    assert_nothing_stored_or_queued(cloud)


def test_given_the_queue_failed_once_when_the_sender_retries_then_the_event_is_accepted_afresh(
    cloud, secret, lambda_context, monkeypatch
):
    import interlock.settings
    import interlock.wiring

    body = body_of(TICKET)
    monkeypatch.setenv("INTERLOCK_INGEST_QUEUE_URL", cloud.queue_url + "-missing")
    assert post(lambda_context, body=body, headers=signed_headers(secret, "msg_r", int(time.time()), body))[0] == 503

    monkeypatch.setenv("INTERLOCK_INGEST_QUEUE_URL", cloud.queue_url)
    interlock.settings.load.cache_clear()
    interlock.wiring.ingest_service.cache_clear()
    status, answer, _ = post(lambda_context, body=body,
                             headers=signed_headers(secret, "msg_r", int(time.time()), body))

    assert status == 202
    assert answer["duplicate"] is False
    assert cloud.queue_depth() == 1
    assert [e.state.value for e in store().get(answer["run_id"]).timeline] == ["received"]


# -- the secret store is failing -----------------------------------------------------------------------------


def _stub_secrets_manager(code: str, status: int):
    """Make Powertools Parameters' Secrets Manager client answer ``code`` (moto cannot fail on demand)."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
    from botocore.stub import Stubber

    client = boto3.client("secretsmanager", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("get_secret_value", service_error_code=code, http_status_code=status)
    stubber.activate()
    DEFAULT_PROVIDERS["secrets"] = SecretsProvider(boto3_client=client)
    return stubber


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("InternalServiceError", 500), ("AccessDeniedException", 400)],
)
def test_given_secrets_manager_is_failing_when_posted_then_503_so_the_sender_retries_and_nothing_is_kept(
    cloud, secret, lambda_context, code, status
):
    stubber = _stub_secrets_manager(code, status)
    body = body_of(TICKET)

    status_code, answer, _ = post(lambda_context, body=body,
                                  headers=signed_headers(secret, "msg_sm", int(time.time()), body))

    stubber.assert_no_pending_responses()
    assert status_code == 503, "a failing secret store is our outage, not an unknown source"
    assert answer["error"] == "unavailable"
    assert_nothing_stored_or_queued(cloud)


def test_given_secrets_manager_says_the_secret_does_not_exist_when_posted_then_404(cloud, secret, lambda_context):
    stubber = _stub_secrets_manager("ResourceNotFoundException", 400)
    body = body_of(TICKET)

    status, answer, _ = post(lambda_context, body=body, headers=signed_headers(secret, "m", int(time.time()), body))

    stubber.assert_no_pending_responses()
    assert status == 404
    assert answer["error"] == "unknown_source"


def test_given_the_secret_is_scheduled_for_deletion_when_posted_then_404_like_a_source_without_one(
    cloud, secret, lambda_context
):
    # Deleting a secret keeps it for a recovery window, in which reading it fails with InvalidRequestException
    import boto3

    boto3.client("secretsmanager", region_name="us-east-1").delete_secret(SecretId="interlock/webhooks/form")
    body = body_of(TICKET)

    status, answer, _ = post(lambda_context, body=body, headers=signed_headers(secret, "m", int(time.time()), body))

    assert (status, answer["error"]) == (404, "unknown_source")
    assert_nothing_stored_or_queued(cloud)


def test_given_a_secret_whose_json_cannot_be_read_when_posted_then_503_and_the_log_says_why(
    cloud, put_secret, lambda_context, caplog
):
    put_secret("form", '{"signing": ["whsec_abc"], verify_token: typo}')
    body = body_of(TICKET)

    headers = signed_headers("whsec_abc", "m", int(time.time()), body)

    status, answer, _ = post(lambda_context, body=body, headers=headers)

    assert (status, answer["error"]) == (503, "unavailable"), "an operator's typo is mended and retried, not a 404"
    assert any("not valid JSON" in r.getMessage() + str(r.exc_info) for r in caplog.records)
    assert_nothing_stored_or_queued(cloud)


@pytest.mark.parametrize(
    ("source", "method", "body", "headers", "status", "reason"),
    [
        ("nope", "POST", b"{}", {}, 404, "unknown_source"),
        ("form", "POST", b"{}", {}, 401, "missing_headers"),
        ("form", "GET", b"", {}, 405, "method_not_allowed"),
        ("form", "POST", b"x" * 70_000, {}, 413, "body_too_large"),
    ],
    ids=["unknown", "unsigned", "method", "size"],
)
def test_given_a_refused_request_then_the_reason_is_logged_as_a_warning(
    cloud, secret, lambda_context, caplog, source, method, body, headers, status, reason
):
    event = rest_event(method, f"/webhooks/{source}", "/webhooks/{source}", {"source": source}, headers=headers,
                       body=body.decode())
    assert http_webhook.handler(event, lambda_context)["statusCode"] == status

    (refusal,) = [r for r in caplog.records if r.getMessage() == "webhook refused"]
    assert refusal.levelname == "WARNING"
    assert (refusal.__dict__["status"], refusal.__dict__["reason"]) == (status, reason)


def test_given_a_request_with_null_headers_when_posted_then_401_not_a_crash(cloud, secret, lambda_context):
    event = rest_event("POST", "/webhooks/form", "/webhooks/{source}", {"source": "form"},
                       body=body_of(TICKET).decode())
    event["headers"] = None
    event["multiValueHeaders"] = None

    response = http_webhook.handler(event, lambda_context)

    assert response["statusCode"] == 401
    assert_nothing_stored_or_queued(cloud)


# -- nothing secret reaches the logs ---------------------------------------------------------------------------


def test_given_accepted_and_refused_deliveries_when_logged_then_no_secret_or_signature_appears(
    cloud, secret, lambda_context, caplog, capsys
):
    import logging

    caplog.set_level(logging.DEBUG, logger="interlock")  # our logger; the SDK's debug wire logs are not on in Lambda
    body = body_of(TICKET)
    good = signed_headers(secret, "msg_log", int(time.time()), body)
    bad = {**good, "webhook-signature": sign(secret, "msg_log", int(time.time()), b"other")}

    assert post(lambda_context, body=body, headers=bad)[0] == 401
    assert post(lambda_context, body=body, headers=good)[0] == 202

    ours = [r for r in caplog.records if r.name.startswith(("interlock", "aws_lambda_powertools"))]
    logged = " ".join(repr(r.__dict__) for r in ours) + capsys.readouterr().out
    assert ours, "the handler should have logged something"
    assert secret not in logged
    assert secret.removeprefix("whsec_") not in logged
    assert good["webhook-signature"].split(",", 1)[1] not in logged
    assert bad["webhook-signature"].split(",", 1)[1] not in logged


# -- a delivery whose function died between recording and queueing ---------------------------------------------


def test_given_an_acceptance_that_died_before_queueing_when_the_sender_retries_then_the_event_is_not_lost(
    cloud, secret, lambda_context
):
    body = body_of(TICKET)
    headers = as_sent(signed_headers(secret, "msg_crashed", int(time.time()), body))
    run_id = run_id_for("form:msg_crashed")
    # The first delivery recorded the run and died: nothing reached the queue.
    crashed = Envelope(event_id="msg_crashed", source="form", type="support.ticket",
                       payload_version="standard-webhooks.v1", received_at=utcnow(), dedupe_key="form:msg_crashed",
                       run_id=run_id, payload=json.loads(body))
    assert store().create_run_once(crashed, 3600)

    # A retry soon after is told to come back, not acknowledged as a duplicate of an event nobody queued.
    status, answer, _ = post(lambda_context, body=body, headers=headers)
    assert (status, answer["error"]) == (409, "in_progress")
    assert cloud.queue_depth() == 0

    # Once the acceptance is stale, the next retry takes it over and queues the event.
    key = {"pk": {"S": "DEDUPE#form:msg_crashed"}, "sk": {"S": "#DEDUPE"}}
    cloud.dynamodb.update_item(TableName=TABLE_NAME, Key=key, UpdateExpression="SET accepted_at = :old",
                               ExpressionAttributeValues={":old": {"N": str(time.time() - 600)}})
    status, answer, _ = post(lambda_context, body=body, headers=headers)
    assert status == 202 and answer == {"run_id": run_id, "event_id": "msg_crashed", "duplicate": False}
    assert cloud.queue_depth() == 1
    (message,) = cloud.messages()
    assert message["MessageAttributes"]["acceptance"]["StringValue"] == store().dedupe_record("form:msg_crashed").token

    # And from then on it is a plain duplicate.
    status, answer, _ = post(lambda_context, body=body, headers=headers)
    assert status == 202 and answer["duplicate"] is True
    assert cloud.queue_depth() == 1
    # The run's records were kept through the takeover, which left an entry of its own.
    timeline = store().get(run_id).timeline
    assert [e.state.value for e in timeline] == ["received", "retried", "duplicate"]
    assert timeline[1].details["reason"] == "acceptance_taken_over"
