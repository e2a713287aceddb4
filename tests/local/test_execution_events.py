"""The execution watch's EventBridge rule, emulated: Step Functions' status changes as events, to the watchdog."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from interlock.errors import RUN_FAILED
from interlock.local.cloud import LocalCloud
from interlock.local.execution_events import ExecutionStatusEvents
from interlock.local.functions import Invocation, LambdaError, LocalLambda
from interlock.local.runtime import LocalRuntime
from interlock.models import Envelope, run_id_for, utcnow
from interlock.timeline import DynamoTimelineStore
from interlock.topology import ExecutionWatch, Function, Ref, RefKind, StateMachine, Topology

from .conftest import HANDLERS, build_topology

UNGUARDED_ASL = {  # a task whose error nothing catches
    "StartAt": "CallPartner",
    "States": {"CallPartner": {"Type": "Task", "Resource": "${FailArn}", "End": True}},
}
RECORDED_ASL = {  # the shape of a workflow's end after RecordFailure
    "StartAt": "Failed",
    "States": {"Failed": {"Type": "Fail", "Error": RUN_FAILED, "Cause": "on the timeline"}},
}


@pytest.fixture
def topology(tmp_path: Path) -> Topology:
    """The local tests' topology, plus two failing workflows watched by the real watchdog handler."""
    base = build_topology(tmp_path)
    machines = []
    for name, asl, substitutions in (("unguarded", UNGUARDED_ASL, {"FailArn": "fail"}),
                                     ("recorded", RECORDED_ASL, {})):
        path = tmp_path / f"{name}.asl.json"
        path.write_text(json.dumps(asl))
        machines.append(StateMachine(name, str(path), substitutions))
    watchdog = Function(name="watchdog", module="lt_watchdog", description="test: the watchdog",
                        env={"INTERLOCK_TABLE_NAME": Ref(RefKind.TABLE_NAME)})
    return dataclasses.replace(
        base,
        functions=(*base.functions, watchdog),
        state_machines=(*base.state_machines, *machines),
        execution_watches=(ExecutionWatch("failures", "watchdog", ("unguarded", "recorded")),),
    )


def _wait(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def _failed_execution(cloud: LocalCloud, machine: str, name: str) -> str:
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=cloud.deployed.state_machine_arns[machine], name=name,
                              input=json.dumps({"run_id": name}))["executionArn"]
    _wait(lambda: sfn.describe_execution(executionArn=arn)["status"] == "FAILED")
    return str(arn)


class Recorder:
    """Stands in for the local Lambda runtime: remembers each event, fails the first ``failures`` invokes."""

    def __init__(self, failures: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.failures = failures

    def __call__(self, function: str, event: dict[str, Any]) -> Invocation:
        self.events.append(event)
        if len(self.events) <= self.failures:
            return Invocation(function, "req-1", error=LambdaError("RuntimeError", "table unavailable", "req-1"))
        return Invocation(function, "req-1", payload={"outcome": "recorded"})


def _poller(cloud: LocalCloud, topology: Topology, invoke: Recorder) -> ExecutionStatusEvents:
    watch = topology.execution_watch("failures")
    return ExecutionStatusEvents(watch, cloud.deployed.state_machine_arns, invoke, cloud.client("stepfunctions"),
                                 cloud.client("sqs"), cloud.watch_dlq_urls["failures"],
                                 cloud.functions.arn("watchdog"), cloud.region, "123456789012")


def test_a_failed_execution_is_announced_once_as_eventbridges_status_change_event(
    cloud: LocalCloud, topology: Topology
) -> None:
    # Given an execution that failed on a task error nothing catches
    execution = _failed_execution(cloud, "unguarded", "run-1")
    recorder = Recorder()
    poller = _poller(cloud, topology, recorder)

    # When the emulated rule polls, twice
    delivered = [poller.poll_once(), poller.poll_once()]

    # Then one event, shaped as EventBridge delivers Step Functions' event to a Lambda target
    assert delivered == [1, 0]
    (event,) = recorder.events
    assert {k: event[k] for k in ("version", "detail-type", "source", "account", "region", "resources")} == {
        "version": "0", "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "account": "123456789012", "region": "us-east-1", "resources": [execution],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    detail = event["detail"]
    assert (detail["executionArn"], detail["name"], detail["status"]) == (execution, "run-1", "FAILED")
    assert detail["stateMachineArn"] == cloud.deployed.state_machine_arns["unguarded"]
    assert isinstance(detail["startDate"], int) and detail["startDate"] <= detail["stopDate"]  # epoch ms
    assert detail["stopDate"] > 1_600_000_000_000
    assert json.loads(detail["input"]) == {"run_id": "run-1"} and detail["inputDetails"] == {"included": True}
    assert detail["output"] is None and detail["outputDetails"] is None
    assert detail["error"] == "PartnerDown"
    assert json.loads(detail["cause"])["errorType"] == "PartnerDown"
    assert detail["redriveCount"] == 0


def test_a_failing_function_is_retried_then_its_invocation_record_lands_in_the_dlq(
    cloud: LocalCloud, topology: Topology
) -> None:
    # Given a failed execution, and a watchdog that fails every time
    _failed_execution(cloud, "unguarded", "run-2")
    recorder = Recorder(failures=99)
    poller = _poller(cloud, topology, recorder)
    attempts = 1 + topology.execution_watch("failures").async_retry_attempts

    # When the rule polls until it gives up
    delivered = [poller.poll_once() for _ in range(attempts + 1)]

    # Then the same event was tried 1 + retries times, then Lambda's invocation record went to the DLQ
    assert delivered == [1] * attempts + [0]
    assert len({e["id"] for e in recorder.events}) == 1
    sqs = cloud.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=cloud.watch_dlq_urls["failures"], MaxNumberOfMessages=10)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == attempts
    assert record["requestContext"]["functionArn"] == cloud.functions.arn("watchdog") + ":$LATEST"
    assert record["requestPayload"] == recorder.events[0]
    assert record["responsePayload"]["errorType"] == "RuntimeError"


@pytest.fixture
def runtime(topology: Topology, tmp_path: Path) -> Iterator[LocalRuntime]:
    local = LocalRuntime(port=0, state_dir=tmp_path / "state", topology=topology,
                         functions=LocalLambda(topology, functions_dir=HANDLERS), echo=None,
                         poll_idle_seconds=0.02, watch_poll_seconds=0.05)
    with local:
        yield local


def _new_run(store: DynamoTimelineStore, key: str) -> str:
    envelope = Envelope(event_id=key, source="form", type="support.ticket", payload_version="v1",
                        received_at=utcnow(), dedupe_key=f"form:{key}", run_id=run_id_for(f"form:{key}"), payload={})
    assert store.create_run_once(envelope, 3600)
    return envelope.run_id


def test_an_execution_failing_outside_any_catch_ends_its_run_failed_through_the_watchdog(
    runtime: LocalRuntime,
) -> None:
    # Given two runs, whose executions fail: one on an uncaught task error, one in the RunFailed state
    cloud = runtime.cloud
    assert cloud is not None and cloud.deployed is not None
    store = DynamoTimelineStore(cloud.deployed.table_name, client=cloud.client("dynamodb"))
    uncaught, recorded = _new_run(store, "msg_uncaught"), _new_run(store, "msg_recorded")

    # When their executions fail
    execution = _failed_execution(cloud, "unguarded", uncaught)
    skipped = _failed_execution(cloud, "recorded", recorded)

    # Then the emulated rule hands the uncaught failure to the watchdog, which ends the run with a reason
    view = _wait(lambda: (v := store.get(uncaught)) is not None and v.status.value == "failed" and v)
    entry = view.timeline[-1]
    assert (entry.state.value, entry.step) == ("failed", "execution")
    assert entry.details["reason"] == "execution_failed"
    assert entry.details["error"] == "PartnerDown"
    assert entry.details["execution_arn"] == execution
    # ...and leaves the RunFailed one alone: the workflow recorded it (here: nothing, so it stays received)
    (watch,) = runtime.execution_watches
    _wait(lambda: skipped in watch.announced)
    other = store.get(recorded)
    assert other is not None and other.status.value == "received"
    assert [e.step for e in other.timeline] == ["ingest"]
