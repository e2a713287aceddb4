"""The support triage workflow end to end, through the local runtime over real HTTP."""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import LOW_RISK, NEEDS_APPROVAL, Runtime, states, ticket


def test_given_a_low_risk_ticket_when_sent_then_it_completes_with_no_approval(runtime: Runtime) -> None:
    started = time.monotonic()
    response = runtime.send(LOW_RISK)
    elapsed = time.monotonic() - started

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["duplicate"] is False and body["run_id"] and body["event_id"]
    assert elapsed < 5  # accepted without waiting for the workflow

    run = runtime.wait_status(body["run_id"], "completed")
    assert run["workflow"] == "support_triage"
    steps = [step for _, step in states(run)]
    assert steps[0] == "ingest" and run["timeline"][0]["state"] == "received"
    for step in ("router", "validate", "classify", "fetch_account", "draft_reply", "guardrail", "send_reply"):
        assert step in steps, steps
    assert "approval" not in steps
    classify = next(e for e in run["timeline"] if e["step"] == "classify" and "kind" not in e["details"])
    assert classify["details"]["category"] == "billing"
    account = next(e for e in run["timeline"] if e["step"] == "fetch_account")
    assert account["details"]["found"] is True
    assert [(c["tool"], c["outcome"]) for c in account["details"]["tool_calls"]] == [("crm.find_account", "found")]
    assert run["timeline"][-1]["state"] == "completed"
    replies = httpx.get(f"{runtime.url}/_local/helpdesk/replies").json()["replies"]
    assert [r for r in replies if r["run_id"] == body["run_id"]]


def test_given_a_refund_when_the_approver_approves_via_the_emailed_link_then_it_completes(
    runtime: Runtime,
) -> None:
    run_id = runtime.send(NEEDS_APPROVAL).json()["run_id"]
    runtime.wait_status(run_id, "pending_approval")
    link = runtime.approval_link(run_id)

    page = httpx.get(link)
    assert page.status_code == 200
    assert "Approve" in page.text and "Reject" in page.text and "refund" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"

    decided = httpx.post(link, data={"decision": "approve"})
    assert decided.status_code == 200, decided.text
    run = runtime.wait_status(run_id, "completed")
    order = [s for s, _ in states(run)]
    assert order.index("pending_approval") < order.index("approved") < order.index("completed")


def test_given_a_refund_when_the_approver_rejects_then_the_run_ends_rejected_and_nothing_is_sent(
    runtime: Runtime,
) -> None:
    run_id = runtime.send(ticket("Refund", "I want a refund now.", "grace@example.com")).json()["run_id"]
    runtime.wait_status(run_id, "pending_approval")
    link = runtime.approval_link(run_id)

    assert httpx.post(link, data={"decision": "reject"}).status_code == 200
    run = runtime.wait_for(run_id, lambda r: r["status"] == "rejected" and r["timeline"][-1]["step"] == "outcome",
                           what="rejected outcome")
    assert run["timeline"][-1]["details"]["reason"] == "approver_rejected"
    assert "send_reply" not in [step for _, step in states(run)]
    replies = httpx.get(f"{runtime.url}/_local/helpdesk/replies").json()["replies"]
    assert not [r for r in replies if r["run_id"] == run_id]


def test_given_an_approval_link_when_opened_repeatedly_then_nothing_changes(runtime: Runtime) -> None:
    run_id = runtime.send(NEEDS_APPROVAL).json()["run_id"]
    runtime.wait_status(run_id, "pending_approval")
    link = runtime.approval_link(run_id)
    before = runtime.run(run_id)

    for _ in range(3):
        assert httpx.get(link).status_code == 200
        assert httpx.head(link).status_code == 200

    after = runtime.run(run_id)
    assert after["status"] == "pending_approval"
    assert after["timeline"] == before["timeline"]
    assert "Approve" in httpx.get(link).text  # still undecided


def test_given_a_decided_link_when_used_again_then_a_clear_page_and_nothing_changes(runtime: Runtime) -> None:
    run_id = runtime.send(NEEDS_APPROVAL).json()["run_id"]
    runtime.wait_status(run_id, "pending_approval")
    link = runtime.approval_link(run_id)
    assert httpx.post(link, data={"decision": "approve"}).status_code == 200
    done = runtime.wait_status(run_id, "completed")

    again = httpx.post(link, data={"decision": "reject"})
    assert again.status_code == 409
    assert "already approved" in again.text
    assert httpx.get(link).status_code == 200 and "already approved" in httpx.get(link).text
    assert runtime.run(run_id)["timeline"] == done["timeline"]


def test_given_an_unknown_token_then_not_found_page(runtime: Runtime) -> None:
    for token in ("A" * 43, "short", "..%2F..%2Fetc"):
        assert httpx.get(f"{runtime.url}/approvals/{token}").status_code == 404
        assert httpx.post(f"{runtime.url}/approvals/{token}", data={"decision": "approve"}).status_code == 404


def test_given_a_ticket_missing_data_then_the_run_fails_listing_the_fields(runtime: Runtime) -> None:
    run_id = runtime.send(ticket("Help", "", "")).json()["run_id"]
    run = runtime.wait_status(run_id, "failed")
    outcome = run["timeline"][-1]
    assert outcome["details"]["reason"] == "missing_data"
    assert sorted(outcome["details"]["fields"]) == ["body", "customer_email"]


def test_given_the_crm_down_then_the_fetch_is_retried_and_the_run_completes_partial(runtime: Runtime) -> None:
    assert httpx.post(f"{runtime.url}/_local/crm/outage", json={"enabled": True}).status_code == 200
    try:
        run_id = runtime.send(LOW_RISK).json()["run_id"]
        run = runtime.wait_status(run_id, "completed", timeout=60)
    finally:
        httpx.post(f"{runtime.url}/_local/crm/outage", json={"enabled": False})
    retried = [e for e in run["timeline"] if e["state"] == "retried" and e["step"] == "fetch_account"]
    # CrmUnavailable is retried once (every retry of the automatic path fits Express's five minutes)
    assert [e["attempt"] for e in retried] == [0, 1]
    assert all(e["details"]["reason"] == "crm_unavailable" for e in retried)
    partial = [e for e in run["timeline"] if e["details"].get("partial") is True]
    assert partial and partial[0]["details"]["reason"] == "crm_unavailable"


def test_given_an_event_type_with_no_route_then_the_run_fails_no_route(runtime: Runtime) -> None:
    response = runtime.send({"type": "newsletter.signup", "data": {"email": "x@example.com"}})
    assert response.status_code == 202
    run = runtime.wait_status(response.json()["run_id"], "failed")
    assert run["timeline"][-1]["details"]["reason"] == "no_route"
