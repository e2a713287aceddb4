"""The triggers that are not webhooks through ``interlock run`` over real HTTP, with a workflow no platform code knows:
a schedule fired by skipping the scheduler's clock and by ``interlock trigger``, and a status change in the
workflow's own table starting a run while a change to another status starts none."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from throwaway_triggers import CHANGE_TYPE, DAILY, PACKAGE, TABLE, WORKFLOW, write

from e2e.conftest import Runtime, _start, states

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("triggers")
    write(root / "packages")
    # The package beside whatever the tests run with (the source tree under test first, not an installed copy).
    path = os.pathsep.join(p for p in (str(root / "packages"), os.environ.get("PYTHONPATH", "")) if p)
    yield from _start(root, INTERLOCK_EXTRA_WORKFLOWS=PACKAGE, PYTHONPATH=path)


def local(runtime: Runtime, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{runtime.url}/_local{path}", timeout=10, **kwargs)


def completed(runtime: Runtime, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The run, once it is completed: a trigger's run exists only once the router has taken its message."""
    deadline = time.monotonic() + timeout
    while httpx.get(f"{runtime.url}/runs/{run_id}", timeout=10).status_code == 404:
        assert time.monotonic() < deadline, f"run {run_id} was never created:\n{runtime.log_tail()}"
        time.sleep(0.2)
    return runtime.wait_status(run_id, "completed")


def changes(runtime: Runtime, ticket: str, timeout: float = 20.0, count: int = 2,
            modified: int = 1) -> list[dict[str, Any]]:
    """The stream records of ``ticket`` the local stream has read, once there are ``count`` of them, ``modified``
    of them MODIFY records."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [c for c in local(runtime, "GET", f"/tables/{TABLE}/changes").json()["changes"]
                 if c["keys"] == {"ticket_id": ticket}]
        if len(found) >= count and sum(c["event_name"] == "MODIFY" for c in found) >= modified:
            return found
        time.sleep(0.2)
    raise AssertionError(f"the stream of {TABLE} never showed {count} records of {ticket}: {found}")


def test_given_a_day_skipped_then_the_daily_schedule_starts_one_run_with_its_scheduled_time(runtime: Runtime) -> None:
    before = local(runtime, "GET", "/scheduler").json()
    daily = next(s for s in before["schedules"] if s["schedule"] == f"{WORKFLOW}.{DAILY}")
    assert (daily["expression"], daily["timezone"]) == ("cron(30 7 * * ? *)", "Europe/Berlin")

    skipped = local(runtime, "POST", "/scheduler/advance", json={"seconds": 86400})

    assert skipped.status_code == 200, skipped.text
    [firing] = [f for f in skipped.json()["fired"] if f["schedule"] == f"{WORKFLOW}.{DAILY}"]
    assert firing["scheduled_time"] == daily["next"]
    assert firing["scheduled_time"].endswith(("T06:30:00Z", "T05:30:00Z"))  # 07:30 in Berlin, winter or summer
    run = completed(runtime, firing["run_id"])
    assert run["workflow"] == WORKFLOW
    assert states(run) == [("received", "ingest"), ("processing", "router"), ("completed", "note")]
    received = run["timeline"][0]["details"]
    assert (received["event_source"], received["event_type"]) == ("schedule", f"{WORKFLOW}.{DAILY}")
    noted = run["timeline"][-1]["details"]
    assert noted["payload"]["scheduled_time"] == firing["scheduled_time"]
    assert noted["table"] == "interlock-table-tickets"  # StepContext.table: the physical name its worker was given
    # a second, shorter skip fires nothing new of the daily schedule
    again = local(runtime, "POST", "/scheduler/advance", json={"seconds": 60}).json()["fired"]
    assert [f for f in again if f["schedule"] == f"{WORKFLOW}.{DAILY}"] == []


def test_interlock_trigger_fires_a_schedule_now_and_prints_its_run(runtime: Runtime) -> None:
    env = {**os.environ, **runtime.env}
    done = subprocess.run([sys.executable, "-m", "interlock.cli", "trigger", f"{WORKFLOW}.{DAILY}", "--url",
                           runtime.url], capture_output=True, text=True, env=env, timeout=30)

    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("run ", 1)[1].split()[0]
    run = completed(runtime, run_id)
    assert run["timeline"][0]["details"]["event_source"] == "schedule"

    unknown = subprocess.run([sys.executable, "-m", "interlock.cli", "trigger", f"{WORKFLOW}.weekly", "--url",
                              runtime.url], capture_output=True, text=True, env=env, timeout=30)
    assert unknown.returncode == 1
    assert f"{WORKFLOW}.{DAILY}" in unknown.stderr and "no workflow declares" in unknown.stderr


def test_given_a_ticket_escalated_in_the_table_then_a_run_starts_and_a_ticket_closed_starts_none(
    runtime: Runtime,
) -> None:
    for ticket in ("T-esc", "T-closed"):
        put = local(runtime, "PUT", f"/tables/{TABLE}/items",
                    json={"item": {"ticket_id": ticket, "status": "open", "priority": 2}})
        assert put.status_code == 200, put.text
    closed = local(runtime, "PATCH", f"/tables/{TABLE}/items",
                   json={"key": {"ticket_id": "T-closed"}, "set": {"status": "closed"}})
    escalated = local(runtime, "PATCH", f"/tables/{TABLE}/items",
                      json={"key": {"ticket_id": "T-esc"}, "set": {"status": "escalated"}})
    assert closed.status_code == escalated.status_code == 200

    created, change = changes(runtime, "T-esc")
    assert (created["event_name"], created["run_id"]) == ("INSERT", None)
    assert change["event_name"] == "MODIFY" and change["status_changes"] == ["escalated"]
    run = completed(runtime, change["run_id"])
    received = run["timeline"][0]["details"]
    assert (received["event_source"], received["event_type"]) == ("table", CHANGE_TYPE)
    payload = run["timeline"][-1]["details"]["payload"]
    assert payload["keys"] == {"ticket_id": "T-esc"}
    assert payload["item"] == {"ticket_id": "T-esc", "status": "escalated", "priority": 2}
    assert (payload["old_status"], payload["new_status"]) == ("open", "escalated")
    # the change to another status was read, and filtered out before the queue: no run
    assert [(c["event_name"], c["run_id"]) for c in changes(runtime, "T-closed")] == [("INSERT", None),
                                                                                    ("MODIFY", None)]


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/scheduler/trigger", {}, 400),
    ("POST", "/scheduler/trigger", {"schedule": 7}, 400),
    ("POST", "/scheduler/advance", {"seconds": -5}, 400),
    ("POST", "/scheduler/advance", {"seconds": "a day"}, 400),
    ("POST", "/scheduler/advance", {"seconds": 10**9}, 400),
    ("GET", "/scheduler/advance", None, 405),
    ("PATCH", f"/tables/{TABLE}/items", {"key": {"ticket_id": "T-none"}, "set": {"status": "x"}}, 404),
    ("PATCH", f"/tables/{TABLE}/items", {"key": {"nope": "x"}, "set": {"status": "x"}}, 400),
    ("PATCH", f"/tables/{TABLE}/items", {"key": {"ticket_id": "T-1"}, "set": {"ticket_id": "T-2"}}, 400),
    ("PUT", f"/tables/{TABLE}/items", {"item": {"status": "open"}}, 400),
    ("PUT", f"/tables/{TABLE}/items", "not an object", 400),
    ("GET", "/tables/nobody/items", None, 404),
    ("DELETE", f"/tables/{TABLE}/items", None, 405),
])
def test_bad_requests_to_the_trigger_endpoints_get_a_4xx(runtime: Runtime, method: str, path: str, body: Any,
                                                        status: int) -> None:
    answer = local(runtime, method, path, **({} if body is None else {"json": body}))
    assert answer.status_code == status, answer.text


def test_given_a_restart_then_the_table_keeps_its_items_and_no_schedule_fires_again(runtime: Runtime) -> None:
    local(runtime, "PUT", f"/tables/{TABLE}/items", json={"item": {"ticket_id": "T-kept", "status": "open"}})
    before = {s["schedule"]: s["next"] for s in local(runtime, "GET", "/scheduler").json()["schedules"]}

    runtime.restart()

    items = local(runtime, "GET", f"/tables/{TABLE}/items").json()["items"]
    assert {"ticket_id": "T-kept", "status": "open"} in items
    after = {s["schedule"]: s["next"] for s in local(runtime, "GET", "/scheduler").json()["schedules"]}
    # the day skipped before is remembered as fired: the next daily firing is still the one after it
    assert after[f"{WORKFLOW}.{DAILY}"] == before[f"{WORKFLOW}.{DAILY}"]
    # the kept item changed after the restart still starts its run
    local(runtime, "PATCH", f"/tables/{TABLE}/items", json={"key": {"ticket_id": "T-kept"},
                                                            "set": {"status": "escalated"}})
    change = next(c for c in changes(runtime, "T-kept", count=1) if c["event_name"] == "MODIFY")
    assert change["status_changes"] == ["escalated"]
    assert completed(runtime, change["run_id"])["workflow"] == WORKFLOW
