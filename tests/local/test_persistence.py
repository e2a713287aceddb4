"""The local state across a restart: the file, the tables, the queues and a waiting execution's resume."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from interlock.local import persistence, sfn_bridge
from interlock.local.cloud import LocalCloud
from interlock.local.functions import LocalLambda
from interlock.local.persistence import InterruptedExecution, LocalState, Snapshot, StateFileError
from interlock.topology import Topology

from .support import API_URL, SECRETS

TABLE = "interlock-timeline"


def _cloud(topology: Topology, functions: LocalLambda, state: LocalState) -> LocalCloud:
    return LocalCloud(topology, functions, API_URL, SECRETS, environ={"INTERLOCK_SENDER_EMAIL": "me@example.com"},
                      state=state)


def _until(what: str, check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


# -- the file ------------------------------------------------------------------------------------------------


def test_a_snapshot_round_trips_through_its_file(tmp_path: Path) -> None:
    path = persistence.state_path(tmp_path)
    snapshot = Snapshot(
        saved_at=datetime.now(UTC),
        tables={TABLE: [{"pk": {"S": "run#1"}, "sk": {"S": "run"}, "n": {"N": "3"}}]},
        queues={"interlock-ingest": [persistence.QueuedMessage(body='{"a": 1}')]},
        executions=[InterruptedExecution(state_machine_arn="arn:sm", execution_arn="arn:ex", name="run-1",
                                         input="{}", start_date=datetime.now(UTC), state="Wait",
                                         state_input='{"x": 1}', entered_at=datetime.now(UTC),
                                         task_token="tok", timeout_seconds=60)],
    )

    persistence.write(path, snapshot)

    assert persistence.read(path) == snapshot
    assert json.loads(path.read_text())["version"] == persistence.VERSION
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_no_file_is_no_saved_state(tmp_path: Path) -> None:
    assert persistence.read(persistence.state_path(tmp_path)) is None


@pytest.mark.parametrize("content, says", [
    ("{not json", "not valid JSON"),
    ('{"format": "something-else"}', "not a saved Interlock local state"),
    ('{"format": "interlock-local-state", "version": 99}', "version 99"),
    ('{"format": "interlock-local-state", "version": 1, "tables": []}', "malformed"),
])
def test_an_unusable_file_stops_with_how_to_start_clean(tmp_path: Path, content: str, says: str) -> None:
    path = persistence.state_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(content)

    with pytest.raises(StateFileError, match=says) as raised:
        persistence.read(path)
    assert "interlock run --fresh" in str(raised.value)
    assert path.read_text() == content  # nothing discarded


def test_a_resumed_definition_starts_at_the_state_with_what_remains_of_its_timeout() -> None:
    definition = json.dumps({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Task", "Resource": "arn:x", "TimeoutSecondsPath": "$.t", "End": True}}})

    resumed = json.loads(sfn_bridge.resume_definition(definition, "B", 42))

    assert resumed["StartAt"] == "B"
    assert resumed["States"]["B"]["TimeoutSeconds"] == 42
    assert "TimeoutSecondsPath" not in resumed["States"]["B"]
    with pytest.raises(KeyError):
        sfn_bridge.resume_definition(definition, "Gone")


def test_a_waiting_execution_resumes_with_the_time_it_had_left(monkeypatch: pytest.MonkeyPatch) -> None:
    plans: list[sfn_bridge.ResumePlan] = []
    monkeypatch.setattr(sfn_bridge, "resume", plans.append)

    class Sfn:
        def describe_state_machine(self, stateMachineArn: str) -> dict[str, Any]:
            return {"definition": json.dumps({"StartAt": "A", "States": {"A": {
                "Type": "Task", "Resource": "arn:x", "TimeoutSecondsPath": "$.t", "End": True}}})}

        def start_execution(self, **_: Any) -> None:
            pass

    now = datetime.now(UTC)
    saved = InterruptedExecution(state_machine_arn="arn:sm", execution_arn="arn:ex", name="run-1", input="{}",
                                 start_date=now, state="A", state_input="{}", entered_at=now - timedelta(hours=1),
                                 task_token="tok", timeout_seconds=3 * 3600)
    monkeypatch.setattr(persistence, "_keep_identity", lambda _: None)

    persistence.resume_executions(Sfn(), [saved], now=now)

    assert json.loads(plans[0].definition)["States"]["A"]["TimeoutSeconds"] == 2 * 3600
    assert plans[0].task_token == "tok"


# -- through the local cloud -----------------------------------------------------------------------------------


def test_items_messages_and_a_waiting_execution_survive_a_restart(
        tmp_path: Path, topology: Topology, functions: LocalLambda, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cloud with an item, an expired item, a queued and a dead-lettered message, and an execution
    # waiting for its callback, stopped the way the runtime stops (saved once more, then stopped)
    state = LocalState(tmp_path)
    state.load()
    first = _cloud(topology, functions, state)
    first.start()
    try:
        dynamodb, sqs, sfn = first.client("dynamodb"), first.client("sqs"), first.client("stepfunctions")
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "run#1"}, "sk": {"S": "run"}, "status": {"S": "done"},
                                                 "kept": {"B": b"\x78\x9c\xff\x00"}, "set": {"BS": [b"\x01", b"\xfe"]}})
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "run#0"}, "sk": {"S": "run"},
                                                 "expires_at": {"N": str(int(time.time()) - 60)}})
        sqs.send_message(QueueUrl=first.deployed.queue_urls["work"], MessageBody='{"event": 1}',
                         MessageAttributes={"kind": {"DataType": "String", "StringValue": "ticket"}})
        sqs.send_message(QueueUrl=first.dlq_url("work"), MessageBody='{"event": 0}')
        arn = first.deployed.state_machine_arns["catch"]
        execution_arn = sfn.start_execution(stateMachineArn=arn, name="run-1",
                                            input=json.dumps({"id": "run-1"}))["executionArn"]
        token = _until("the execution waits for its callback", lambda: next(
            (e.task_token for e in first.capture().executions if e.execution_arn == execution_arn), None))
        state.attach(first.capture)
        state.stop(final=True)
    finally:
        first.stop()
    invoked: list[str] = []
    invoke = functions.invoke

    def counting(function: str, event: Any) -> Any:
        invoked.append(functions.resolve(function).name)
        return invoke(function, event)

    monkeypatch.setattr(functions, "invoke", counting)

    # When a new cloud starts on the same state directory
    state = LocalState(tmp_path)
    state.load()
    second = _cloud(topology, functions, state)
    second.start()
    try:
        second.resume_executions()
        dynamodb, sqs, sfn = second.client("dynamodb"), second.client("sqs"), second.client("stepfunctions")

        # Then the items are back, except the one past its TTL
        items = dynamodb.scan(TableName=TABLE)["Items"]
        assert items == [{"pk": {"S": "run#1"}, "sk": {"S": "run"}, "status": {"S": "done"},
                          "kept": {"B": b"\x78\x9c\xff\x00"}, "set": {"BS": [b"\x01", b"\xfe"]}}]  # binary: an envelope
        # and so are the messages, each on its queue
        queued = sqs.receive_message(QueueUrl=second.deployed.queue_urls["work"], MessageAttributeNames=["All"])
        assert [(m["Body"], m["MessageAttributes"]["kind"]["StringValue"]) for m in queued["Messages"]] == [
            ('{"event": 1}', "ticket")]
        dead = sqs.receive_message(QueueUrl=second.dlq_url("work"))["Messages"]
        assert [m["Body"] for m in dead] == ['{"event": 0}']
        # and the execution waits again, for the same token, without its task's Lambda invoked again
        _until("the resumed execution is running",
               lambda: sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING")
        sfn.send_task_success(taskToken=token, output=json.dumps({"decision": "approved"}))
        described = _until("the resumed execution succeeds", lambda: (
            d := sfn.describe_execution(executionArn=execution_arn))["status"] == "SUCCEEDED" and d)
        assert json.loads(described["output"])["approval"] == {"decision": "approved"}
        assert json.loads(described["output"])["error"]["Error"] == "PartnerDown"  # the state's input, kept
        assert json.loads(described["input"]) == {"id": "run-1"}  # DescribeExecution shows the original input
        assert invoked == []  # the task's Lambda was not invoked again
    finally:
        second.stop()


# -- starting clean, or not at all ------------------------------------------------------------------------------


def test_interlock_run_with_an_unreadable_state_file_stops_with_a_clear_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from interlock import cli

    path = persistence.state_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"format": "interlock-local-state", "version": 0}')

    status = cli.main(["run", "--state-dir", str(tmp_path), "--port", "0"])

    error = capsys.readouterr().err
    assert status == 1
    assert error.startswith("interlock: error: ") and "Traceback" not in error
    assert "interlock run --fresh" in error
    assert path.exists()


def test_a_fresh_start_discards_the_saved_state_and_a_stop_saves_the_new_one(
        tmp_path: Path, topology: Topology) -> None:
    from interlock.local.runtime import LocalRuntime

    from .conftest import HANDLERS

    path = persistence.state_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("not the state of anything")
    local = LocalRuntime(port=0, state_dir=tmp_path, topology=topology, fresh=True,
                         functions=LocalLambda(topology, functions_dir=HANDLERS), echo=None)

    with local:
        local.cloud.client("dynamodb").put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "sk": {"S": "b"}})

    saved = persistence.read(path)
    assert saved is not None
    assert saved.tables[TABLE] == [{"pk": {"S": "a"}, "sk": {"S": "b"}}]


def test_a_change_is_saved_soon_after_it_without_a_stop(
        tmp_path: Path, topology: Topology, functions: LocalLambda) -> None:
    # Given a cloud whose state is kept by the flusher (what a crash, kill -9, would leave on disk)
    state = LocalState(tmp_path, interval=0.05)
    state.load()
    cloud = _cloud(topology, functions, state)
    cloud.start()
    state.attach(cloud.capture)
    state.start()
    try:
        # When an item is written and a message queued
        cloud.client("dynamodb").put_item(TableName=TABLE, Item={"pk": {"S": "run#9"}, "sk": {"S": "run"}})
        cloud.client("sqs").send_message(QueueUrl=cloud.deployed.queue_urls["work"], MessageBody="queued")

        # Then the file soon holds both, with no stop in between
        def saved() -> Snapshot | None:
            found = persistence.read(state.path)
            ok = found and found.tables[TABLE] and [m.body for m in found.queues["interlock-work"]] == ["queued"]
            return found if ok else None

        assert _until("the change is saved", saved).tables[TABLE] == [{"pk": {"S": "run#9"}, "sk": {"S": "run"}}]
    finally:
        state.stop(final=False)
        cloud.stop()
