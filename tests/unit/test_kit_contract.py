"""The workflow kit's contract: a workflow package the platform does not know is found, built into the topology,
routed to, and run by the workers of its steps' jobs, which refuse what its jobs may not do."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from interlock.errors import MissingData
from interlock.kit import Job, Step, Trigger, Workflow, registry, worker
from interlock.kit.budget import OverBudget, check
from interlock.kit.context import NotGranted, Services, StepContext
from interlock.models import EntryState, Envelope, TimelineEntry, run_id_for, utcnow
from interlock.topology import StateMachineType, build
from pydantic import BaseModel
from throwaway_workflow import EVENT_TYPE, importable


class Timeline:
    def __init__(self) -> None:
        self.entries: list[tuple[str, TimelineEntry, list[Any]]] = []

    def record(self, run_id: str, entry: TimelineEntry, workflow: str | None = None, status: Any = None) -> None:
        self.entries.append((run_id, entry, []))

    def record_once(self, run_id: str, entry: TimelineEntry, key: str) -> Any:
        self.entries.append((run_id, entry, []))


class MemoryLedger:
    """The ledger's contract in memory: ``do`` once per run, step and effect; the first result after."""

    def __init__(self) -> None:
        self.done: dict[tuple[str, str, str], str] = {}
        self.calls = 0

    def once(self, ctx: StepContext, effect: str, do: Callable[[str], Any], model: type[BaseModel]) -> Any:
        key = (ctx.run_id, ctx.step, effect)
        if key in self.done:
            ctx.skipped.append({"effect": effect})
            return model.model_validate_json(self.done[key])
        self.calls += 1
        result = do(":".join(key))
        self.done[key] = result.model_dump_json()
        return result


class Helpdesk:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, str]] = []

    def send_reply(self, run_id: str, to: str, subject: str, body: str) -> str:
        self.sent.append((run_id, to, subject, body))
        return f"reply-{len(self.sent)}"


@pytest.fixture
def throwaway(tmp_path: Path) -> Iterator[str]:
    with importable(tmp_path) as package:
        yield package


def envelope(data: dict[str, Any]) -> Envelope:
    key = "form:msg_ping"
    return Envelope(event_id="msg_ping", source="form", type=EVENT_TYPE, payload_version="standard-webhooks.v1",
                    received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key), payload={"data": data})


def test_given_the_built_in_packages_then_the_registry_finds_support_triage_and_its_route() -> None:
    workflows = registry.workflows("")
    assert "support_triage" in workflows
    assert registry.routes("")[("form", "support.ticket")] == "support_triage"
    assert workflows["support_triage"].folder == Path(registry.__file__).parents[1] / "workflows" / "support_triage"


def test_given_a_throwaway_package_then_it_is_a_workflow_with_its_route_and_its_machine(throwaway: str) -> None:
    assert registry.routes(throwaway)[("form", EVENT_TYPE)] == "throwaway_ping"
    topology = build(throwaway)
    machine = topology.state_machine("throwaway_ping")
    assert machine.type is StateMachineType.EXPRESS
    assert machine.function_substitutions == {"Worker_act": "job_act", "Worker_record": "job_record",
                                              "Worker_validate": "job_validate"}
    assert machine.state_machine_substitutions == {}
    assert "throwaway_ping-wait" not in {sm.name for sm in topology.state_machines}  # it never waits
    # no function is added for it: the workers of its jobs run its steps
    assert {f.name for f in topology.functions} == {f.name for f in build("").functions}
    assert "throwaway_ping" in next(iter(topology.execution_watches)).express_state_machines
    assert topology.check_budgets()["throwaway_ping"] <= 300


def test_given_the_throwaway_steps_when_their_workers_run_them_then_it_delivers_once(throwaway: str) -> None:
    registry.workflows(throwaway)
    timeline, ledger, helpdesk = Timeline(), MemoryLedger(), Helpdesk()
    validate = Services(timeline=timeline)  # type: ignore[arg-type]
    act = Services(timeline=timeline, ledger=ledger, connectors=lambda name: helpdesk)  # type: ignore[arg-type]
    env = envelope({"message": "hello", "to": "ops@example.com"})
    base = {"workflow": "throwaway_ping", "run_id": env.run_id, "attempt": 0}

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(registry.EXTRA_ENV, throwaway)
        ping = worker.run(Job.VALIDATE, {**base, "step": "check", "envelope": env.model_dump(mode="json")}, validate)
        first = worker.run(Job.ACT, {**base, "step": "deliver", "ping": ping}, act)
        again = worker.run(Job.ACT, {**base, "step": "deliver", "ping": ping}, act)  # a redelivered task

    assert ping == {"message": "hello", "to": "ops@example.com"}
    assert first == again == {"reply_id": "reply-1"}
    assert len(helpdesk.sent) == 1 and ledger.calls == 1
    states = [(e.state, e.step) for _, e, _ in timeline.entries]
    assert states == [(EntryState.PROCESSING, "check"), (EntryState.COMPLETED, "deliver"),
                      (EntryState.DUPLICATE, "deliver")]
    assert timeline.entries[-1][1].details["reason"] == "already_done"


def test_given_a_step_of_another_job_when_a_worker_is_asked_to_run_it_then_it_refuses(throwaway: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(registry.EXTRA_ENV, throwaway)
        with pytest.raises(worker.WrongWorker):
            worker.run(Job.DECIDE, {"workflow": "throwaway_ping", "step": "deliver", "run_id": "r", "attempt": 0,
                                    "ping": {"message": "m", "to": "t"}}, Services(timeline=Timeline()))  # type: ignore[arg-type]


def test_given_bad_input_when_the_worker_runs_the_step_then_the_steps_own_error_is_raised(throwaway: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(registry.EXTRA_ENV, throwaway)
        with pytest.raises(MissingData):
            worker.run(Job.VALIDATE, {"workflow": "throwaway_ping", "step": "check", "run_id": "r", "attempt": 0,
                                      "envelope": envelope({}).model_dump(mode="json")},
                       Services(timeline=Timeline()))  # type: ignore[arg-type]


def test_given_a_context_then_it_hands_out_only_what_the_step_declared_and_its_job_has() -> None:
    ctx = StepContext(run_id="r", attempt=0, workflow="w", step="s", deadline=None,
                      services=Services(timeline=Timeline(), connectors=lambda n: n),  # type: ignore[arg-type]
                      connectors=("crm",))
    assert ctx.connector("crm") == "crm"
    with pytest.raises(NotGranted):
        ctx.connector("helpdesk")  # not declared by the step
    with pytest.raises(NotGranted):
        _ = ctx.decisions  # not a decide worker
    with pytest.raises(NotGranted):
        ctx.once("e", lambda key: BaseModel(), BaseModel)  # no ledger: not an effect worker
    with pytest.raises(NotGranted):
        ctx.setting("approval_min_confidence")  # not declared by the workflow


def test_given_the_query_worker_then_it_may_not_use_a_connector_granted_to_act_alone() -> None:
    from interlock.kit.services import _connectors

    with pytest.raises(NotGranted):
        _connectors(Job.QUERY)("helpdesk")


def test_given_packages_that_cannot_be_workflows_then_the_registry_says_why(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "no_decl_wf").mkdir()
    (tmp_path / "no_decl_wf" / "__init__.py").write_text("X = 1\n")
    (tmp_path / "taken_wf").mkdir()
    (tmp_path / "taken_wf" / "__init__.py").write_text(
        "from interlock.kit import Job, Step, Trigger, Workflow\n"
        "WORKFLOW = Workflow(name='taken', description='d', package=__name__,\n"
        "    triggers=(Trigger('form', 'support.ticket'),), steps=())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.clear()
    with pytest.raises(registry.WorkflowError, match="declares no WORKFLOW"):
        registry.workflows("no_decl_wf")
    with pytest.raises(registry.WorkflowError, match="starts both 'support_triage' and 'taken'"):
        registry.workflows("taken_wf")
    with pytest.raises(registry.WorkflowError, match="cannot be imported"):
        registry.workflows("no_such_package_wf")
    registry.clear()


def test_given_a_workflow_declaration_then_its_jobs_include_the_recorder_and_the_approval_when_it_waits() -> None:
    wf = Workflow(name="w", description="d", package="p", triggers=(Trigger("form", "x"),),
                  steps=(Step("a", Job.QUERY, "m:a"),), wait="wait.asl.json")
    assert wf.jobs == (Job.QUERY, Job.RECORD, Job.APPROVE)
    assert wf.step("record").job is Job.RECORD  # the platform's steps are every workflow's


def test_given_an_automatic_path_that_could_outlast_express_then_it_is_refused() -> None:
    slow = {"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "${Worker_decide}", "Next": "B",
              "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3, "IntervalSeconds": 1, "BackoffRate": 2}]},
        "B": {"Type": "Task", "Resource": "${Worker_decide}", "End": True}}}
    assert check("ok", json.dumps(slow), {"${Worker_decide}": 30}) == 30 * 4 + 7 + 30
    with pytest.raises(OverBudget, match="could run 457 s"):
        check("slow", json.dumps(slow), {"${Worker_decide}": 90})
