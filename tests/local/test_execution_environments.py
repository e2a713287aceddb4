"""Concurrent invocations of one function run in execution environments of their own, as in Lambda: module-level
state (a Powertools resolver's ``current_event``) is each environment's, never shared by two requests at once."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from interlock.local.functions import LocalLambda
from interlock.topology import Function, Topology

from .conftest import HANDLERS

CURRENT = Function(name="current", module="lt_current", description="test: keeps its request in a global",
                   timeout_seconds=10)


def test_two_overlapping_invocations_each_answer_for_their_own_request(topology: Topology) -> None:
    functions = LocalLambda(replace(topology, functions=(*topology.functions, CURRENT)), functions_dir=HANDLERS)
    sys.path.insert(0, str(HANDLERS))
    first_answer = functions.invoke("current", {"id": "warm-up"})  # the first environment, now warm and free
    import lt_current

    lt_current.started.clear()
    with ThreadPoolExecutor(2) as pool:
        # When a second request arrives while the first is still being served
        slow = pool.submit(functions.invoke, "current", {"id": "first", "pause": 0.5})
        assert lt_current.started.wait(5)
        fast = pool.submit(functions.invoke, "current", {"id": "second"})
        answers = slow.result(timeout=10), fast.result(timeout=10)
    again = functions.invoke("current", {"id": "third"})
    functions.close(timeout=2)

    # Then each answers for its own request (one module shared by both would answer "second" twice)
    assert first_answer.payload == {"id": "warm-up"}
    assert [a.payload for a in answers] == [{"id": "first"}, {"id": "second"}]
    assert again.payload == {"id": "third"}  # served by a warm environment, whichever
    assert functions._environments["current"] == 2  # two at once at most: two environments, no more
