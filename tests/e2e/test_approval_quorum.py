"""Approvals that need two different people, end to end through ``interlock run`` over real HTTP: a throwaway
workflow whose wait asks ``approvers: 2`` of a pool of three, each approver with their own emailed link."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from quorum_workflow import EVENT_TYPE, PACKAGE, write

from e2e.conftest import Runtime, _start

pytestmark = pytest.mark.e2e

POOL = ("ann@corp.test", "bob@corp.test", "cy@corp.test")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("quorum")
    write(root / "packages")
    # the package first, then the path this process imports Interlock from
    path = os.pathsep.join([str(root / "packages"), *sys.path])
    yield from _start(root, INTERLOCK_EXTRA_WORKFLOWS=PACKAGE, PYTHONPATH=path,
                      INTERLOCK_APPROVER_EMAIL=",".join(POOL))


def links(rt: Runtime, run_id: str) -> dict[str, str]:
    """Each approver's own link for ``run_id``, from the emails in the outbox (once all three are there)."""
    import re
    import time

    deadline = time.monotonic() + 30
    found: dict[str, str] = {}
    while time.monotonic() < deadline:
        for message in rt.emails():
            text = message.get_body(preferencelist=("plain",))
            content = text.get_content() if text else ""
            if f"Run: {run_id}" in content:
                match = re.search(r"https?://\S+/approvals/[A-Za-z0-9_-]+", content)
                assert match, content
                found[str(message["To"])] = match.group(0)
        if len(found) == len(POOL):
            return found
        time.sleep(0.2)
    raise AssertionError(f"not every approver was emailed for {run_id}: {sorted(found)}")


def waiting(rt: Runtime, item: str = "laptop") -> tuple[str, dict[str, str]]:
    answer = rt.send({"type": EVENT_TYPE, "data": {"item": item, "amount": "2400.00"}})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    rt.wait_status(run_id, "pending_approval")
    return run_id, links(rt, run_id)


def decide(link: str, decision: str) -> httpx.Response:
    return httpx.post(link, data={"decision": decision}, timeout=10)


def decisions(run: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["state"], e["details"].get("approver", "")) for e in run["timeline"]
            if e["step"] == "approval" and e["state"] in ("approved", "rejected")]


def test_given_two_approvers_needed_when_one_approves_then_the_second_then_the_run_goes_on_approved(
    runtime: Runtime,
) -> None:
    run_id, link = waiting(runtime)
    pending = runtime.run(run_id)["timeline"][-1]
    assert (pending["state"], pending["details"]["required"]) == ("pending_approval", 2)
    assert sorted(pending["details"]["approvers"]) == sorted(POOL)
    assert len(set(link.values())) == 3  # each approver their own link

    page = httpx.get(link["ann@corp.test"], timeout=10)
    assert page.status_code == 200 and "0 of 2 approvals" in page.text and "Approve this purchase?" in page.text
    first = decide(link["ann@corp.test"], "approve")
    assert first.status_code == 200 and "1 of 2 approvals" in first.text
    assert runtime.run(run_id)["status"] == "pending_approval"
    assert "1 of 2 approvals" in httpx.get(link["bob@corp.test"], timeout=10).text

    second = decide(link["bob@corp.test"], "approve")
    assert second.status_code == 200, second.text

    run = runtime.wait_status(run_id, "completed")
    assert decisions(run) == [("approved", "ann@corp.test"), ("approved", "bob@corp.test")]
    assert [e["step"] for e in run["timeline"]][-1] == "done"
    # the third approver's link is closed: the request was decided without them
    closed = httpx.get(link["cy@corp.test"], timeout=10)
    assert closed.status_code == 200 and "This approval is closed" in closed.text and "<form" not in closed.text
    late = decide(link["cy@corp.test"], "reject")
    assert late.status_code == 409 and "closed" in late.text
    assert runtime.run(run_id)["status"] == "completed"
    assert decisions(runtime.run(run_id)) == decisions(run)


def test_given_two_approvers_needed_when_one_approves_and_another_rejects_then_the_run_is_rejected(
    runtime: Runtime,
) -> None:
    run_id, link = waiting(runtime, "server")
    assert decide(link["bob@corp.test"], "approve").status_code == 200
    rejected = decide(link["cy@corp.test"], "reject")
    assert rejected.status_code == 200, rejected.text

    run = runtime.wait_status(run_id, "rejected")
    assert decisions(run) == [("approved", "bob@corp.test"), ("rejected", "cy@corp.test")]
    outcome = run["timeline"][-1]
    assert (outcome["step"], outcome["details"]["reason"]) == ("outcome", "approver_rejected")
    assert [d["approver"] for d in outcome["details"]["approval"]["decisions"]] == ["bob@corp.test", "cy@corp.test"]
    assert "This approval is closed" in httpx.get(link["ann@corp.test"], timeout=10).text
    assert decide(link["ann@corp.test"], "approve").status_code == 409
    assert runtime.run(run_id)["status"] == "rejected"


def test_given_two_approvers_needed_when_the_same_person_approves_twice_then_the_run_still_waits(
    runtime: Runtime,
) -> None:
    run_id, link = waiting(runtime, "desk")
    assert decide(link["ann@corp.test"], "approve").status_code == 200
    again = decide(link["ann@corp.test"], "approve")

    assert again.status_code == 409 and "already approved" in again.text and "1 of 2 approvals" in again.text
    run = runtime.run(run_id)
    assert run["status"] == "pending_approval"
    assert decisions(run) == [("approved", "ann@corp.test")]
    page = httpx.get(link["bob@corp.test"], timeout=10)
    assert page.status_code == 200 and "1 of 2 approvals" in page.text and "<form" in page.text


FORMS = [b"decision=approve&decision=reject", b"\xff\xfe", b"decision=%ff", b"decision=" + b"a" * 20_000,
         b"&" * 3000, b"decision", b"%", b"decision=approve\x00", b"decision=APPROVE", b""]


def test_malformed_posts_to_links_in_every_quorum_state_get_a_4xx_and_change_nothing(runtime: Runtime) -> None:
    rng = random.Random(20261202)
    run_id, link = waiting(runtime, "chair")
    assert decide(link["ann@corp.test"], "approve").status_code == 200  # ann: counted; bob, cy: pending
    closed_run, closed_links = waiting(runtime, "lamp")
    assert decide(closed_links["bob@corp.test"], "reject").status_code == 200  # ann, cy: closed; bob: decided
    runtime.wait_status(closed_run, "rejected")
    targets = [*link.values(), *closed_links.values()]
    before = {rid: decisions(runtime.run(rid)) for rid in (run_id, closed_run)}

    with httpx.Client(timeout=10) as client:
        for _ in range(60):
            target = rng.choice(targets)
            method = rng.choice(["POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
            content_type = rng.choice(["application/x-www-form-urlencoded", "text/plain", "application/json", ""])
            response = client.request(method, target + rng.choice(["", "/x", "%00"]), content=rng.choice(FORMS),
                                      headers={"Content-Type": content_type} if content_type else {})
            assert response.status_code < 500, (method, response.status_code, response.text[:200])
            assert response.status_code >= 400

    assert {rid: decisions(runtime.run(rid)) for rid in (run_id, closed_run)} == before
    assert runtime.run(run_id)["status"] == "pending_approval"
