"""A workflow package no platform code knows, run end to end by ``interlock run`` over real HTTP: its trigger routes
to it, the workers of its jobs run its steps, and a step the state machine runs a second time does not act twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from throwaway_workflow import EVENT_TYPE, PACKAGE, write

from e2e.conftest import LOW_RISK, Runtime, _start

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("throwaway")
    write(root / "packages", redeliver=True)
    yield from _start(root, INTERLOCK_EXTRA_WORKFLOWS=PACKAGE, PYTHONPATH=str(root / "packages"))


def test_given_a_throwaway_workflow_when_its_event_arrives_then_its_steps_run_and_it_delivers_once(
    runtime: Runtime,
) -> None:
    answer = runtime.send({"type": EVENT_TYPE, "data": {"message": "hello from a package", "to": "ops@example.com"}})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]

    run = runtime.wait_for(run_id, lambda r: any(e["state"] == "duplicate" for e in r["timeline"]))

    assert run["status"] == "completed" and run["workflow"] == "throwaway_ping"
    steps = [(e["state"], e["step"]) for e in run["timeline"]]
    assert steps[:4] == [("received", "ingest"), ("processing", "router"), ("processing", "check"),
                         ("completed", "deliver")]
    # the state machine ran the deliver step again: the ledger gave it the first result, and it says so
    assert steps[4] == ("duplicate", "deliver")
    assert run["timeline"][4]["details"]["reason"] == "already_done"
    replies = runtime.replies(run_id)
    assert [(r["to"], r["body"]) for r in replies] == [("ops@example.com", "hello from a package")]


def test_given_a_throwaway_event_without_what_it_needs_then_the_run_fails_with_the_steps_reason(
    runtime: Runtime,
) -> None:
    run_id = runtime.send({"type": EVENT_TYPE, "data": {}}).json()["run_id"]

    run = runtime.wait_status(run_id, "failed")

    failed = run["timeline"][-1]
    assert (failed["step"], failed["details"]["reason"]) == ("outcome", "missing_data")
    assert runtime.replies(run_id) == []


def test_given_the_throwaway_workflow_then_the_built_in_one_still_runs_beside_it(runtime: Runtime) -> None:
    run_id = runtime.send(LOW_RISK).json()["run_id"]

    assert runtime.wait_status(run_id, "completed")["workflow"] == "support_triage"


def test_the_package_is_outside_the_interlock_tree() -> None:
    import interlock

    assert not (Path(interlock.__file__).parent / "workflows" / PACKAGE).exists()
