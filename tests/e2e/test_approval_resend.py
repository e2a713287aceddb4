"""A lost approval email sent again through the local runtime over real HTTP (``interlock resend``): the new link
decides, the old one is dead, the run completes once."""

from __future__ import annotations

import json

import httpx

from tests.e2e.conftest import NEEDS_APPROVAL, Runtime
from tests.e2e.test_operator import cli


def test_given_a_lost_approval_email_when_resent_then_the_new_link_decides_and_the_old_is_dead(
    runtime: Runtime,
) -> None:
    run_id = runtime.send(NEEDS_APPROVAL).json()["run_id"]
    runtime.wait_status(run_id, "pending_approval")
    old = runtime.approval_link(run_id)

    done = cli(runtime, "resend", run_id, "--json")

    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["run_id"] == run_id and len(answer["resent_to"]) == 1
    found = runtime.wait_emails(lambda m: f"Run: {run_id}" in m.get_body(preferencelist=("plain",)).get_content(), 2)
    assert len(found) == 2
    (new,) = [link for _, link in runtime.approval_links(run_id) if link != old]
    assert httpx.get(old, timeout=10).status_code == 404
    assert httpx.post(old, data={"decision": "approve"}, timeout=10).status_code == 404
    assert httpx.get(new, timeout=10).status_code == 200
    assert httpx.post(new, data={"decision": "approve"}, timeout=10).status_code == 200
    run = runtime.wait_status(run_id, "completed")
    resent = [e for e in run["timeline"] if e["details"].get("reason") == "approval_resent"]
    assert [(e["state"], e["step"]) for e in resent] == [("retried", "approval")]
    assert [e["state"] for e in run["timeline"]].count("approved") == 1

    again = cli(runtime, "resend", run_id)
    assert again.returncode == 1
    assert "the run waits for no approval (it is completed) (409 not_waiting)" in again.stderr
    wrong = httpx.post(f"{runtime.url}/runs/{run_id}/approvals/resend", content=b'{"to": 1}', timeout=10)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "bad_request")
