"""Approval expiry and escalation, on a runtime with short approval windows."""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import NEEDS_APPROVAL, Runtime


def test_given_an_expired_link_then_410_and_the_run_escalates(short_approvals: Runtime) -> None:
    rt = short_approvals
    run_id = rt.send(NEEDS_APPROVAL).json()["run_id"]
    rt.wait_status(run_id, "pending_approval")
    link = rt.approval_link(run_id)
    time.sleep(2.5)  # the link's 2 s window has passed

    assert httpx.get(link).status_code == 410
    late = httpx.post(link, data={"decision": "approve"})
    assert late.status_code == 410
    assert "expired" in late.text

    run = rt.wait_status(run_id, "escalated", timeout=30)
    assert "approved" not in [e["state"] for e in run["timeline"]]
    assert run["timeline"][-1]["details"]["reason"] == "approval_timed_out"
