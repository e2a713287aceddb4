"""Does an Express machine's automatic path fit Step Functions Express's five minutes, whatever goes wrong?

The worst case of a Task is every attempt running to its worker's Lambda timeout: ``timeout * (1 + the sum of its
retriers' MaxAttempts)``, plus each retry's longest backoff (``IntervalSeconds * BackoffRate^n``, capped at
``MaxDelaySeconds``). The worst case of the machine is its longest path from ``StartAt`` through every ``Next``,
``Choice`` branch, ``Default`` and ``Catch`` (the ASL here has no loops). Both realisations refuse a topology whose
Express machine's worst case exceeds the cap (:func:`check`), so a run's retries and model timeouts always end
inside its execution, recorded on the timeline by the workflow itself, rather than by the watchdog after Step
Functions stopped it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

EXPRESS_CAP_SECONDS = 300


class OverBudget(ValueError):
    """An automatic path that could outlast Express's five minutes."""


def retry_seconds(retriers: list[dict[str, Any]]) -> tuple[int, float]:
    """(extra attempts, total backoff) if every retrier is used up."""
    attempts, backoff = 0, 0.0
    for retrier in retriers:
        interval = float(retrier.get("IntervalSeconds", 1))
        rate = float(retrier.get("BackoffRate", 2.0))
        cap = float(retrier.get("MaxDelaySeconds", 1e9))
        count = int(retrier.get("MaxAttempts", 3))
        attempts += count
        backoff += sum(min(interval * rate ** n, cap) for n in range(count))
    return attempts, backoff


def task_seconds(state: Mapping[str, Any], timeouts: Mapping[str, int]) -> float:
    """A task's worst case; ``timeouts``: the placeholder (``${Worker_<job>}``) of each worker -> its timeout."""
    resource = str(state.get("Resource", ""))
    if resource.startswith("arn:aws:states:::lambda:invoke"):
        resource = str((state.get("Parameters") or {}).get("FunctionName", ""))
    timeout = next((t for placeholder, t in timeouts.items() if placeholder in resource), None)
    if timeout is None:  # a service integration (states:startExecution): Step Functions' own call
        timeout = 5
    attempts, backoff = retry_seconds(list(state.get("Retry", [])))
    return timeout * (1 + attempts) + backoff


def worst_case_seconds(definition: Mapping[str, Any], timeouts: Mapping[str, int]) -> float:
    states: Mapping[str, Any] = definition["States"]

    @cache
    def longest(name: str) -> float:
        state = states[name]
        own = task_seconds(state, timeouts) if state["Type"] == "Task" else float(state.get("Seconds", 0))
        following = [state.get("Next"), state.get("Default"), *(c.get("Next") for c in state.get("Choices", [])),
                     *(c.get("Next") for c in state.get("Catch", []))]
        return own + max((longest(n) for n in following if n), default=0.0)

    return longest(definition["StartAt"])


def check(name: str, definition_text: str, timeouts: Mapping[str, int], cap: int = EXPRESS_CAP_SECONDS) -> float:
    """The worst case of the Express machine ``name``; :class:`OverBudget` when it exceeds ``cap``."""
    seconds = worst_case_seconds(json.loads(definition_text), timeouts)
    if seconds > cap:
        raise OverBudget(f"state machine {name!r}: its automatic path could run {seconds:.0f} s when every attempt "
                         f"times out, beyond Express's {cap} s; lower its workers' timeouts or its retries "
                         "(docs/workflows.md)")
    return seconds
