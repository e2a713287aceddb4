"""A restart of ``interlock run`` on the same state directory forgets nothing (Ctrl-C, then run again)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from interlock import cli

from tests.e2e.conftest import LOW_RISK, Runtime, _start


@dataclass
class Restarted:
    runtime: Runtime
    completed: dict[str, Any]  # a low-risk run, completed before the restart: its run as it was then
    completed_id: str  # the webhook-id it was delivered with
    waiting_id: str  # a refund request's run, pending approval at the restart
    waiting_emails: int  # the approval emails for it before the restart


def _words(text: str) -> set[str]:
    """What the state file holds that the crash test looks for: quoted strings, and the run ids in them."""
    quoted = set(re.findall(r'"[^"\\]*"', text))
    return quoted | {q.strip('"') for q in quoted}


def _emails_for(rt: Runtime, run_id: str) -> int:
    count = 0
    for message in rt.emails():
        text = message.get_body(preferencelist=("plain",))
        count += f"Run: {run_id}" in (text.get_content() if text else "")
    return count


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restarted]:
    """A runtime with one completed run and one waiting for approval, then stopped and started again."""
    for rt in _start(tmp_path_factory.mktemp("restart")):
        done = rt.send(LOW_RISK, msg_id="msg_restart_completed").json()
        refund = cli._scheme_samples("standard-webhooks")["refund_request"].read_bytes()
        waiting = rt.send(refund, msg_id="msg_restart_refund").json()
        completed = rt.wait_status(done["run_id"], "completed")
        assert len(rt.replies(done["run_id"])) == 1
        rt.wait_status(waiting["run_id"], "pending_approval")
        rt.approval_link(waiting["run_id"])  # its email is out
        emails = _emails_for(rt, waiting["run_id"])

        rt.restart()

        yield Restarted(rt, completed, "msg_restart_completed", waiting["run_id"], emails)


def test_a_completed_run_is_still_there_with_its_timeline(restarted: Restarted) -> None:
    before = restarted.completed

    after = restarted.runtime.run(before["run_id"])

    assert after["status"] == "completed"
    assert after["timeline"] == before["timeline"]


def test_a_run_pending_approval_can_be_approved_from_the_emailed_link_and_completes(restarted: Restarted) -> None:
    rt, run_id = restarted.runtime, restarted.waiting_id
    link = rt.approval_link(run_id)  # the link emailed before the restart

    page = httpx.get(link)
    assert page.status_code == 200, page.text
    assert "Unknown link" not in page.text
    assert "approve" in page.text.lower()
    decided = httpx.post(link, data={"decision": "approve"})
    assert decided.status_code == 200, decided.text

    run = rt.wait_status(run_id, "completed")
    order = [e["state"] for e in run["timeline"]]
    assert order.index("pending_approval") < order.index("approved") < order.index("completed")
    assert order.count("pending_approval") == 1  # the approval was not requested a second time
    assert len(rt.replies(run_id)) == 1
    assert _emails_for(rt, run_id) == restarted.waiting_emails == 1


def test_redelivering_a_completed_event_after_the_restart_is_a_duplicate(restarted: Restarted) -> None:
    rt, before = restarted.runtime, restarted.completed

    answer = rt.send(LOW_RISK, msg_id=restarted.completed_id)

    assert answer.status_code in (200, 202), answer.text
    assert answer.json()["duplicate"] is True
    assert answer.json()["run_id"] == before["run_id"]
    after = rt.run(before["run_id"])
    assert after["status"] == "completed"
    assert rt.replies(before["run_id"]) == []  # this process's helpdesk: no second reply since the restart


def test_after_a_crash_what_was_saved_is_there(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Given a completed run, once the state file holds it (saved shortly after each change, with no stop)
    for rt in _start(tmp_path_factory.mktemp("crash")):
        run_id = rt.send(LOW_RISK, msg_id="msg_crash_completed").json()["run_id"]
        before = rt.wait_status(run_id, "completed")
        state_file = rt.state_dir / "state" / "local-state.json"
        deadline = time.monotonic() + 30
        while not (state_file.exists() and {'"completed"', run_id} <= _words(state_file.read_text())):
            assert time.monotonic() < deadline, "the completed run was never saved"
            time.sleep(0.1)

        # When the runtime is killed (kill -9) and started again
        rt.restart(crash=True)

        # Then the run is there, and its redelivery is a duplicate
        assert rt.run(run_id)["timeline"] == before["timeline"]
        again = rt.send(LOW_RISK, msg_id="msg_crash_completed").json()
        assert (again["duplicate"], again["run_id"]) == (True, run_id)
