"""A small burst to a fresh runtime: every delivery is answered for what happened to it, none times out."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import LOW_RISK, Runtime, _start

BURST = 12


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A runtime nothing has been sent to yet: its functions' clients and secrets are all still to be made."""
    yield from _start(tmp_path_factory.mktemp("burst"))


def test_given_a_fresh_runtime_when_a_burst_arrives_then_every_event_is_accepted_once(fresh: Runtime) -> None:
    ids = [f"msg_e2e_burst_{i}" for i in range(BURST)]

    # When the burst's deliveries all arrive at once, first thing after start
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        first: list[httpx.Response] = list(pool.map(lambda msg_id: fresh.send(LOW_RISK, msg_id=msg_id), ids))

    # Then each is accepted (no 5xx: no request waited on another's client), and each is one run
    assert [r.status_code for r in first] == [202] * BURST
    assert all(r.json()["duplicate"] is False for r in first)
    assert len({r.json()["run_id"] for r in first}) == BURST

    # And a redelivery of each is a duplicate, leaving one duplicate entry on its run
    again = [fresh.send(LOW_RISK, msg_id=msg_id) for msg_id in ids]
    assert [(r.status_code, r.json()["duplicate"]) for r in again] == [(202, True)] * BURST
    for response in first:
        run = fresh.run(response.json()["run_id"])
        states = [e["state"] for e in run["timeline"]]
        assert states.count("received") == 1 and states.count("duplicate") == 1
