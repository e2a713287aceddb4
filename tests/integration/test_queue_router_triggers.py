"""The ingest queue consumer with the triggers that are not webhooks, through the real handler on moto: a schedule's
firing and a table's status change each create their run and start it once; a duplicate starts nothing; a crash
between creating a run and starting it loses nothing; a message of no known shape goes to the DLQ."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from interlock.kit.triggers import TRIGGER_DEDUPE_TTL_SECONDS, parse_message, schedule_message, trigger_envelope
from interlock.timeline import DedupeState, DynamoTimelineStore
from interlock.topology import build
from throwaway_triggers import CHANGE_TYPE, PACKAGE, WORKFLOW, importable

from integration.support import ACCOUNT, REGION, TABLE_NAME
from integration.test_queue_router import deliver, sqs_record, timeline

PHYSICAL_TABLE = "interlock-test-tickets"
STREAM_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{PHYSICAL_TABLE}/stream/2026-11-22T10:00:00.000"


@pytest.fixture
def machine(cloud, monkeypatch, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """The throwaway workflow registered, its (non-executing) state machine, the router's settings."""
    import boto3

    monkeypatch.setenv("INTERLOCK_EXTRA_WORKFLOWS", PACKAGE)
    monkeypatch.setenv("INTERLOCK_TABLE_TICKETS", PHYSICAL_TABLE)
    with importable(tmp_path):
        sm = build(PACKAGE).state_machine(WORKFLOW)
        definition = sm.definition_path.read_text()
        for placeholder, function in sm.function_substitutions.items():
            definition = definition.replace("${" + placeholder + "}",
                                            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:interlock-{function}")
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(name="interlock-throwaway", definition=definition, type=sm.type.value,
                                       roleArn=f"arn:aws:iam::{ACCOUNT}:role/interlock-states")["stateMachineArn"]
        monkeypatch.setenv("INTERLOCK_STATE_MACHINE_ARNS", json.dumps({WORKFLOW: arn}))
        yield sfn, arn


def executions(sfn: Any, arn: str) -> list[str]:
    return [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]


def firing(when: datetime = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)) -> str:
    return schedule_message(WORKFLOW, "daily_check", when)


def stream_record(old: str, new: str, seq: str = "4421584500000000017450439091") -> str:
    return json.dumps({
        "eventID": uuid.uuid4().hex, "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": REGION, "eventSourceARN": STREAM_ARN,
        "dynamodb": {"ApproximateCreationDateTime": 1795000000, "Keys": {"ticket_id": {"S": "T-7"}},
                     "NewImage": {"ticket_id": {"S": "T-7"}, "status": {"S": new}, "priority": {"N": "2"}},
                     "OldImage": {"ticket_id": {"S": "T-7"}, "status": {"S": old}},
                     "SequenceNumber": seq, "SizeBytes": 90, "StreamViewType": "NEW_AND_OLD_IMAGES"}})


def envelope_of(body: str) -> Any:
    envelope = trigger_envelope(parse_message(body), datetime.now(UTC))  # type: ignore[arg-type]
    assert envelope is not None
    return envelope


def test_given_a_schedule_firing_when_routed_then_its_run_is_created_and_started(machine, lambda_context) -> None:
    sfn, arn = machine
    envelope = envelope_of(firing())

    result = deliver(lambda_context, sqs_record(firing(), message_id="m-1"))

    assert result == {"batchItemFailures": []}
    assert executions(sfn, arn) == [envelope.run_id]
    execution = sfn.describe_execution(executionArn=sfn.list_executions(stateMachineArn=arn)["executions"][0][
        "executionArn"])
    started = json.loads(execution["input"])["envelope"]
    assert (started["source"], started["type"]) == ("schedule", f"{WORKFLOW}.daily_check")
    assert [(s, step) for s, step, _ in timeline(envelope.run_id)] == [("received", "ingest"),
                                                                       ("processing", "router")]
    assert timeline(envelope.run_id)[0][2]["event_source"] == "schedule"
    store = DynamoTimelineStore(TABLE_NAME)
    kept = store.envelope(envelope.run_id)  # kept for replay, as the ingest keeps a webhook's
    assert kept is not None and kept.model_dump(mode="json") == started
    assert store.dedupe_record(envelope.dedupe_key).state is DedupeState.QUEUED


def test_given_the_same_scheduled_time_twice_when_routed_then_one_run_and_a_duplicate_entry(
    machine, lambda_context
) -> None:
    sfn, arn = machine
    envelope = envelope_of(firing())

    deliver(lambda_context, sqs_record(firing(), message_id="m-1"))
    result = deliver(lambda_context, sqs_record(firing(), message_id="m-2"))  # Scheduler's retry, say
    deliver(lambda_context, sqs_record(firing(), message_id="m-2"))  # and that message redelivered

    assert result == {"batchItemFailures": []}
    assert executions(sfn, arn) == [envelope.run_id]
    assert [(s, step) for s, step, _ in timeline(envelope.run_id)] == [
        ("received", "ingest"), ("processing", "router"), ("duplicate", "router")]
    # the next day's firing is a run of its own
    deliver(lambda_context, sqs_record(firing(datetime(2026, 11, 24, 6, 30, tzinfo=UTC))))
    assert len(executions(sfn, arn)) == 2


def test_given_the_router_died_after_creating_the_run_when_its_message_returns_then_the_run_starts(
    machine, lambda_context
) -> None:
    sfn, arn = machine
    envelope = envelope_of(firing())
    store = DynamoTimelineStore(TABLE_NAME)
    # what a first delivery of message m-1 left behind before it died: the run created, its key accepting
    assert store.create_run_once(envelope, TRIGGER_DEDUPE_TTL_SECONDS, "m-1")

    deliver(lambda_context, sqs_record(firing(), message_id="m-1"))

    assert executions(sfn, arn) == [envelope.run_id]
    assert store.dedupe_record(envelope.dedupe_key).state is DedupeState.QUEUED
    assert [s for s, _, _ in timeline(envelope.run_id)] == ["received", "processing"]


def test_given_an_acceptance_abandoned_long_ago_when_another_message_comes_then_it_takes_over_and_starts(
    machine, lambda_context, monkeypatch
) -> None:
    sfn, arn = machine
    envelope = envelope_of(firing())
    store = DynamoTimelineStore(TABLE_NAME)
    assert store.create_run_once(envelope, TRIGGER_DEDUPE_TTL_SECONDS, "m-died")
    # while fresh, another message is a duplicate: the first may still be starting it
    deliver(lambda_context, sqs_record(firing(), message_id="m-early"))
    assert executions(sfn, arn) == []

    later = time.time() + 901
    monkeypatch.setattr("interlock.routing.time.time", lambda: later)
    deliver(lambda_context, sqs_record(firing(), message_id="m-redriven"))  # the DLQ redriven, say

    assert executions(sfn, arn) == [envelope.run_id]
    record = store.dedupe_record(envelope.dedupe_key)
    assert (record.state, record.token) == (DedupeState.QUEUED, "m-redriven")


def test_given_a_status_change_when_routed_then_its_run_starts_with_the_new_item(machine, lambda_context) -> None:
    sfn, arn = machine
    body = stream_record("open", "escalated")
    envelope = envelope_of(body)

    assert deliver(lambda_context, sqs_record(body, message_id="p-1")) == {"batchItemFailures": []}
    deliver(lambda_context, sqs_record(body, message_id="p-2"))  # the same record again: one run

    assert executions(sfn, arn) == [envelope.run_id]
    assert envelope.dedupe_key == "table:tickets:4421584500000000017450439091"
    started = DynamoTimelineStore(TABLE_NAME).envelope(envelope.run_id)
    assert started is not None and started.type == CHANGE_TYPE
    assert started.payload["item"] == {"ticket_id": "T-7", "status": "escalated", "priority": 2}
    assert [s for s, _, _ in timeline(envelope.run_id)] == ["received", "processing", "duplicate"]


def test_given_a_change_to_another_status_when_routed_then_nothing_is_recorded_or_started(
    machine, cloud, lambda_context
) -> None:
    sfn, arn = machine
    before = len(cloud.items())

    result = deliver(lambda_context, sqs_record(stream_record("open", "closed"), message_id="p-3"))

    assert result == {"batchItemFailures": []}  # not retried: it is simply not a status change anyone watches
    assert executions(sfn, arn) == []
    assert len(cloud.items()) == before


@pytest.mark.parametrize("body", [
    "not json",
    json.dumps({"kind": "interlock.schedule", "workflow": WORKFLOW, "schedule": "daily_check"}),
    json.dumps({"kind": "interlock.schedule", "workflow": WORKFLOW, "schedule": "weekly",
                "scheduled_time": "2026-11-23T06:30:00Z"}),
    json.dumps({"eventSource": "aws:dynamodb", "eventName": "MODIFY", "secret": "do-not-log-me"}),
    '{"do-not-log-me": ' + "[" * 5000 + "]" * 5000 + "}",
], ids=["not-json", "no-time", "unknown-schedule", "bad-record", "too-deep"])
def test_given_a_poison_message_then_it_is_reported_failed_and_logged_without_its_body(
    machine, lambda_context, body, capsys, caplog
) -> None:
    sfn, arn = machine

    result = deliver(lambda_context, sqs_record(body, message_id="poison-1"), sqs_record(firing(), message_id="ok"))

    assert result == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    assert executions(sfn, arn) == [envelope_of(firing()).run_id]  # the good one beside it started
    printed = capsys.readouterr()
    logged = printed.out + printed.err + caplog.text
    assert "poison message" in logged
    assert "do-not-log-me" not in logged


def test_given_a_poison_message_on_the_queue_then_after_its_retries_it_is_in_the_dlq(
    machine, cloud, lambda_context
) -> None:
    dlq_url = cloud.sqs.get_queue_url(QueueName="interlock-test-ingest-dlq")["QueueUrl"]
    cloud.sqs.send_message(QueueUrl=cloud.queue_url, MessageBody='{"hello": "world"}')

    for _ in range(6):  # the event source's receives: each fails, the message stays, until maxReceiveCount
        for message in cloud.sqs.receive_message(QueueUrl=cloud.queue_url, VisibilityTimeout=0,
                                                 AttributeNames=["All"]).get("Messages", []):
            with pytest.raises(BatchProcessingError):  # a batch of one failed record fails the invocation
                deliver(lambda_context, sqs_record(message["Body"], message_id=message["MessageId"]))

    moved = cloud.sqs.receive_message(QueueUrl=dlq_url).get("Messages", [])
    assert [m["Body"] for m in moved] == ['{"hello": "world"}']
