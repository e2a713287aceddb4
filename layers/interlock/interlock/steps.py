"""What every Step Functions task has in common: one pydantic input, one output, one timeline entry.

A task's Lambda event is the ``Parameters`` object of its ASL state: always ``run_id`` and ``attempt``
(``$$.State.RetryCount``) plus the step's own fields. The step's result becomes the task's output
(``ResultPath`` in the ASL) and a ``processing`` entry on the run's timeline with the step's summary.
A retryable error leaves a ``retried`` entry before the state machine retries it. An attempt that ended without
an answer (its Lambda timed out, ran out of memory or crashed: ``Sandbox.Timedout``, ``Lambda.Unknown``) could not
leave one, so the next attempt does, reason ``no_answer``: each attempt's ``retried`` entry is recorded once
(keyed by run, step and attempt), by whichever of the two gets there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from interlock.errors import StepError
from interlock.models import EntryState, TimelineEntry
from interlock.observability import logger
from interlock.timeline import TimelineStore


class StepInput(BaseModel):
    # A refused input's error names the field and the rule, never the value: the error reaches logs and the
    # execution's history, and the value may be a customer's personal data.
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    run_id: str
    attempt: int = 0


# The invocation's Lambda context, while a step handler runs: how long the step has left.
_context: ContextVar[Any] = ContextVar("lambda_context", default=None)


@contextmanager
def lambda_context(context: Any) -> Iterator[None]:
    """Make ``context`` the running step's Lambda context (what :func:`deadline` reads)."""
    token = _context.set(context)
    try:
        yield
    finally:
        _context.reset(token)


def deadline() -> float | None:
    """The ``time.monotonic()`` by which the running step must return (its Lambda timeout), if known."""
    context = _context.get()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return time.monotonic() + remaining() / 1000


InT = TypeVar("InT", bound=StepInput)
OutT = TypeVar("OutT", bound=BaseModel)


def run_step(
    step: str,
    event: dict[str, Any],
    input_model: type[InT],
    work: Callable[[InT], OutT],
    store: TimelineStore,
    summary: Callable[[OutT], dict[str, Any]] | None = None,
    state: EntryState = EntryState.PROCESSING,
    finish: Callable[[InT, OutT], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Validate the event, run ``work`` on it, record the result (or, with ``finish``, let it record and answer)."""
    data = input_model.model_validate(event)
    if data.attempt > 0:
        previous = data.attempt - 1
        retried_once(store, data.run_id, step, previous, {
            "reason": "no_answer",
            "message": f"attempt {previous} ended without an answer (the function timed out, ran out of memory or "
                       "crashed); retried",
            "retry_count": previous,
        })
    try:
        result = work(data)
    except StepError as exc:
        if exc.retryable:
            retried_once(store, data.run_id, step, data.attempt, {
                "reason": exc.reason, "message": exc.message, "retry_count": data.attempt, **exc.details})
        logger.warning("step failed", extra={"step": step, "reason": exc.reason, "attempt": data.attempt})
        raise
    if finish is not None:
        return finish(data, result)
    details = summary(result) if summary else result.model_dump(mode="json")
    store.record(data.run_id, TimelineEntry(state=state, step=step, attempt=data.attempt, details=details))
    return result.model_dump(mode="json")


def retried_once(store: TimelineStore, run_id: str, step: str, attempt: int, details: dict[str, Any]) -> None:
    entry = TimelineEntry(state=EntryState.RETRIED, step=step, attempt=attempt, details=details)
    store.record_once(run_id, entry, key=f"retried:{run_id}:{step}:{attempt}")
