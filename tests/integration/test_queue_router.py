"""The ingest queue consumer through the real handler: moto DynamoDB and a (non-executing) moto state machine."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import http_webhook
import pytest
import queue_router
from interlock.models import Envelope, run_id_for, utcnow
from interlock.timeline import DedupeState, DynamoTimelineStore
from interlock.topology import TOPOLOGY
from interlock.webhooks.standard import signed_headers

from integration.support import ACCOUNT, REGION, TABLE_NAME, rest_event


@pytest.fixture
def state_machine(cloud, monkeypatch) -> tuple[Any, str]:
    import boto3

    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = TOPOLOGY.state_machine("support_triage")
    definition = machine.definition_path.read_text()
    for placeholder, function in machine.function_substitutions.items():
        definition = definition.replace("${" + placeholder + "}",
                                        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:interlock-{function}")
    for placeholder, other in machine.state_machine_substitutions.items():
        definition = definition.replace("${" + placeholder + "}",
                                        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:interlock-{other}")
    arn = sfn.create_state_machine(name="interlock-support-triage", definition=definition, type=machine.type.value,
                                   roleArn=f"arn:aws:iam::{ACCOUNT}:role/interlock-states")["stateMachineArn"]
    monkeypatch.setenv("INTERLOCK_STATE_MACHINE_ARNS", json.dumps({"support_triage": arn}))
    monkeypatch.setenv("INTERLOCK_APPROVAL_TIMEOUT_SECONDS", "3600")
    return sfn, arn


def new_run(event_type: str = "support.ticket", source: str = "form") -> Envelope:
    """A run as ingest leaves it: recorded ``received``; the returned envelope is what it queued."""
    msg_id = f"msg_{uuid.uuid4().hex[:12]}"
    key = f"{source}:{msg_id}"
    envelope = Envelope(event_id=msg_id, source=source, type=event_type, payload_version="standard-webhooks.v1",
                        received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key),
                        payload={"type": event_type, "data": {"subject": "s", "body": "b",
                                                              "customer_email": "ada@example.com"}})
    assert DynamoTimelineStore(TABLE_NAME).create_run_once(envelope, 3600)
    return envelope


def sqs_record(body: str, message_id: str | None = None, receive_count: int = 1,
               acceptance: str | None = None) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1700000000000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1700000000000"},
        "messageAttributes": ({"acceptance": {"stringValue": acceptance, "dataType": "String"}} if acceptance
                              else {}),
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:interlock-test-ingest",
        "awsRegion": REGION,
    }


def deliver(lambda_context, *records: dict[str, Any]) -> dict[str, Any]:
    return queue_router.handler({"Records": list(records)}, lambda_context)


def timeline(run_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    view = DynamoTimelineStore(TABLE_NAME).get(run_id)
    assert view is not None
    return [(e.state.value, e.step, e.details) for e in view.timeline]


def test_given_a_support_ticket_when_routed_then_its_execution_starts_named_by_run_id_and_it_is_processing(
    state_machine, lambda_context
):
    sfn, arn = state_machine
    envelope = new_run()

    result = deliver(lambda_context, sqs_record(envelope.model_dump_json()))

    assert result == {"batchItemFailures": []}
    [execution] = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert execution["name"] == envelope.run_id
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    execution_input = json.loads(described["input"])
    assert execution_input["run_id"] == envelope.run_id
    assert Envelope.model_validate(execution_input["envelope"]) == envelope
    assert execution_input["policy"] == {"approval_timeout_seconds": 3600}
    view = DynamoTimelineStore(TABLE_NAME).get(envelope.run_id)
    assert view.status.value == "processing"
    assert view.workflow == "support_triage"
    assert [(s, step) for s, step, _ in timeline(envelope.run_id)] == [("received", "ingest"),
                                                                       ("processing", "router")]


def test_given_an_event_type_with_no_route_when_routed_then_the_run_ends_failed_no_route_and_nothing_starts(
    state_machine, lambda_context
):
    sfn, arn = state_machine
    envelope = new_run(event_type="invoice.paid")

    result = deliver(lambda_context, sqs_record(envelope.model_dump_json()))

    assert result == {"batchItemFailures": []}  # not retried: it would never route
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
    view = DynamoTimelineStore(TABLE_NAME).get(envelope.run_id)
    assert view.status.value == "failed"
    state, step, details = timeline(envelope.run_id)[-1]
    assert (state, step, details["reason"], details["event_type"]) == ("failed", "router", "no_route", "invoice.paid")


@pytest.mark.parametrize(
    "bad_body",
    ["not json", "{}", json.dumps({"run_id": "r", "source": "form"}), ""],
    ids=["not-json", "empty-object", "partial-envelope", "empty"],
)
def test_given_a_malformed_record_beside_a_good_one_when_routed_then_only_the_bad_one_is_reported(
    state_machine, lambda_context, bad_body
):
    sfn, arn = state_machine
    good = new_run()

    result = deliver(lambda_context, sqs_record(bad_body, message_id="bad-1"),
                     sqs_record(good.model_dump_json(), message_id="good-1"))

    assert result == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]] == [good.run_id]
    assert DynamoTimelineStore(TABLE_NAME).get(good.run_id).status.value == "processing"


def test_given_a_redelivered_message_while_the_execution_runs_when_routed_then_it_succeeds_with_one_execution(
    state_machine, lambda_context
):
    sfn, arn = state_machine
    envelope = new_run()
    body = envelope.model_dump_json()
    deliver(lambda_context, sqs_record(body, message_id="m1"))

    result = deliver(lambda_context, sqs_record(body, message_id="m1", receive_count=2))

    assert result == {"batchItemFailures": []}
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_given_a_redelivered_message_after_the_execution_ended_when_routed_then_execution_already_exists_is_fine(
    state_machine, lambda_context
):
    sfn, arn = state_machine
    envelope = new_run()
    body = envelope.model_dump_json()
    deliver(lambda_context, sqs_record(body))
    [execution] = sfn.list_executions(stateMachineArn=arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])

    result = deliver(lambda_context, sqs_record(body, receive_count=2))

    assert result == {"batchItemFailures": []}
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_given_the_state_machine_is_missing_when_routed_then_the_invocation_fails_so_sqs_retries_the_message(
    state_machine, lambda_context, monkeypatch
):
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    sfn, arn = state_machine
    monkeypatch.setenv("INTERLOCK_STATE_MACHINE_ARNS",
                       json.dumps({"support_triage": arn.replace("interlock-support-triage", "gone")}))
    envelope = new_run()

    # every record of the batch failed: Powertools fails the invocation, and the batch goes back to the queue
    with pytest.raises(BatchProcessingError):
        deliver(lambda_context, sqs_record(envelope.model_dump_json(), message_id="m-retry"))
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


def test_given_one_record_fails_to_start_beside_one_that_starts_when_routed_then_only_it_is_retried(
    state_machine, lambda_context, monkeypatch
):
    sfn, arn = state_machine
    good, unlucky = new_run(), new_run()
    import interlock.wiring

    real = interlock.wiring.router()
    original_start = real.engine.start

    def flaky_start(workflow: str, run_id: str, execution_input: dict[str, Any]) -> str:
        if run_id == unlucky.run_id:
            raise RuntimeError("throttled")
        return original_start(workflow, run_id, execution_input)

    monkeypatch.setattr(real.engine, "start", flaky_start)

    result = deliver(lambda_context, sqs_record(unlucky.model_dump_json(), message_id="unlucky"),
                     sqs_record(good.model_dump_json(), message_id="good"))

    assert result == {"batchItemFailures": [{"itemIdentifier": "unlucky"}]}
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]] == [good.run_id]


def test_given_a_webhook_accepted_by_ingest_when_its_queued_message_is_routed_then_the_run_is_processing(
    state_machine, cloud, put_secret, new_whsec, lambda_context
):
    sfn, arn = state_machine
    secret = new_whsec()
    put_secret("form", secret)
    body = json.dumps({"type": "support.ticket", "data": {"subject": "s", "body": "b",
                                                          "customer_email": "a@example.com"}}).encode()
    event = rest_event("POST", "/webhooks/form", "/webhooks/{source}", {"source": "form"},
                       headers=signed_headers(secret, "msg_e2e", int(time.time()), body), body=body.decode())
    accepted = json.loads(http_webhook.handler(event, lambda_context)["body"])
    [message] = cloud.messages()

    result = deliver(lambda_context, sqs_record(message["Body"], message_id=message["MessageId"]))

    assert result == {"batchItemFailures": []}
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]] == [accepted["run_id"]]
    assert [s for s, _, _ in timeline(accepted["run_id"])] == ["received", "processing"]


def test_given_an_envelope_whose_ingest_died_before_marking_it_when_routed_then_its_dedupe_key_is_queued(
    state_machine, lambda_context
):
    envelope = new_run()  # recorded by ingest, still "accepting": the ingest function died after sending
    store = DynamoTimelineStore(TABLE_NAME)
    assert store.dedupe_record(envelope.dedupe_key).state is DedupeState.ACCEPTING

    assert deliver(lambda_context, sqs_record(envelope.model_dump_json())) == {"batchItemFailures": []}

    assert store.dedupe_record(envelope.dedupe_key).state is DedupeState.QUEUED


def test_given_an_acceptance_taken_over_when_the_late_original_message_arrives_then_it_is_dropped(
    state_machine, lambda_context
):
    # Given an acceptance that the sender's retry took over while the original's message sat on the queue
    sfn, arn = state_machine
    msg_id = f"msg_{uuid.uuid4().hex[:12]}"
    key = f"form:{msg_id}"
    envelope = Envelope(event_id=msg_id, source="form", type="support.ticket", payload_version="standard-webhooks.v1",
                        received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key),
                        payload={"type": "support.ticket", "data": {"subject": "s", "body": "b",
                                                                    "customer_email": "ada@example.com"}})
    store = DynamoTimelineStore(TABLE_NAME)
    assert store.create_run_once(envelope, 3600, token="original")
    assert store.take_over(envelope, store.dedupe_record(key), "takeover")

    # When the original's message is delivered first, then the takeover's
    first = deliver(lambda_context, sqs_record(envelope.model_dump_json(), acceptance="original"))

    # Then the original's is dropped: nothing started, nothing recorded, the acceptance still the takeover's
    assert first == {"batchItemFailures": []}
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
    assert [s for s, _, _ in timeline(envelope.run_id)] == ["received", "retried"]
    assert store.dedupe_record(key).state is DedupeState.ACCEPTING

    # And the takeover's message runs the event, once
    assert deliver(lambda_context, sqs_record(envelope.model_dump_json(), acceptance="takeover")) == {
        "batchItemFailures": []}
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]] == [envelope.run_id]
    assert [s for s, _, _ in timeline(envelope.run_id)] == ["received", "retried", "processing"]
    assert store.dedupe_record(key).state is DedupeState.QUEUED
