"""The watchdog in the real local runtime: the emulated EventBridge rule feeds it every failed execution.

No request through the public API can make the triage workflow fail outside its Catch blocks (that takes a
States.Runtime error, the recorder failing, an operator's abort or a timeout), and this suite adds no
backdoor to make one; tests/local/test_execution_events.py shows such a failure recorded, with test
workflows. What the public API can show is the other half of the contract: a run the workflow failed and
recorded itself (its execution ends in the RunFailed state) is not recorded a second time.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.e2e.conftest import Runtime, ticket


def _logged(runtime: Runtime, run_id: str, message: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in runtime.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("correlation_id") == run_id and record.get("message") == message:
                return record
        time.sleep(0.2)
    raise AssertionError(f"no log line {message!r} for run {run_id}; runtime log tail:\n{runtime.log_tail()}")


def test_given_a_run_the_workflow_failed_and_recorded_then_the_watchdog_leaves_it_alone(runtime: Runtime) -> None:
    run_id = runtime.send(ticket("Help", "", "")).json()["run_id"]
    runtime.wait_status(run_id, "failed")

    # The execution ended in RunFailed; the watchdog got its status change event and let it be
    record = _logged(runtime, run_id, "the workflow recorded this failure itself")
    assert record["function_name"] == "interlock-run_watchdog"
    assert record["execution_arn"].endswith(f":execution:interlock-support_triage:{run_id}")

    run = runtime.run(run_id)
    failures = [(e["step"], e["details"]["reason"]) for e in run["timeline"] if e["state"] == "failed"]
    assert failures == [("outcome", "missing_data")]
