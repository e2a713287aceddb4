"""A step whose Lambda times out is retried by the state machine's own Retry, and the run says so."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interlock.local.cloud import LocalCloud
from interlock.local.functions import LocalLambda
from interlock.models import EntryState, Envelope, run_id_for, utcnow
from interlock.timeline import DynamoTimelineStore
from interlock.topology import TOPOLOGY, Function, Ref, RefKind, StateMachine, Table, Topology

from .conftest import HANDLERS
from .support import API_URL, SECRETS


def _real_retry() -> list[dict[str, Any]]:
    """The Retry of the support triage's Validate task, as deployed."""
    definition = json.loads(TOPOLOGY.state_machine("support_triage").definition_path.read_text())
    return definition["States"]["Validate"]["Retry"]


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    asl = {
        "StartAt": "Slow",
        "States": {
            "Slow": {
                "Type": "Task",
                "Resource": "${SlowArn}",
                "Parameters": {"run_id.$": "$.run_id", "attempt.$": "$$.State.RetryCount"},
                "Retry": _real_retry(),
                "End": True,
            },
        },
    }
    path = tmp_path / "slow.asl.json"
    path.write_text(json.dumps(asl))
    topology = Topology(
        table=Table(),
        queues=(),
        functions=(Function(name="slow", module="lt_slow_once", description="test: times out once",
                            env={"INTERLOCK_TABLE_NAME": Ref(RefKind.TABLE_NAME)}, timeout_seconds=1),),
        routes=(),
        state_machines=(StateMachine("slow", str(path), {"SlowArn": "slow"}),),
        webhook_sources=(),
    )
    functions = LocalLambda(topology, functions_dir=HANDLERS)
    local = LocalCloud(topology, functions, API_URL, SECRETS)
    local.start()
    yield local
    local.stop()
    functions.close(timeout=2)
    sys.modules.pop("lt_slow_once", None)
    sys.modules.pop("lt_slow_state", None)


def _wait_until_done(sfn: Any, arn: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("the execution is still running")


def test_given_a_step_that_times_out_once_when_the_run_executes_then_it_is_retried_and_completes(
    cloud: LocalCloud,
) -> None:
    # Given a run, recorded as ingest records one
    key = "form:msg_timeout_once"
    envelope = Envelope(event_id="msg_timeout_once", source="form", type="support.ticket", payload_version="v1",
                        received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key), payload={})
    store = DynamoTimelineStore(cloud.deployed.table_name, client=cloud.client("dynamodb"))
    assert store.create_run_once(envelope, 3600)
    sfn = cloud.client("stepfunctions")

    # When its execution runs a step whose first attempt overruns the function's timeout
    arn = sfn.start_execution(stateMachineArn=cloud.deployed.state_machine_arns["slow"], name=envelope.run_id,
                              input=json.dumps({"run_id": envelope.run_id}))["executionArn"]
    described = _wait_until_done(sfn, arn)

    # Then Step Functions saw the Lambda time out (Sandbox.Timedout), retried it, and the run completed
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"attempt": 1}
    history = sfn.get_execution_history(executionArn=arn)["events"]
    failures = [e for e in history if e["type"] in ("LambdaFunctionFailed", "TaskFailed")]
    assert [next(v["error"] for k, v in e.items() if k.endswith("EventDetails")) for e in failures] == [
        "Sandbox.Timedout"]
    # And the timeline says attempt 0 was retried before attempt 1's work
    assert sys.modules["lt_slow_once"].FIRST_FINISHED.wait(5)  # (the overrun attempt, left running, is done)
    timeline = [(e.state, e.step, e.attempt) for e in store.get(envelope.run_id).timeline]
    assert timeline.index((EntryState.RETRIED, "slow_step", 0)) < timeline.index(
        (EntryState.PROCESSING, "slow_step", 1))
    retried = next(e for e in store.get(envelope.run_id).timeline if e.state is EntryState.RETRIED)
    assert retried.details["reason"] == "no_answer"
