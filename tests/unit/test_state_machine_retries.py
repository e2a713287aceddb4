"""The support triage state machine retries a step whose Lambda timed out, except where a retry could act twice."""

from __future__ import annotations

import json
from typing import Any

from interlock.topology import TOPOLOGY

# Tasks that must NOT retry a timed-out attempt, and why (the state's Comment says it too).
NO_TIMEOUT_RETRY = {
    # A timed-out attempt may have emailed its approval link, bound to its own task token: a retry would email
    # a second link and leave the first one dead (a click on it would mark the waiting run escalated).
    "RequestApproval",
}


def _states() -> dict[str, Any]:
    """The states of both triage machines (the automatic path and the wait): their names do not overlap but for
    the outcome recorders, which are the same tasks."""
    states: dict[str, Any] = {}
    for name in ("support_triage", "support_triage-wait"):
        states.update(json.loads(TOPOLOGY.state_machine(name).definition_path.read_text())["States"])
    return states


def _lambda_tasks() -> dict[str, Any]:
    return {name: state for name, state in _states().items() if state["Type"] == "Task"
            and (state["Resource"].startswith("${Worker_") or state["Resource"].startswith("arn:aws:states:::lambda:"))}


def _retried(state: dict[str, Any]) -> set[str]:
    return {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}


def test_every_lambda_task_retries_a_timed_out_attempt_unless_documented() -> None:
    tasks = _lambda_tasks()
    assert len(tasks) >= 10  # the file was found and parsed: Validate ... RecordFailure

    missing = sorted(name for name, state in tasks.items()
                     if name not in NO_TIMEOUT_RETRY and "Sandbox.Timedout" not in _retried(state))

    assert missing == []


def test_the_approval_request_does_not_retry_a_timeout_and_says_why() -> None:
    state = _states()["RequestApproval"]

    assert "Sandbox.Timedout" not in _retried(state)
    assert "Sandbox.Timedout" in state["Comment"]


def test_a_fetch_that_keeps_timing_out_continues_without_the_account() -> None:
    catchers = _states()["FetchAccount"]["Catch"]

    first = next(c for c in catchers if "Sandbox.Timedout" in c["ErrorEquals"])

    assert first["Next"] == "ContinueWithoutAccount"
