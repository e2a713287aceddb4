"""The ingest DLQ's redrive on moto (SQS, DynamoDB, a non-executing state machine), through the real handler of
``GET /dlqs`` and ``POST /dlqs/{name}/redrive`` and the real router: a dry run plans each message and changes
nothing; a real redrive moves back exactly the messages the dry run said would start a run, and the router then
starts exactly those runs; duplicates leave the DLQ with an entry on their run; what cannot start stays."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import http_dead_letters
import pytest
from interlock.dead_letters import EXPRESS_MAX_SECONDS, DeadLetter, Planner, Verdict
from interlock.kit.triggers import DELIVERY_ATTRIBUTE, TRIGGER_DEDUPE_TTL_SECONDS, TRIGGER_STALE_SECONDS
from interlock.models import EntryState, Envelope, TimelineEntry, run_id_for, utcnow
from interlock.timeline import DedupeState, DynamoTimelineStore

from integration.support import ACCOUNT, QUEUE_NAME, REGION, TABLE_NAME, rest_event
from integration.test_queue_router import deliver, new_run, sqs_record, state_machine, timeline  # noqa: F401
from integration.test_queue_router_triggers import envelope_of, executions, firing, machine, stream_record  # noqa: F401


@pytest.fixture
def dlq(cloud, monkeypatch) -> Iterator[str]:
    url = cloud.sqs.get_queue_url(QueueName=f"{QUEUE_NAME}-dlq")["QueueUrl"]
    monkeypatch.setenv("INTERLOCK_INGEST_DLQ_URL", url)
    yield url


def dead_letter(cloud, dlq_url: str, body: str, **attributes: str) -> str:
    """A message as the DLQ holds it after the router failed on it (SQS keeps its id and attributes)."""
    return cloud.sqs.send_message(
        QueueUrl=dlq_url, MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()})["MessageId"]


def depth(cloud, url: str) -> int:
    values = cloud.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(values["ApproximateNumberOfMessages"]) + int(values["ApproximateNumberOfMessagesNotVisible"])


def call(lambda_context, method: str, path: str, body: str | None = None) -> tuple[int, dict[str, Any]]:
    name = path.split("/")[2] if path.count("/") > 2 else None
    resource = "/dlqs/{name}/redrive" if name else "/dlqs"
    response = http_dead_letters.handler(
        rest_event(method, path, resource, {"name": name} if name else {}, body=body,
                   headers={"Content-Type": "application/json"}), lambda_context)
    return response["statusCode"], json.loads(response["body"])


def redrive(lambda_context, dry_run: bool) -> dict[str, Any]:
    status, answer = call(lambda_context, "POST", "/dlqs/ingest/redrive", json.dumps({"dry_run": dry_run}))
    assert status == 200, answer
    return answer


def ingest_records(cloud) -> list[dict[str, Any]]:
    """What the redrive moved back to the ingest queue, as the event source hands it to the router."""
    records = []
    for message in cloud.sqs.receive_message(QueueUrl=cloud.queue_url, MaxNumberOfMessages=10,
                                             MessageAttributeNames=["All"]).get("Messages", []):
        records.append({
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000)),
                           "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1"},
            "messageAttributes": {k: {"stringValue": v["StringValue"], "dataType": "String"}
                                  for k, v in message.get("MessageAttributes", {}).items()},
            "md5OfBody": "0" * 32, "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE_NAME}", "awsRegion": REGION})
    return records


def stuck_processing(minutes_ago: float) -> Any:
    """A run the router marked ``processing`` ``minutes_ago`` and then failed to start (Step Functions unavailable)."""
    key = f"form:msg_{uuid.uuid4().hex[:12]}"
    then = utcnow() - timedelta(minutes=minutes_ago, seconds=1)
    envelope = Envelope(event_id=key[5:], source="form", type="support.ticket", payload_version="standard-webhooks.v1",
                        received_at=then, dedupe_key=key, run_id=run_id_for(key),
                        payload={"type": "support.ticket", "data": {"subject": "s", "body": "b"}})
    store = DynamoTimelineStore(TABLE_NAME)
    assert store.create_run_once(envelope, 3600)
    store.record(envelope.run_id, TimelineEntry(
        state=EntryState.PROCESSING, step="router", at=then + timedelta(seconds=1),
        details={"workflow": "support_triage", "event_type": envelope.type}), workflow="support_triage")
    return envelope


def first_step(run_id: str) -> None:
    """What a started execution's first step records (the state machine here does not execute)."""
    DynamoTimelineStore(TABLE_NAME).record(run_id, TimelineEntry(state=EntryState.PROCESSING, step="classify"))


@pytest.fixture
def mixed_dlq(cloud, dlq, state_machine, lambda_context) -> dict[str, Any]:  # noqa: F811
    """A DLQ after an outage: runs never started, one started meanwhile, one stuck processing, poison, an orphan."""
    received = new_run()
    started = new_run()
    deliver(lambda_context, sqs_record(started.model_dump_json(), message_id="m-started"))
    first_step(started.run_id)
    stuck = stuck_processing(minutes_ago=EXPRESS_MAX_SECONDS / 60 + 1)
    starting = stuck_processing(minutes_ago=0)
    orphan = new_run()
    DynamoTimelineStore(TABLE_NAME).forget_new_run(orphan)
    ids = {
        "received": dead_letter(cloud, dlq, received.model_dump_json()),
        "started": dead_letter(cloud, dlq, started.model_dump_json()),
        "stuck": dead_letter(cloud, dlq, stuck.model_dump_json()),
        "starting": dead_letter(cloud, dlq, starting.model_dump_json()),
        "poison": dead_letter(cloud, dlq, '{"hello": "world"}'),
        "orphan": dead_letter(cloud, dlq, orphan.model_dump_json()),
    }
    runs = {"received": received.run_id, "started": started.run_id, "stuck": stuck.run_id,
            "starting": starting.run_id, "orphan": orphan.run_id}
    return {"ids": ids, "runs": runs}


EXPECTED = {"received": ("start", "not_started"), "started": ("duplicate", "already_started"),
            "stuck": ("start", "start_never_happened"), "starting": ("in_progress", "starting"),
            "poison": ("poison", "poison"), "orphan": ("no_run", "run_not_recorded")}


def by_id(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["message_id"]: m for m in answer["messages"]}


def test_given_a_dlq_after_an_outage_when_dry_run_then_each_message_is_planned_and_nothing_changes(
    cloud, dlq, mixed_dlq, lambda_context
) -> None:
    items_before = cloud.items()

    answer = redrive(lambda_context, dry_run=True)

    plans = by_id(answer)
    assert {name: (plans[i]["verdict"], plans[i]["reason"]) for name, i in mixed_dlq["ids"].items()} == EXPECTED
    assert (answer["dry_run"], answer["examined"], answer["more"]) == (True, 6, False)
    assert answer["verdicts"] == {"start": 2, "duplicate": 1, "in_progress": 1, "poison": 1, "no_run": 1}
    received = plans[mixed_dlq["ids"]["received"]]
    assert (received["run_id"], received["run_status"], received["workflow"], received["action"]) == (
        mixed_dlq["runs"]["received"], "received", "support_triage", "move")
    assert received["outcome"] == "starts workflow support_triage"
    assert plans[mixed_dlq["ids"]["started"]]["run_status"] == "processing"
    assert "done" not in received and "moved" not in answer
    # nothing moved, nothing written, and every message is visible again at once for the next look
    assert cloud.messages() == []
    assert cloud.items() == items_before
    assert len(cloud.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]) == 6
    assert redrive(lambda_context, dry_run=True)["verdicts"] == answer["verdicts"]  # the same plan again


def test_given_the_dry_run_when_redriven_then_exactly_the_runs_it_said_start_and_the_rest_as_planned(
    cloud, dlq, mixed_dlq, state_machine, lambda_context  # noqa: F811
) -> None:
    sfn, arn = state_machine
    said = by_id(redrive(lambda_context, dry_run=True))

    answer = redrive(lambda_context, dry_run=False)

    done = by_id(answer)
    assert {i: p["verdict"] for i, p in done.items()} == {i: p["verdict"] for i, p in said.items()}
    assert {i: d["done"] for i, d in done.items()} == {
        i: {"start": "moved", "duplicate": "removed"}.get(p["verdict"], "kept") for i, p in said.items()}
    assert (answer["moved"], answer["removed"], answer["failed"]) == (2, 1, 0)
    # the router starts exactly the runs the plan said would start, and no other
    records = ingest_records(cloud)
    before = set(executions_of(sfn, arn))
    assert deliver(lambda_context, *records) == {"batchItemFailures": []}
    started = set(executions_of(sfn, arn)) - before
    assert started == {said[i]["run_id"] for i, p in said.items() if p["verdict"] == "start"}
    assert started == {mixed_dlq["runs"]["received"], mixed_dlq["runs"]["stuck"]}
    runs = mixed_dlq["runs"]
    assert [(s, step, d.get("reason")) for s, step, d in timeline(runs["received"])][-2:] == [
        ("retried", "redrive", "redriven_from_dlq"), ("processing", "router", None)]
    assert timeline(runs["started"])[-1][:2] == ("duplicate", "redrive")
    assert timeline(runs["started"])[-1][2]["reason"] == "already_started"
    # what cannot start stays in the DLQ, for a person
    assert depth(cloud, dlq) == 3
    assert redrive(lambda_context, dry_run=True)["verdicts"] == {"in_progress": 1, "poison": 1, "no_run": 1}


def executions_of(sfn: Any, arn: str) -> list[str]:
    return [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]


def test_given_an_envelope_a_later_delivery_took_over_when_planned_then_it_is_a_superseded_duplicate(
    cloud, dlq, state_machine, lambda_context  # noqa: F811
) -> None:
    envelope = new_run()
    store = DynamoTimelineStore(TABLE_NAME)
    # a later delivery of the same event took the acceptance over (and queued a message of its own)
    assert store.take_over(envelope, store.dedupe_record(envelope.dedupe_key), "delivery-2")
    dead_letter(cloud, dlq, envelope.model_dump_json(), acceptance="delivery-1")

    plan = redrive(lambda_context, dry_run=True)["messages"][0]

    assert (plan["verdict"], plan["reason"]) == ("duplicate", "superseded")


# -- triggers: schedules, status changes (the throwaway workflow's) --------------------------------------------


def test_given_trigger_messages_when_redriven_then_only_those_never_started_start_once(
    cloud, dlq, machine, lambda_context  # noqa: F811
) -> None:
    from datetime import UTC, datetime

    sfn, arn = machine
    store = DynamoTimelineStore(TABLE_NAME)
    day = lambda d: firing(datetime(2026, 11, d, 6, 30, tzinfo=UTC))  # noqa: E731
    # the 20th: never accepted (the router failed before it could record anything)
    fresh = dead_letter(cloud, dlq, day(20))
    # the 21st: its first delivery created the run and died before starting it; SQS keeps the message's id
    created = dead_letter(cloud, dlq, day(21))
    assert store.create_run_once(envelope_of(day(21)), TRIGGER_DEDUPE_TTL_SECONDS, created)
    # the 22nd: started by another delivery (Scheduler's retry)
    deliver(lambda_context, sqs_record(day(22), message_id="retry-22"))
    done = dead_letter(cloud, dlq, day(22))
    # the 23rd: another delivery is accepting it right now
    assert store.create_run_once(envelope_of(day(23)), TRIGGER_DEDUPE_TTL_SECONDS, "other-23")
    busy = dead_letter(cloud, dlq, day(23))
    closed = dead_letter(cloud, dlq, stream_record("open", "closed"))  # no status change anyone watches

    said = by_id(redrive(lambda_context, dry_run=True))
    assert {i: (said[i]["kind"], said[i]["verdict"], said[i]["reason"]) for i in (fresh, created, done, busy, closed)
            } == {fresh: ("schedule", "start", "new_run"), created: ("schedule", "start", "created_not_started"),
                  done: ("schedule", "duplicate", "already_started"), busy: ("schedule", "in_progress",
                                                                             "acceptance_held"),
                  closed: ("status_change", "filtered", "not_a_declared_change")}
    assert said[created]["run_id"] == envelope_of(day(21)).run_id and said[created]["run_status"] == "received"

    answer = redrive(lambda_context, dry_run=False)
    assert (answer["moved"], answer["removed"]) == (2, 2)
    records = ingest_records(cloud)
    assert {r["messageAttributes"][DELIVERY_ATTRIBUTE]["stringValue"] for r in records} == {fresh, created}
    before = set(executions(sfn, arn))
    assert deliver(lambda_context, *records) == {"batchItemFailures": []}
    assert set(executions(sfn, arn)) - before == {envelope_of(day(20)).run_id, envelope_of(day(21)).run_id}
    assert store.dedupe_record(envelope_of(day(21)).dedupe_key).state is DedupeState.QUEUED
    assert depth(cloud, dlq) == 1  # the 23rd, kept

    # once the other delivery's acceptance is abandoned, the next plan takes it over
    later = time.time() + TRIGGER_STALE_SECONDS + 1
    plan = Planner(store, clock=lambda: later).plan(DeadLetter(message_id=busy, receipt="r", body=day(23)))
    assert (plan.verdict, plan.reason) == (Verdict.START, "abandoned_acceptance")


# -- the planner alone, and the API's answers to bad requests ---------------------------------------------------


def test_given_the_planner_then_a_stuck_run_starts_only_after_an_express_execution_could_have_lasted(
    cloud, state_machine  # noqa: F811
) -> None:
    envelope = stuck_processing(minutes_ago=0)
    letter = DeadLetter(message_id="m", receipt="r", body=envelope.model_dump_json())
    store = DynamoTimelineStore(TABLE_NAME)

    assert Planner(store).plan(letter).verdict is Verdict.IN_PROGRESS
    later = Planner(store, now=lambda: utcnow() + timedelta(seconds=EXPRESS_MAX_SECONDS + 1))
    assert later.plan(letter).verdict is Verdict.START


@pytest.mark.parametrize(("body", "status", "error"), [
    ("not json", 400, "bad_body"),
    ("[]", 400, "bad_request"),
    ('{"dry_run": "false"}', 400, "bad_request"),
    ('{"dry_run": 0}', 400, "bad_request"),
    ('{"limit": 0}', 400, "bad_request"),
    ('{"limit": 101}', 400, "bad_request"),
    ('{"limit": 1.5}', 400, "bad_request"),
    ('{"dry_run": false, "force": true}', 400, "bad_request"),
    ("[" * 5000 + "]" * 5000, 400, "bad_body"),
    ('{"dry_run": "\\ud800"}', 400, "bad_body"),
])
def test_given_a_bad_redrive_request_then_400_and_nothing_moves(cloud, dlq, lambda_context, body, status,
                                                                 error) -> None:
    dead_letter(cloud, dlq, '{"hello": "world"}')

    code, answer = call(lambda_context, "POST", "/dlqs/ingest/redrive", body)

    assert (code, answer["error"]) == (status, error)
    assert depth(cloud, dlq) == 1


def test_given_the_dlqs_when_listed_or_an_unknown_one_redriven_then_their_depths_or_404(
    cloud, dlq, lambda_context
) -> None:
    dead_letter(cloud, dlq, '{"hello": "world"}')
    dead_letter(cloud, dlq, f'{{"id": "{uuid.uuid4()}"}}')

    assert call(lambda_context, "GET", "/dlqs") == (200, {"dlqs": [{"name": "ingest", "messages": 2}]})
    code, answer = call(lambda_context, "POST", "/dlqs/nope/redrive")
    assert (code, answer["error"]) == (404, "unknown_dlq")
    code, answer = call(lambda_context, "POST", "/dlqs/ingest/redrive")  # no body: a dry run
    assert (code, answer["dry_run"], answer["examined"]) == (200, True, 2)
    assert depth(cloud, dlq) == 2


def test_given_a_limit_then_one_batch_reads_that_many_and_says_more_remain(cloud, dlq, lambda_context) -> None:
    for n in range(12):
        dead_letter(cloud, dlq, json.dumps({"poison": n}))

    code, answer = call(lambda_context, "POST", "/dlqs/ingest/redrive", '{"limit": 5}')

    assert (code, answer["examined"], answer["depth"], answer["more"]) == (200, 5, 12, True)
