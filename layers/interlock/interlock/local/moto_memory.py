"""What keeps moto's memory bounded while the local runtime runs: :func:`install`, undone by what it returns.

moto is built for tests that last seconds; the local runtime lasts days. Three things moto keeps for ever, each
a few kilobytes to megabytes per run, are let go here (measured in docs/local-performance.md):

* **every model object it ever made.** Each moto model class (a DynamoDB ``Item``, an SQS ``Message``, a
  ``Table``...) appends every instance to ``cls.instances_tracked``, for moto server's dashboard, which the
  runtime does not serve. Every item written, and every copy moto makes of one (each ``Query`` answer is a deep
  copy, each ``UpdateItem`` copies the item first), stayed alive: 124,000 items after 60 runs. Instances are no
  longer tracked while this is installed (the lists still exist, empty).
* **the event history of every finished execution.** A finished execution keeps its worker's whole evaluation
  environment: each state's input and output as history events, the context object, the heap. The runtime
  reads an execution's history only while it runs (the local state saves a running execution's state from it,
  :mod:`interlock.local.persistence`) and finished ones only by ``DescribeExecution``/``ListExecutions`` (the
  watchdog's poller, :mod:`interlock.local.execution_events`), which need the execution, not its history. So
  the most recent :data:`KEEP_HISTORIES` finished executions keep theirs (to look at one just finished with
  ``GetExecutionHistory``); older ones answer an empty history, and their evaluation heap, stack and frames
  are emptied. Their status, input, output, error and cause stay.
* **every thread it started.** ``moto.stepfunctions.parser.utils.TMP_THREADS`` holds each execution's thread
  (and each callback wait's) after it ended; the ended ones are dropped.

All of it is generic: no state machine, execution type or table is named.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

KEEP_HISTORIES = 200  # finished executions whose event history is kept (the most recent ones)


def install(keep_histories: int = KEEP_HISTORIES) -> Callable[[], None]:
    """Let moto forget what the runtime never reads again; returns the function that undoes it."""
    undo = [_untrack_models(), _forget_finished_histories(keep_histories)]

    def uninstall() -> None:
        for step in reversed(undo):
            step()

    return uninstall


# -- model instances -------------------------------------------------------------------------------------------


def _untrack_models() -> Callable[[], None]:
    from moto.core.common_models import BaseModel

    original = BaseModel.__dict__["__new__"]

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(__new__)  # type: ignore[method-assign]

    def uninstall() -> None:
        BaseModel.__new__ = original  # type: ignore[method-assign]

    return uninstall


# -- finished executions ------------------------------------------------------------------------------------------


class FinishedHistories:
    """The finished executions whose history is still kept, oldest first; past ``keep`` the oldest one's
    evaluation environment is let go."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._kept: deque[Any] = deque()
        self._lock = threading.Lock()

    def finished(self, execution: Any) -> None:
        with self._lock:
            self._kept.append(execution)
            while len(self._kept) > self.keep:
                _forget_history(self._kept.popleft())
        _drop_ended_threads()


def _forget_history(execution: Any) -> None:
    """Empty a finished execution's event history and evaluation heap, stack and frames. The environment itself
    stays: moto asks every execution's for the owner of a task token (``SendTaskFailure``)."""
    worker = getattr(execution, "exec_worker", None)
    env = getattr(worker, "env", None)
    if env is None:
        return
    events = env.event_manager
    with events._mutex:
        events._history_event_list = []
    env.heap = {}
    env.stack = []
    env._frames = []


def _drop_ended_threads() -> None:
    from moto.stepfunctions.parser.utils import TMP_THREADS

    TMP_THREADS[:] = [thread for thread in list(TMP_THREADS) if thread.is_alive()]


def _forget_finished_histories(keep: int) -> Callable[[], None]:
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    histories = FinishedHistories(keep)
    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self: Any) -> None:
        original(self)
        histories.finished(self.execution)

    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]

    def uninstall() -> None:
        BaseExecutionWorkerCommunication.terminated = original  # type: ignore[method-assign]

    return uninstall
