"""The Step Functions task handlers (functions/step_*.py), invoked as the ASL invokes them, against moto DynamoDB."""

from __future__ import annotations

import json
from typing import Any

import httpx
import job_act
import job_decide
import job_query
import job_record
import job_validate
import pytest
from interlock import wiring
from interlock.connectors.crm import HttpCrm
from interlock.connectors.helpdesk import HttpHelpdesk
from interlock.errors import CrmUnavailable, HelpdeskRejected, MissingData, NotConfigured
from interlock.models import Envelope, run_id_for, utcnow
from interlock.timeline import DynamoTimelineStore

from integration.support import TABLE_NAME


def task_of(step: str) -> dict[str, str]:
    """What a support_triage task names: its workflow and step (the rest is the step's input)."""
    return {"workflow": "support_triage", "step": step}

DATA = {"subject": "Invoice is wrong", "body": "I was charged twice on my invoice",
        "customer_email": "ada@example.com", "customer_name": "Ada"}


@pytest.fixture
def run(cloud) -> Envelope:
    key = "form:msg_steps"
    envelope = Envelope(event_id="msg_steps", source="form", type="support.ticket", payload_version="v1",
                        received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key),
                        payload={"type": "support.ticket", "data": DATA})
    DynamoTimelineStore(TABLE_NAME).create_run_once(envelope, 3600)
    return envelope


def entries(run_id: str) -> list[tuple[str, str, int, dict[str, Any]]]:
    view = DynamoTimelineStore(TABLE_NAME).get(run_id)
    assert view is not None
    return [(e.state.value, e.step, e.attempt, e.details) for e in view.timeline]


def as_lambda_error(exc: Exception) -> dict[str, str]:
    """What Step Functions puts at ``$.error`` when a Python task raised ``exc``."""
    return {"Error": type(exc).__name__,
            "Cause": json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []})}


def test_given_a_ticket_when_the_happy_path_tasks_run_in_asl_order_then_the_run_completes_with_each_step_recorded(
    run, lambda_context, monkeypatch
):
    sent: list[httpx.Request] = []

    def helpdesk(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={"reply_id": "rep_1"})

    monkeypatch.setattr(wiring, "crm", lambda: HttpCrm("https://crm.example.com", transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"account_id": "acc_1", "name": "Ada L", "plan": "pro"}))))
    monkeypatch.setattr(wiring, "helpdesk", lambda: HttpHelpdesk("https://hd.example.com",
                                                                  transport=httpx.MockTransport(helpdesk)))
    state: dict[str, Any] = {"run_id": run.run_id, "envelope": run.model_dump(mode="json")}

    state["ticket"] = job_validate.handler({**task_of("validate"), "run_id": run.run_id, "attempt": 0,
                                            "envelope": state["envelope"]},
                                           lambda_context)
    state["classification"] = job_decide.handler({**task_of("classify"), "run_id": run.run_id, "attempt": 0,
                                                     "ticket": state["ticket"]}, lambda_context)
    state["account"] = job_query.handler({**task_of("fetch_account"), "run_id": run.run_id, "attempt": 0,
                                          "ticket": state["ticket"]},
                                                  lambda_context)
    state["draft"] = job_decide.handler({**task_of("draft_reply"), "run_id": run.run_id, "attempt": 0,
                                         "ticket": state["ticket"],
                                               "classification": state["classification"],
                                               "account": state["account"]}, lambda_context)
    state["delivery"] = job_act.handler({**task_of("send_reply"), "run_id": run.run_id, "attempt": 0,
                                         "ticket": state["ticket"],
                                                 "draft": state["draft"],
                                                 "classification": state["classification"]}, lambda_context)

    assert state["ticket"] == {**DATA, "thread": []}
    assert state["classification"]["category"] == "billing"
    assert state["account"]["account"]["plan"] == "pro"
    assert "on the pro plan" in state["draft"]["body"]
    calls = state["delivery"].pop("tool_calls")
    assert state["delivery"] == {"reply_id": "rep_1", "to": "ada@example.com"}
    assert [(c["tool"], c["outcome"]) for c in calls] == [("helpdesk.send_reply", "sent")]
    assert sent[0].headers["Idempotency-Key"] == run.run_id
    assert state["classification"]["decided_by"] == state["draft"]["decided_by"] == "offline"
    decision = [("processing", "decision_context"), ("processing", "decision_attempt"), ("processing", "decision")]
    assert [(s, d.get("kind", step)) for s, step, _, d in entries(run.run_id)] == [
        ("received", "ingest"), ("processing", "validate"), *decision, ("processing", "classify"),
        ("processing", "fetch_account"), *decision, ("processing", "draft_reply"), ("completed", "send_reply")]
    assert DynamoTimelineStore(TABLE_NAME).get(run.run_id).status.value == "completed"


def test_given_a_ticket_missing_fields_when_validated_then_the_task_fails_with_json_the_recorder_understands(
    run, lambda_context
):
    envelope = run.model_copy(update={"payload": {"type": "support.ticket", "data": {"body": "b"}}})

    with pytest.raises(MissingData) as exc_info:
        job_validate.handler({**task_of("validate"), "run_id": run.run_id, "attempt": 0,
                              "envelope": envelope.model_dump(mode="json")},
                              lambda_context)

    outcome = job_record.handler(
        {**task_of("record"), "run_id": run.run_id, "attempt": 0, "kind": "failed",
         "error": as_lambda_error(exc_info.value)},
        lambda_context,
    )

    assert outcome == {"outcome": "failed", "reason": "missing_data"}
    state, step, _, details = entries(run.run_id)[-1]
    assert (state, step) == ("failed", "outcome")
    assert details["fields"] == ["subject", "customer_email"]
    assert DynamoTimelineStore(TABLE_NAME).get(run.run_id).status.value == "failed"


def test_given_the_crm_is_down_when_the_account_is_fetched_then_a_retried_entry_is_left_for_each_attempt(
    run, lambda_context, monkeypatch
):
    monkeypatch.setattr(wiring, "crm", lambda: HttpCrm("https://crm.example.com",
                                                       transport=httpx.MockTransport(lambda r: httpx.Response(503))))
    event = {"run_id": run.run_id, "ticket": DATA}

    for attempt in (0, 1):
        with pytest.raises(CrmUnavailable):
            job_query.handler({**task_of("fetch_account"), **event, "attempt": attempt}, lambda_context)
    partial = job_record.handler(
        {**task_of("record"), "run_id": run.run_id, "attempt": 0, "kind": "partial",
         "continued_without": "fetch_account",
         "error": as_lambda_error(CrmUnavailable("CRM answered 503", step="fetch_account", status=503))},
        lambda_context,
    )

    assert partial == {"found": False, "partial": True, "reason": "crm_unavailable"}
    assert [(s, step, attempt) for s, step, attempt, _ in entries(run.run_id)[1:]] == [
        ("retried", "fetch_account", 0), ("retried", "fetch_account", 1), ("processing", "fetch_account", 0)]
    assert entries(run.run_id)[1][3]["status"] == 503
    # No router started this run: a step's entries leave the run record as it was (the router's entry moves it)
    assert DynamoTimelineStore(TABLE_NAME).get(run.run_id).status.value == "received"


def test_given_no_crm_configured_when_the_account_is_fetched_then_the_run_continues_partial(run, lambda_context):
    result = job_query.handler({**task_of("fetch_account"), "run_id": run.run_id, "attempt": 0, "ticket": DATA},
                               lambda_context)

    assert result == {"found": False, "partial": True, "reason": "crm_not_configured", "account": None,
                      "tool_calls": []}


def test_given_no_helpdesk_configured_when_sending_then_the_task_fails_not_configured_and_nothing_completes(
    run, lambda_context
):
    event = {**task_of("send_reply"), "run_id": run.run_id, "attempt": 0, "ticket": DATA,
             "draft": {"subject": "Re: x", "body": "Hi", "template": "billing.v1"},
             "classification": {"category": "billing", "confidence": 0.9, "summary": "s", "decided_by": "t"}}

    with pytest.raises(NotConfigured) as exc_info:
        job_act.handler(event, lambda_context)

    assert json.loads(str(exc_info.value))["reason"] == "helpdesk_not_configured"
    assert DynamoTimelineStore(TABLE_NAME).get(run.run_id).status.value == "received"


def test_given_the_helpdesk_refuses_when_sending_then_the_run_fails_helpdesk_rejected(run, lambda_context,
                                                                                       monkeypatch):
    monkeypatch.setattr(wiring, "helpdesk", lambda: HttpHelpdesk(
        "https://hd.example.com", transport=httpx.MockTransport(lambda r: httpx.Response(422))))
    event = {**task_of("send_reply"), "run_id": run.run_id, "attempt": 0, "ticket": DATA,
             "draft": {"subject": "Re: x", "body": "Hi", "template": "billing.v1"},
             "classification": {"category": "billing", "confidence": 0.9, "summary": "s", "decided_by": "t"}}

    with pytest.raises(HelpdeskRejected) as exc_info:
        job_act.handler(event, lambda_context)
    job_record.handler({**task_of("record"), "run_id": run.run_id, "attempt": 0, "kind": "failed",
                                 "error": as_lambda_error(exc_info.value)}, lambda_context)

    view = DynamoTimelineStore(TABLE_NAME).get(run.run_id)
    assert view.status.value == "failed"
    assert view.timeline[-1].details["reason"] == "helpdesk_rejected"
    assert view.timeline[-1].details["status"] == 422


@pytest.mark.parametrize(("confidence", "requires"), [("0.9", False), ("0.95", True)])
def test_given_the_guardrail_threshold_from_the_environment_when_evaluated_then_it_is_applied(
    run, lambda_context, monkeypatch, fresh_import, confidence, requires
):
    monkeypatch.setenv("INTERLOCK_APPROVAL_MIN_CONFIDENCE", confidence)
    event = {**task_of("guardrail"), "run_id": run.run_id, "attempt": 0,
             "classification": {"category": "billing", "confidence": 0.9, "summary": "s", "decided_by": "t"},
             "account": {"found": False}, "draft": {"subject": "s", "body": "b", "template": "billing.v1"}}

    result = job_validate.handler(event, lambda_context)

    assert result["requires_approval"] is requires
    assert entries(run.run_id)[-1][:2] == ("processing", "guardrail")
