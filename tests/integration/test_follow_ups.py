"""Follow-up runs through moto: a step's ``start_runs`` sends its messages to the ingest queue (the real queue
starter, on moto SQS), and the real queue router creates and starts one run of the workflow per follow-up key; the
same follow-up sent again is a duplicate on the router's side, and a follow-up no workflow declares is poison."""

from __future__ import annotations

import json
from typing import Any

import pytest
from interlock.kit.context import Services, StepContext
from interlock.kit.follow_ups import FOLLOW_UP_MESSAGE_KIND, follow_up_run_id
from interlock.kit.services import _starter
from interlock.timeline import DedupeState, DynamoTimelineStore
from interlock.topology import TOPOLOGY

from integration.support import ACCOUNT, REGION, TABLE_NAME
from integration.test_queue_router import deliver, sqs_record, timeline

WORKFLOW = "invoice_intake"
FOLLOW_UP = "past_due"
CHECK_RUN = "6f1c2c57-1d3e-5a4b-9c8d-0e1f2a3b4c5d"  # the daily check's run, which starts the follow-ups


@pytest.fixture
def machine(cloud, monkeypatch) -> tuple[Any, str]:
    """Invoice intake's automatic state machine (non-executing, on moto) and the router's settings."""
    import boto3

    sm = TOPOLOGY.state_machine(WORKFLOW)
    definition = sm.definition_path.read_text()
    for placeholder, function in sm.function_substitutions.items():
        definition = definition.replace("${" + placeholder + "}",
                                        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:interlock-{function}")
    for placeholder, other in sm.state_machine_substitutions.items():
        definition = definition.replace("${" + placeholder + "}",
                                        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:interlock-{other}")
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(name="interlock-invoice-intake", definition=definition, type=sm.type.value,
                                   roleArn=f"arn:aws:iam::{ACCOUNT}:role/interlock-states")["stateMachineArn"]
    monkeypatch.setenv("INTERLOCK_STATE_MACHINE_ARNS", json.dumps({WORKFLOW: arn}))
    return sfn, arn


def check_step() -> StepContext:
    """The daily check's step as its worker makes it: the starter is the one the worker's environment gives (the
    cloud fixture's INTERLOCK_INGEST_QUEUE_URL, the moto queue)."""
    start = _starter()
    assert start is not None
    return StepContext(run_id=CHECK_RUN, attempt=0, workflow=WORKFLOW, step="find_past_due", deadline=None,
                       services=Services(timeline=DynamoTimelineStore(TABLE_NAME), start=start),
                       starts=(FOLLOW_UP,))


def drain(cloud) -> list[dict[str, Any]]:
    """Every message on the ingest queue, received and deleted, as the event source mapping hands them over."""
    taken: list[dict[str, Any]] = []
    while True:
        answer = cloud.sqs.receive_message(QueueUrl=cloud.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = answer.get("Messages", [])
        if not batch:
            return taken
        taken += batch
        cloud.sqs.delete_message_batch(QueueUrl=cloud.queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def route(lambda_context, queued: list[dict[str, Any]]) -> dict[str, Any]:
    return deliver(lambda_context, *(sqs_record(m["Body"], message_id=m["MessageId"]) for m in queued))


def executions(sfn: Any, arn: str) -> dict[str, dict[str, Any]]:
    """The machine's executions by name, each with its input."""
    return {e["name"]: json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
            for e in sfn.list_executions(stateMachineArn=arn)["executions"]}


def test_given_a_step_that_starts_a_follow_up_when_its_message_is_routed_then_the_workflow_runs_it(
    machine, cloud, lambda_context
) -> None:
    sfn, arn = machine
    key = "invoice:LE-000042:2026-12-02"

    [run_id] = check_step().start_runs(FOLLOW_UP, [(key, {"invoice_id": "LE-000042", "as_of": "2026-12-02"})])

    queued = drain(cloud)
    assert len(queued) == 1
    assert json.loads(queued[0]["Body"])["kind"] == FOLLOW_UP_MESSAGE_KIND
    assert route(lambda_context, queued) == {"batchItemFailures": []}

    assert run_id == follow_up_run_id(WORKFLOW, FOLLOW_UP, key)
    started = executions(sfn, arn)
    assert list(started) == [run_id]  # the execution is named by the run id the step was told
    envelope = started[run_id]["envelope"]
    assert (envelope["source"], envelope["type"], envelope["payload_version"]) == (
        "workflow", "invoice_intake.past_due", "follow_up.v1")
    assert envelope["payload"] == {"workflow": WORKFLOW, "follow_up": FOLLOW_UP, "key": key, "started_by": CHECK_RUN,
                                   "data": {"invoice_id": "LE-000042", "as_of": "2026-12-02"}}
    assert [(s, step) for s, step, _ in timeline(run_id)] == [("received", "ingest"), ("processing", "router")]
    received = timeline(run_id)[0][2]
    assert (received["event_source"], received["event_type"]) == ("workflow", "invoice_intake.past_due")
    store = DynamoTimelineStore(TABLE_NAME)
    kept = store.envelope(run_id)  # kept for replay, as every run's event is
    assert kept is not None and kept.model_dump(mode="json") == envelope
    record = store.dedupe_record(f"follow_up:invoice_intake.past_due:{key}")
    assert record is not None and record.state is DedupeState.QUEUED and record.run_id == run_id
    view = store.get(run_id)
    assert view is not None and view.workflow == WORKFLOW


def test_given_the_same_follow_up_sent_twice_then_one_run_and_the_second_is_a_duplicate_on_the_router(
    machine, cloud, lambda_context
) -> None:
    sfn, arn = machine
    key = "invoice:LE-000007:2026-12-02"
    step = check_step()

    first = step.start_runs(FOLLOW_UP, [(key, {"invoice_id": "LE-000007"})])
    route(lambda_context, drain(cloud))
    again = step.start_runs(FOLLOW_UP, [(key, {"invoice_id": "LE-000007"})])  # the check fired twice on a day
    [second] = drain(cloud)
    assert route(lambda_context, [second]) == {"batchItemFailures": []}
    route(lambda_context, [second])  # and that message delivered again: still one duplicate entry

    assert first == again
    assert list(executions(sfn, arn)) == first
    entries = timeline(first[0])
    assert [(s, step) for s, step, _ in entries] == [("received", "ingest"), ("processing", "router"),
                                                    ("duplicate", "router")]
    assert entries[-1][2] == {"event_source": "workflow", "event_type": "invoice_intake.past_due",
                              "event_id": f"invoice_intake.past_due:{key}"}
    # the next day's key for the same invoice is a run of its own
    [later] = step.start_runs(FOLLOW_UP, [("invoice:LE-000007:2026-12-03", {"invoice_id": "LE-000007"})])
    route(lambda_context, drain(cloud))
    assert sorted(executions(sfn, arn)) == sorted([first[0], later])


def test_given_more_follow_ups_than_one_batch_then_each_reaches_the_queue_once_and_starts_its_run(
    machine, cloud, lambda_context
) -> None:
    sfn, arn = machine
    items = [(f"invoice:LE-{n:06d}:2026-12-02", {"invoice_id": f"LE-{n:06d}"}) for n in range(1, 24)]

    run_ids = check_step().start_runs(FOLLOW_UP, items)  # three SendMessageBatch requests: 10, 10 and 3

    queued = drain(cloud)
    assert sorted(json.loads(m["Body"])["key"] for m in queued) == sorted(k for k, _ in items)
    for start in range(0, len(queued), 10):  # the event source mapping's batches of ten
        assert route(lambda_context, queued[start:start + 10]) == {"batchItemFailures": []}
    assert sorted(executions(sfn, arn)) == sorted(run_ids)
    assert len(set(run_ids)) == 23


def test_given_a_follow_up_no_workflow_declares_on_the_queue_then_it_is_poison_and_starts_nothing(
    machine, cloud, lambda_context
) -> None:
    sfn, arn = machine
    body = json.dumps({"kind": FOLLOW_UP_MESSAGE_KIND, "workflow": WORKFLOW, "follow_up": "weekly_reminder",
                       "key": "invoice:LE-000042:2026-12-02", "started_by": CHECK_RUN, "data": {}})
    good = check_step()
    [run_id] = good.start_runs(FOLLOW_UP, [("invoice:LE-000042:2026-12-02", {})])
    [queued] = drain(cloud)

    result = deliver(lambda_context, sqs_record(body, message_id="poison-1"),
                     sqs_record(queued["Body"], message_id=queued["MessageId"]))

    assert result == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}  # retried, then the DLQ
    assert list(executions(sfn, arn)) == [run_id]  # the declared one beside it started
    store = DynamoTimelineStore(TABLE_NAME)
    assert store.dedupe_record("follow_up:invoice_intake.weekly_reminder:invoice:LE-000042:2026-12-02") is None
