"""moto lets go of what the local runtime never reads again (interlock.local.moto_memory), and parses each state
machine definition once (interlock.local.sfn_bridge.parsed_program)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from interlock.local import moto_memory
from interlock.local.sfn_bridge import parsed_program
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import Item
from moto.stepfunctions.parser.utils import TMP_THREADS

ROLE = "arn:aws:iam::123456789012:role/states"
PASS_ASL = json.dumps({
    "StartAt": "First",
    "States": {
        "First": {"Type": "Pass", "Result": {"ok": True}, "ResultPath": "$.first", "Next": "Second"},
        "Second": {"Type": "Pass", "End": True},
    },
})


@pytest.fixture
def sfn() -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        uninstall = moto_memory.install(keep_histories=2)
        try:
            yield boto3.client("stepfunctions", region_name="us-east-1")
        finally:
            uninstall()


def _finished(sfn: Any, arn: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.02)
    raise AssertionError(f"{arn} did not finish")


def test_model_instances_are_not_kept_for_moto_servers_dashboard(sfn: Any) -> None:
    before = len(Item.instances_tracked)  # type: ignore[attr-defined]
    Item(hash_key=None, range_key=None, attrs={"pk": {"S": "a"}})
    assert len(Item.instances_tracked) == before  # type: ignore[attr-defined]


def test_given_more_finished_executions_than_kept_then_the_oldest_histories_are_let_go(sfn: Any) -> None:
    machine = sfn.create_state_machine(name="passes", definition=PASS_ASL, roleArn=ROLE)["stateMachineArn"]
    arns = []
    for i in range(3):
        arn = sfn.start_execution(stateMachineArn=machine, name=f"run-{i}", input=json.dumps({"i": i}))["executionArn"]
        _finished(sfn, arn)
        arns.append(arn)

    histories = [sfn.get_execution_history(executionArn=arn)["events"] for arn in arns]
    assert histories[0] == []  # past the two kept
    assert all(h and h[-1]["type"] == "ExecutionSucceeded" for h in histories[1:])
    oldest = sfn.describe_execution(executionArn=arns[0])
    assert oldest["status"] == "SUCCEEDED"  # what the watchdog's poller reads is all still there
    assert json.loads(oldest["output"]) == {"i": 0, "first": {"ok": True}}
    assert json.loads(oldest["input"]) == {"i": 0}
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=machine, statusFilter="SUCCEEDED")["executions"]] \
        == ["run-2", "run-1", "run-0"]
    # ended threads are not kept (the last one ends after its execution is reported finished)
    assert len([thread for thread in TMP_THREADS if not thread.is_alive()]) <= 1


def test_a_task_token_callback_still_looks_through_every_execution(sfn: Any) -> None:
    """moto asks every execution's environment who holds a token: one whose history was let go still answers."""
    machine = sfn.create_state_machine(name="passes", definition=PASS_ASL, roleArn=ROLE)["stateMachineArn"]
    for i in range(3):
        _finished(sfn, sfn.start_execution(stateMachineArn=machine, name=f"run-{i}")["executionArn"])

    with pytest.raises(ClientError) as raised:
        sfn.send_task_failure(taskToken="no-such-token", error="E", cause="C")
    assert raised.value.response["Error"]["Code"] == "InvalidToken"


def test_a_definition_is_parsed_once_with_every_heap_key_made() -> None:
    from moto.stepfunctions.parser.asl.component.component import Component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    program = parsed_program(PASS_ASL)

    assert parsed_program(PASS_ASL) is program
    assert parsed_program(PASS_ASL + " ") is not program
    components: list[EvalComponent] = []
    pending: list[Any] = [program]
    seen: set[int] = set()
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, EvalComponent):
            components.append(value)
        if isinstance(value, Component):
            pending.extend(vars(value).values())
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
    assert len(components) > 3
    # made already: no two executions sharing the program can race to make different ones
    assert all(c._EvalComponent__heap_key is not None for c in components)  # type: ignore[attr-defined]


def test_a_jsonpath_is_parsed_once_and_still_finds_what_it_names() -> None:
    from interlock.local import moto_jsonpath
    from moto.stepfunctions.parser.asl.utils import json_path

    uninstall = moto_jsonpath.install()
    try:
        assert json_path.parse("$.a.b[1]") is json_path.parse("$.a.b[1]")
        assert json_path.extract_json("$.a.b[1]", {"a": {"b": [1, 2]}}) == 2
        assert json_path.extract_json("$.a.b[1]", {"a": {"b": [3, 4]}}) == 4
    finally:
        uninstall()
    assert json_path.parse("$.a") is not json_path.parse("$.a")  # moto's own, put back
