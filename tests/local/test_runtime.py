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
from interlock.local.runtime import LocalRuntime, send_command
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


def test_every_local_fake_the_banner_lists_answers_a_browser(runtime: tuple[LocalRuntime, list[str]]) -> None:
    local, console = runtime
    start = console[0].index("Local fakes:")
    listed = console[0][start:console[0].index("AI decisions:")]
    urls = [word.rstrip(",") for word in listed.split() if word.startswith(local.url)]
    # the triage CRM and helpdesk, HubSpot's CRM objects, Slack's messages, the ERP's ledger, WhatsApp's sent messages
    assert len(urls) == 6
    for url in urls:
        answer = httpx.get(url, timeout=10)
        assert answer.status_code == 200, url
        assert answer.headers["content-type"].startswith("application/json")


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


# -- the banner's `interlock send`: a command that works from another terminal -----------------------------------


def _scripts(tmp_path: Path, with_script: bool = True) -> tuple[Path, Path]:
    """A virtualenv-shaped directory: ``<prefix>/bin/python`` and, if asked, ``<prefix>/bin/interlock``."""
    prefix = tmp_path / "project" / ".venv"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python").write_text("")
    if with_script:
        script = prefix / "bin" / "interlock"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    return prefix, prefix / "bin" / "python"


def test_under_make_run_the_venv_is_on_make_s_path_only_so_the_hint_names_the_script(tmp_path: Path) -> None:
    prefix, python = _scripts(tmp_path)
    environ = {"PATH": f"{prefix / 'bin'}:/usr/bin:/bin"}  # what the Makefile exports to `interlock run`

    command = send_command(environ, str(python), str(prefix), "/usr", cwd=tmp_path / "project")

    assert command == ".venv/bin/interlock"


def test_outside_the_project_directory_the_hint_names_the_script_by_its_absolute_path(tmp_path: Path) -> None:
    prefix, python = _scripts(tmp_path)
    (tmp_path / "elsewhere").mkdir()

    assert send_command({"PATH": "/usr/bin"}, str(python), str(prefix), "/usr", cwd=tmp_path / "elsewhere") == \
        str(prefix / "bin" / "interlock")


def test_in_an_activated_virtualenv_or_a_plain_install_on_the_path_the_hint_is_interlock(tmp_path: Path) -> None:
    prefix, python = _scripts(tmp_path)
    path = f"{prefix / 'bin'}:/usr/bin"

    activated = send_command({"PATH": path, "VIRTUAL_ENV": str(prefix)}, str(python), str(prefix), "/usr")
    installed = send_command({"PATH": path}, str(python), "/usr", "/usr")  # not a virtualenv: on the PATH for good

    assert (activated, installed) == ("interlock", "interlock")


def test_without_an_interlock_script_the_hint_runs_the_module_with_this_interpreter(tmp_path: Path) -> None:
    prefix, python = _scripts(tmp_path, with_script=False)

    assert send_command({"PATH": "/usr/bin"}, str(python), str(prefix), "/usr", cwd=tmp_path / "project") == \
        ".venv/bin/python -m interlock.cli"


def test_the_banner_prints_a_send_command_that_exists_when_interlock_is_not_on_the_path(
    topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    console: list[str] = []
    with LocalRuntime(port=0, state_dir=tmp_path / "state", topology=topology, echo=console.append,
                      functions=LocalLambda(topology, functions_dir=HANDLERS)):
        pass

    try_it = next(line for line in console[0].splitlines() if line.startswith("Try it:"))
    program = try_it.removeprefix("Try it:").split()[0]
    assert program != "interlock"
    assert Path(program).is_file() or Path(program).resolve().is_file()
    assert f"{send_command()} send form support_ticket" in try_it
