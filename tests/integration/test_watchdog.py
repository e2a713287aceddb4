"""The watchdog through its real handler (functions/events_execution_status.py), against moto DynamoDB."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import events_execution_status
import pytest
from interlock.errors import RUN_FAILED
from interlock.models import EntryState, Envelope, TimelineEntry, run_id_for, utcnow
from interlock.timeline import DynamoTimelineStore
from pydantic import ValidationError

from integration.support import ACCOUNT, REGION, TABLE_NAME

MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:interlock-support_triage"


def new_processing_run() -> str:
    key = f"form:msg_{uuid.uuid4().hex[:12]}"
    envelope = Envelope(event_id=key.split(":")[1], source="form", type="support.ticket", payload_version="v1",
                        received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key), payload={})
    store = DynamoTimelineStore(TABLE_NAME)
    assert store.create_run_once(envelope, 3600)
    store.record(envelope.run_id, TimelineEntry(state=EntryState.PROCESSING, step="router"), "support_triage")
    return envelope.run_id


def status_event(run_id: str, status: str = "FAILED", error: str | None = "States.Runtime",
                 cause: str | None = "An error occurred while executing the state 'Validate'",
                 redrive_count: int = 0) -> dict[str, Any]:
    """A "Step Functions Execution Status Change" event as EventBridge delivers it to a Lambda target."""
    execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:interlock-support_triage:{run_id}"
    stopped = int(time.time()) * 1000
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": datetime.fromtimestamp(stopped / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [execution],
        "detail": {
            "executionArn": execution,
            "stateMachineArn": MACHINE,
            "name": run_id,
            "status": status,
            "startDate": stopped - 5000,
            "stopDate": stopped,
            "input": json.dumps({"run_id": run_id}),
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
            "error": error,
            "cause": cause,
            "redriveCount": redrive_count,
        },
    }


def published(capsys: pytest.CaptureFixture[str]) -> list[str]:
    names: list[str] = []
    for line in capsys.readouterr().out.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "_aws" in doc:
            names += [m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return names


def timeline(run_id: str) -> tuple[str, list[tuple[str, str, dict[str, Any]]]]:
    view = DynamoTimelineStore(TABLE_NAME).get(run_id)
    assert view is not None
    return view.status.value, [(e.state.value, e.step, e.details) for e in view.timeline]


def test_given_an_execution_failed_outside_any_catch_when_its_event_arrives_then_the_run_ends_failed_with_a_reason(
    cloud, lambda_context, capsys
):
    run_id = new_processing_run()
    capsys.readouterr()

    event = status_event(run_id)

    answer = events_execution_status.handler(event, lambda_context)

    assert answer == {"run_id": run_id, "outcome": "recorded", "reason": "execution_failed"}
    status, entries = timeline(run_id)
    assert status == "failed"
    stopped = datetime.fromtimestamp(event["detail"]["stopDate"] / 1000, UTC).isoformat()
    assert entries[-1] == ("failed", "execution", {
        "reason": "execution_failed",
        "error": "States.Runtime",
        "cause": "An error occurred while executing the state 'Validate'",
        "execution_arn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:interlock-support_triage:{run_id}",
        "status": "FAILED",
        "stopped_at": stopped,
    })
    assert published(capsys) == ["ExecutionFailuresRecorded", "RunsFailed"]


def test_given_the_same_event_delivered_twice_then_one_entry_and_one_count(cloud, lambda_context, capsys):
    run_id = new_processing_run()
    event = status_event(run_id, status="ABORTED", error=None, cause=None)
    events_execution_status.handler(event, lambda_context)
    capsys.readouterr()

    again = events_execution_status.handler({**event, "id": str(uuid.uuid4())}, lambda_context)

    assert again["outcome"] == "duplicate"
    _, entries = timeline(run_id)
    assert [(s, step) for s, step, _ in entries].count(("failed", "execution")) == 1
    assert entries[-1][2]["reason"] == "execution_aborted"
    assert published(capsys) == []


def test_given_a_redriven_execution_that_fails_again_then_its_second_ending_is_recorded_too(cloud, lambda_context):
    run_id = new_processing_run()
    events_execution_status.handler(status_event(run_id, status="TIMED_OUT", error=None), lambda_context)

    again = events_execution_status.handler(status_event(run_id, redrive_count=1), lambda_context)

    assert again["outcome"] == "kept_status"
    _, entries = timeline(run_id)
    assert [d["reason"] for s, step, d in entries if step == "execution"] == ["execution_timed_out",
                                                                            "execution_failed"]


def test_given_a_run_already_terminal_then_the_entry_is_added_and_the_status_kept(cloud, lambda_context, capsys):
    run_id = new_processing_run()
    DynamoTimelineStore(TABLE_NAME).record(run_id, TimelineEntry(state=EntryState.COMPLETED, step="send_reply"))
    capsys.readouterr()

    answer = events_execution_status.handler(status_event(run_id, status="ABORTED", error="Operator"),
                                             lambda_context)

    assert answer["outcome"] == "kept_status"
    status, entries = timeline(run_id)
    assert status == "completed"
    assert entries[-1][:2] == ("failed", "execution")
    assert published(capsys) == ["ExecutionFailuresRecorded"]


def test_given_the_workflows_own_run_failed_state_then_nothing_is_written(cloud, lambda_context):
    run_id = new_processing_run()
    before = cloud.items()

    answer = events_execution_status.handler(
        status_event(run_id, error=RUN_FAILED, cause="The run's failure and its reason are on its timeline."),
        lambda_context,
    )

    assert answer == {"run_id": run_id, "outcome": "already_recorded"}
    assert cloud.items() == before


def test_given_an_execution_of_no_run_then_nothing_is_written(cloud, lambda_context):
    answer = events_execution_status.handler(status_event("started-by-hand"), lambda_context)

    assert answer["outcome"] == "unknown_run"
    assert cloud.items() == []


def test_given_an_event_that_is_not_an_execution_status_change_then_the_invocation_fails(cloud, lambda_context):
    """A failed invocation is retried by Lambda, then lands in the watch's DLQ: it is never dropped silently."""
    event = {**status_event(new_processing_run()), "source": "aws.events"}

    with pytest.raises(ValidationError):
        events_execution_status.handler(event, lambda_context)
