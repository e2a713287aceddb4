"""The whole local cloud in one process: HTTP -> function -> SQS -> consumer -> Step Functions -> SES."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from interlock.local.functions import LocalLambda
from interlock.local.runtime import LocalRuntime
from interlock.topology import Topology

from .conftest import HANDLERS


@pytest.fixture
def runtime(topology: Topology, tmp_path: Path) -> Iterator[tuple[LocalRuntime, list[str]]]:
    console: list[str] = []
    local = LocalRuntime(port=0, state_dir=tmp_path / "state", topology=topology,
                         functions=LocalLambda(topology, functions_dir=HANDLERS), echo=console.append,
                         poll_idle_seconds=0.02)
    with local:
        yield local, console


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_a_request_flows_through_queue_and_state_machine_to_the_outbox(
    runtime: tuple[LocalRuntime, list[str]],
) -> None:
    local, console = runtime
    outbox = local.outbox_dir

    # When a request arrives over HTTP
    answer = httpx.post(f"{local.url}/hooks/form", json={"id": "thing-1"})

    # Then it is queued, routed to an execution, whose step emails a link to the local API
    assert (answer.status_code, answer.json()) == (202, {"queued": True})
    _wait(lambda: outbox.exists() and any(outbox.glob("*.eml")))
    sfn = local.cloud.client("stepfunctions")
    arn = local.cloud.deployed.state_machine_arns["flow"]
    _wait(lambda: sfn.list_executions(stateMachineArn=arn, statusFilter="SUCCEEDED")["executions"])
    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    output = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["output"])
    assert execution["name"] == "thing-1"
    assert output["mail"] == {"mailed": "thing-1"}
    announcement = next(line for line in console if line.startswith("Approval email to"))
    assert f"{local.url}/things/thing-1" in announcement


def test_the_banner_says_where_everything_is(runtime: tuple[LocalRuntime, list[str]]) -> None:
    local, console = runtime
    banner = console[0]

    assert f"at {local.url}" in banner
    assert f"POST {local.url}/webhooks/form" in banner
    assert local.secrets["form"].signing[0] in banner
    chat = next(line for line in banner.splitlines() if f"{local.url}/webhooks/chat" in line)
    assert local.secrets["chat"].signing[0] in chat
    assert f"verify token (Meta's GET): {local.secrets['chat'].extras['verify_token']}" in chat
    assert f"POST {local.url}/webhooks/gh" in banner
    assert str(local.outbox_dir.resolve()) in banner
    assert "interlock send form support_ticket" in banner
    assert "interlock send <source>" in banner


def test_the_banner_says_which_sources_answer_404_and_why(
    topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTERLOCK_ENABLED_SOURCES", "form,gh")
    monkeypatch.setenv("INTERLOCK_SECRET_GH", "")
    monkeypatch.setenv("INTERLOCK_SECRET_FORM", "whsec_" + "C" * 32)
    console: list[str] = []
    with LocalRuntime(port=0, state_dir=tmp_path, topology=topology,
                      functions=LocalLambda(topology, functions_dir=HANDLERS), echo=console.append) as local:
        assert local.enabled_sources() == {"form": "standard-webhooks", "gh": "github"}
    lines = {line.split()[0]: line for line in console[0].splitlines() if line.startswith("  ")}

    assert "(from INTERLOCK_SECRET_FORM)" in lines["form"]
    assert "disabled" in lines["chat"] and "404" in lines["chat"]
    assert "no secret (INTERLOCK_SECRET_GH is empty): answers 404" in lines["gh"]


def test_stop_frees_the_port_and_restores_the_environment(topology: Topology, tmp_path: Path) -> None:
    before = dict(os.environ)
    local = LocalRuntime(port=0, state_dir=tmp_path, topology=topology,
                         functions=LocalLambda(topology, functions_dir=HANDLERS), echo=None)
    local.start()
    url = local.url
    local.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/hooks/form")
    assert dict(os.environ) == before
