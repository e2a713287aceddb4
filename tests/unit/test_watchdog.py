"""The watchdog's logic (interlock/watchdog.py) with an in-memory timeline, and its contract with the ASL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from interlock import watchdog
from interlock.errors import RUN_FAILED
from interlock.models import TimelineEntry
from interlock.timeline import RecordOnce
from interlock.topology import TOPOLOGY
from pydantic import ValidationError

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:Interlock-support_triage:run-1"


@dataclass
class OnceTimeline:
    """A TimelineStore's ``record_once``: one entry per key, for the runs it knows, terminal ones kept."""

    runs: dict[str, str] = field(default_factory=lambda: {"run-1": "processing"})
    entries: list[tuple[str, TimelineEntry]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)

    def record_once(self, run_id: str, entry: TimelineEntry, key: str) -> RecordOnce:
        if key in self.keys:
            return RecordOnce.DUPLICATE
        if run_id not in self.runs:
            return RecordOnce.UNKNOWN_RUN
        self.keys.add(key)
        self.entries.append((run_id, entry))
        if self.runs[run_id] in ("completed", "failed", "rejected", "escalated"):
            return RecordOnce.RECORDED_KEPT_STATUS
        self.runs[run_id] = "failed"
        return RecordOnce.RECORDED


def change(status: str = "FAILED", error: str | None = "States.Runtime", cause: str | None = "boom",
           redrive_count: int = 0, **extra: Any) -> watchdog.ExecutionStatusChange:
    return watchdog.ExecutionStatusChange.model_validate({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-22T10:00:05Z",
        "region": "us-east-1",
        "resources": [EXECUTION],
        "detail": {
            "executionArn": EXECUTION,
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:Interlock-support_triage",
            "name": "run-1",
            "status": status,
            "startDate": 1_795_000_000_000,
            "stopDate": 1_795_000_005_000,
            "input": "{}",
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
            "error": error,
            "cause": cause,
            "redriveCount": redrive_count,
            **extra,
        },
    })


@pytest.mark.parametrize(("status", "reason"), [
    ("FAILED", "execution_failed"), ("TIMED_OUT", "execution_timed_out"), ("ABORTED", "execution_aborted"),
])
def test_given_a_stopped_execution_when_handled_then_a_failed_execution_entry_says_how_it_ended(
    status: str, reason: str
) -> None:
    store = OnceTimeline()

    answer = watchdog.record_execution_status(change(status, error="E", cause="why"), store)

    assert answer == {"run_id": "run-1", "outcome": "recorded", "reason": reason}
    ((run_id, entry),) = store.entries
    assert (run_id, entry.state.value, entry.step) == ("run-1", "failed", "execution")
    assert entry.details == {"reason": reason, "error": "E", "cause": "why", "execution_arn": EXECUTION,
                             "status": status, "stopped_at": "2026-11-18T11:06:45+00:00"}


def test_given_the_workflows_run_failed_state_then_it_is_skipped_as_already_recorded() -> None:
    store = OnceTimeline()

    answer = watchdog.record_execution_status(change(error=RUN_FAILED), store)

    assert answer["outcome"] == "already_recorded"
    assert store.entries == []


def test_given_run_failed_as_the_error_of_an_abort_then_it_is_still_recorded() -> None:
    """Only the FAILED status of the Fail state was recorded by the workflow; an operator's abort was not."""
    store = OnceTimeline()

    assert watchdog.record_execution_status(change("ABORTED", error=RUN_FAILED), store)["outcome"] == "recorded"


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED", "PENDING_REDRIVE"])
def test_given_a_status_that_is_no_failure_then_nothing_is_recorded(status: str) -> None:
    store = OnceTimeline()

    assert watchdog.record_execution_status(change(status, error=None), store)["outcome"] == "not_a_failure"
    assert store.entries == []


def test_given_a_redelivered_event_then_it_is_a_duplicate_and_nothing_more_is_recorded() -> None:
    store = OnceTimeline()
    watchdog.record_execution_status(change(), store)

    answer = watchdog.record_execution_status(change(), store)

    assert answer["outcome"] == "duplicate"
    assert len(store.entries) == 1


def test_given_a_redriven_execution_then_its_new_ending_has_a_key_of_its_own() -> None:
    first, redriven = change().detail, change(redrive_count=1).detail

    assert watchdog.once_key(first) != watchdog.once_key(redriven)
    assert EXECUTION in watchdog.once_key(first)


def test_given_a_terminal_run_then_the_entry_is_added_and_the_outcome_says_the_status_was_kept() -> None:
    store = OnceTimeline(runs={"run-1": "completed"})

    assert watchdog.record_execution_status(change("ABORTED"), store)["outcome"] == "kept_status"
    assert store.runs["run-1"] == "completed" and len(store.entries) == 1


def test_given_an_execution_named_after_no_run_then_the_outcome_says_so() -> None:
    assert watchdog.record_execution_status(change(), OnceTimeline(runs={}))["outcome"] == "unknown_run"


def test_given_a_long_cause_then_the_timeline_keeps_its_first_500_characters() -> None:
    store = OnceTimeline()
    cause = json.dumps({"errorMessage": "x" * 2000, "errorType": "Boom"})

    watchdog.record_execution_status(change(cause=cause), store)

    kept = store.entries[0][1].details["cause"]
    assert len(kept) == watchdog.CAUSE_LIMIT == 500
    assert kept == cause[:499] + "…"


@pytest.mark.parametrize(("text", "expected"), [(None, None), ("", ""), ("a" * 500, "a" * 500)])
def test_given_a_cause_that_fits_then_it_is_kept_as_it_is(text: str | None, expected: str | None) -> None:
    assert watchdog.truncate(text) == expected


def test_given_an_aborted_execution_without_error_or_cause_then_they_are_recorded_as_null() -> None:
    store = OnceTimeline()

    watchdog.record_execution_status(change("ABORTED", error=None, cause=None), store)

    details = store.entries[0][1].details
    assert details["error"] is None and details["cause"] is None


@pytest.mark.parametrize("bad", [
    {"source": "aws.events"},
    {"detail-type": "Step Functions State Machine Status Change"},
    {"detail": {"status": "FAILED"}},
])
def test_given_an_event_that_is_no_execution_status_change_then_it_is_refused(bad: dict[str, Any]) -> None:
    event = change().model_dump(by_alias=True, mode="json")
    event.update(bad)

    with pytest.raises(ValidationError):
        watchdog.ExecutionStatusChange.model_validate(event)


# -- the contract with the workflows' ASL ------------------------------------------------------------------


def _predecessors(states: dict[str, Any], target: str) -> list[str]:
    found = []
    for name, state in states.items():
        nexts = {state.get("Next"), state.get("Default")} | {c.get("Next") for c in state.get("Choices", [])}
        nexts |= {c.get("Next") for c in state.get("Catch", [])}
        if target in nexts:
            found.append(name)
    return found


@pytest.mark.parametrize("sm", [TOPOLOGY.state_machine(n) for w in TOPOLOGY.execution_watches
                                for n in w.state_machines], ids=lambda sm: sm.name)
def test_given_a_watched_workflow_then_its_fail_states_are_run_failed_entered_only_after_the_recorder(sm: Any) -> None:
    """The watchdog skips FAILED executions whose error is RUN_FAILED, trusting that the run's failure is on
    its timeline already. That holds only if every Fail state uses exactly that error and is entered only
    from the recorder, the task the workflow's Catch blocks hand their failures to."""
    states = json.loads(sm.definition_path.read_text())["States"]
    catch_targets = {c["Next"] for st in states.values() for c in st.get("Catch", [])}
    recorders = {states[t]["Resource"] for t in catch_targets if states[t]["Type"] == "Task"}
    fails = {name: st for name, st in states.items() if st["Type"] == "Fail"}

    assert fails, f"{sm.name} has no Fail state: a recorded failure would end its execution SUCCEEDED"
    for name, state in fails.items():
        assert state.get("Error") == RUN_FAILED, name
        entered_from = _predecessors(states, name)
        assert entered_from, name
        for before in entered_from:
            assert states[before]["Type"] == "Task" and states[before]["Resource"] in recorders, (name, before)
            assert states[before].get("Parameters", {}).get("kind") == "failed", (name, before)
