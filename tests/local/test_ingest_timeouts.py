"""The ingest under the local runtime's timeout: it answers before the function's timeout, never after it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from interlock.local.functions import LocalLambda
from interlock.topology import Function, Table, Topology

from .conftest import HANDLERS


@pytest.fixture
def functions() -> Iterator[LocalLambda]:
    topology = Topology(table=Table(), queues=(), routes=(), state_machines=(), webhook_sources=(),
                        functions=(Function(name="ingest", module="lt_ingest_deadline",
                                            description="test: a slow ingest", timeout_seconds=2),))
    local = LocalLambda(topology, functions_dir=HANDLERS)
    yield local
    local.close(timeout=3)
    sys.modules.pop("lt_ingest_deadline", None)


def _module():  # imported by the runtime on first invoke
    return sys.modules["lt_ingest_deadline"]


def test_given_a_slow_record_when_the_deadline_is_known_then_503_in_time_and_nothing_is_kept(
    functions: LocalLambda, tmp_path: Path,
) -> None:
    # When the ingest records the event so slowly that queueing it would overrun the function's timeout
    invocation = functions.invoke("ingest", {"with_deadline": True})

    # Then it answered, in time: 503, the acceptance undone, nothing queued
    assert invocation.ok, invocation.error
    assert invocation.payload["status"] == 503
    module = _module()
    assert module.DONE.wait(5)
    assert module.QUEUE.sent == []
    assert [e.dedupe_key for e in module.STORE.forgotten] == ["form:msg_slow"]


def test_given_the_same_ingest_without_its_deadline_then_the_timeout_answers_and_the_event_is_queued_anyway(
    functions: LocalLambda,
) -> None:
    # What the deadline prevents: the function is cut off (API Gateway would answer 502) ...
    invocation = functions.invoke("ingest", {"with_deadline": False})

    assert invocation.error is not None and invocation.error.error_type == "Sandbox.Timedout"
    # ... while the event it was working on is queued all the same (here the thread finishes in the background)
    module = _module()
    assert module.DONE.wait(5)
    assert len(module.QUEUE.sent) == 1
