"""The sales-ops lead workflow end to end, through ``interlock run`` over real HTTP: the form and HubSpot triggers,
the CRM, enrichment and Slack fakes speaking their real protocols, and the sales manager's emailed approval."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from e2e.conftest import Runtime

pytestmark = pytest.mark.e2e


def unique_name() -> str:
    """A person's name no other test uses (letters only: a name with digits is not a clean name)."""
    return "Jordan " + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8]).capitalize()


def told(runtime: Runtime, name: str) -> list[dict[str, Any]]:
    """The Slack messages that name this lead."""
    return [m for m in slack(runtime) if name in m["text"]]


def lead(**data: Any) -> dict[str, Any]:
    fields = {"name": unique_name(), "email": f"jordan.{uuid.uuid4().hex[:8]}@hooli.example", "company": "Hooli",
              "company_domain": "hooli.example", "plan_interest": "enterprise",
              "message": "We are evaluating approval workflows for 400 seats and would like a demo this month."}
    return {"type": "lead.submitted", "data": {**fields, **data}}


def step_details(run: dict[str, Any], step: str) -> dict[str, Any]:
    found = [e["details"] for e in run["timeline"] if e["step"] == step and e["state"] in ("processing", "completed")]
    assert found, f"no {step} entry: {[(e['state'], e['step']) for e in run['timeline']]}"
    return dict(found[-1])


def crm(runtime: Runtime, kind: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{runtime.url}/_local/crm/crm/v3/objects/{kind}", timeout=10).json()["results"])


def slack(runtime: Runtime) -> list[dict[str, Any]]:
    return list(httpx.get(f"{runtime.url}/_local/slack/messages", timeout=10).json()["messages"])


def test_given_a_new_lead_from_the_form_then_it_is_created_scored_assigned_and_its_owner_told_once(
    runtime: Runtime,
) -> None:
    name = unique_name()
    answer = runtime.send(lead(name=name))
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]

    run = runtime.wait_status(run_id, "completed")

    assert run["workflow"] == "sales_lead"
    steps = [e["step"] for e in run["timeline"] if e["state"] in ("processing", "completed")]
    for step in ("extract", "dedupe", "enrich", "score", "assign", "discount_check", "write_crm", "notify_owner"):
        assert step in steps, step
    written = step_details(run, "write_crm")
    assert written["contact_action"] == "created" and written["deal_id"]
    assert written["discount_status"] == "not_requested"
    assert step_details(run, "enrich")["status"] == "found"
    score = step_details(run, "score")
    assert 0 <= score["score"] <= 100 and score["decided_by"] == "offline"
    owner = step_details(run, "assign")
    messages = told(runtime, name)
    assert len(messages) == 1, slack(runtime)[-3:]
    assert messages[0]["ts"] == step_details(run, "notify_owner")["ts"]
    assert owner["owner_id"] and any(c["id"] == written["contact_id"] for c in crm(runtime, "contacts"))


def test_given_a_lead_whose_contact_exists_then_the_contact_is_updated_not_created(runtime: Runtime) -> None:
    before = len(crm(runtime, "contacts"))
    run_id = runtime.send(lead(name="Ada Lovelace", email="ada@analytical.example", company="Analytical Engines",
                               company_domain="analytical.example")).json()["run_id"]

    run = runtime.wait_status(run_id, "completed")

    written = step_details(run, "write_crm")
    assert (written["contact_action"], written["contact_matched_by"]) == ("updated", "dedupe")
    assert written["contact_id"] == "5001" and written["company_attached"] is True
    assert len(crm(runtime, "contacts")) == before
    assert step_details(run, "dedupe")["contact_id"] == "5001"


def test_given_enrichment_down_then_the_lead_goes_on_partial_and_a_person_gets_a_research_task(
    runtime: Runtime,
) -> None:
    assert httpx.post(f"{runtime.url}/_local/enrichment/outage", json={"enabled": True}).status_code == 200
    try:
        run_id = runtime.send(lead(company="Vandelay Industries", company_domain="vandelay.example",
                                   email=f"art.{uuid.uuid4().hex[:6]}@vandelay.example")).json()["run_id"]
        run = runtime.wait_status(run_id, "completed", timeout=90)
    finally:
        httpx.post(f"{runtime.url}/_local/enrichment/outage", json={"enabled": False})

    retried = [e for e in run["timeline"] if e["state"] == "retried" and e["step"] == "enrich"]
    assert retried and all(e["details"]["reason"] == "enrichment_unavailable" for e in retried)
    enrichment = step_details(run, "enrichment_failed")
    assert enrichment["status"] == "failed" and enrichment["partial"] is True and enrichment["needs_research"]
    task = step_details(run, "create_fallback_task")
    assert task["created"] is True and any(t["id"] == task["task_id"] for t in crm(runtime, "tasks"))


def test_given_a_free_mail_lead_then_it_never_scores_as_enterprise_nor_joins_a_company(runtime: Runtime) -> None:
    run_id = runtime.send(lead(email=f"sam.{uuid.uuid4().hex[:6]}@gmail.com", company="Globex Corporation",
                               company_domain="globex.example")).json()["run_id"]

    run = runtime.wait_status(run_id, "completed")

    assert step_details(run, "dedupe")["free_mail"] is True
    score = step_details(run, "score")
    assert score["band"] != "enterprise" and score["caps"], score
    assert step_details(run, "write_crm")["company_attached"] is False


def _approve(runtime: Runtime, run_id: str, decision: str) -> str:
    link = runtime.approval_link(run_id)
    page = httpx.get(link, timeout=10)
    assert page.status_code == 200 and "discount" in page.text.lower()
    assert httpx.post(link, data={"decision": decision}, timeout=10).status_code == 200
    return page.text


@pytest.mark.parametrize(("decision", "status", "applied"),
                         [("approve", "approved", 20.0), ("reject", "rejected", None)])
def test_given_a_discount_above_the_threshold_then_the_sales_manager_decides_and_the_owner_is_told(
    runtime: Runtime, decision: str, status: str, applied: float | None,
) -> None:
    name = unique_name()
    run_id = runtime.send(lead(name=name, requested_discount_pct=20)).json()["run_id"]
    pending = runtime.wait_status(run_id, "pending_approval")
    assert step_details(pending, "discount_check")["needs_approval"] is True

    page = _approve(runtime, run_id, decision)
    run = runtime.wait_status(run_id, "completed")

    assert "20%" in page and "Score" in page  # the page shows the discount asked and the lead's score
    written = step_details(run, "write_crm")
    assert (written["discount_status"], written["discount_pct_applied"]) == (status, applied)
    messages = told(runtime, name)
    assert len(messages) == 1
    if status == "rejected":
        assert "reject" in messages[0]["text"].lower()


def test_given_a_hubspot_contact_creation_batch_then_each_contact_is_fetched_and_becomes_a_lead(
    runtime: Runtime,
) -> None:
    ids = [95001234501, 95001234502]
    batch = [{"eventId": int(uuid.uuid4().int % 10**9), "subscriptionId": 2912550, "portalId": 62515,
              "appId": 1160452, "occurredAt": 1736933400000, "subscriptionType": "contact.creation",
              "attemptNumber": 0, "objectId": contact, "changeFlag": "CREATED", "changeSource": "CRM_UI"}
             for contact in ids]

    answer = runtime.send_as("hubspot", json.dumps(batch).encode())
    assert answer.status_code in (200, 202), answer.text
    runs = [r["run_id"] for r in answer.json()["events"]]

    assert len(runs) == 2
    for run_id in runs:
        run = runtime.wait_status(run_id, "completed")
        fetched = step_details(run, "fetch_contact")
        assert fetched["provenance"]["email"] == "hubspot_crm"
        assert step_details(run, "write_crm")["contact_action"] == "updated"  # HubSpot's own contact, never twice
