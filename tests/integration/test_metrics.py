"""The observability baseline: each handler publishes its CloudWatch metrics as EMF on stdout."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import job_act
import job_record
import pytest
import queue_router
from interlock import wiring
from interlock.connectors.helpdesk import HttpHelpdesk
from interlock.observability import metrics
from interlock.webhooks.standard import signed_headers

from integration.test_approvals import World, world  # noqa: F401  (fixture)
from integration.test_http_webhook import TICKET, body_of, post, secret  # noqa: F401  (fixture)
from integration.test_queue_router import new_run, sqs_record, state_machine  # noqa: F401  (fixture)


def task_of(step: str) -> dict[str, str]:
    """What a support_triage task names: its workflow and step (the rest is the step's input)."""
    return {"workflow": "support_triage", "step": step}


def published(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Metric names in the EMF documents printed since the last call, in order."""
    names: list[str] = []
    for line in capsys.readouterr().out.splitlines():
        try:
            doc: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "_aws" in doc:
            assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Interlock"
            names += [m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return names


def test_given_a_webhook_when_accepted_then_duplicated_then_refused_then_each_is_counted(
    cloud, secret, lambda_context, capsys  # noqa: F811
):
    body = body_of(TICKET)
    headers = signed_headers(secret, "msg_metrics", int(time.time()), body)
    capsys.readouterr()

    post(lambda_context, body=body, headers=headers)
    assert published(capsys) == ["EventsReceived"]
    post(lambda_context, body=body, headers=headers)
    assert published(capsys) == ["EventsDuplicate"]
    post(lambda_context, body=body, headers={**headers, "webhook-signature": "v1,AAAA"})
    assert published(capsys) == ["WebhookRejected"]


def test_given_a_queued_envelope_when_routed_then_runs_started_is_counted(
    state_machine, lambda_context, capsys  # noqa: F811
):
    envelope = new_run()
    capsys.readouterr()

    queue_router.handler({"Records": [sqs_record(envelope.model_dump_json())]}, lambda_context)

    assert published(capsys) == ["RunsStarted"]


def test_given_a_reply_sent_then_runs_completed_and_a_failure_recorded_then_runs_failed(
    cloud, lambda_context, capsys, monkeypatch
):
    run = new_run()
    monkeypatch.setattr(wiring, "helpdesk", lambda: HttpHelpdesk(
        "https://hd.example.com", transport=httpx.MockTransport(lambda r: httpx.Response(201, json={"reply_id": "r"}))))
    ticket = {"subject": "s", "body": "b", "customer_email": "ada@example.com"}
    capsys.readouterr()

    job_act.handler({**task_of("send_reply"), "run_id": run.run_id, "attempt": 0, "ticket": ticket,
                             "draft": {"subject": "Re: s", "body": "hi", "template": "billing.v1"},
                             "classification": {"category": "billing", "confidence": 0.9, "summary": "s",
                                                "decided_by": "keywords.v1"}}, lambda_context)
    assert published(capsys) == ["RunsCompleted"]

    job_record.handler({**task_of("record"), "run_id": run.run_id, "attempt": 0, "kind": "failed",
                                 "error": {"Error": "States.Timeout", "Cause": ""}}, lambda_context)
    assert published(capsys) == ["RunsFailed"]


def test_given_an_approval_requested_then_approvals_requested_is_counted(world: World, capsys):  # noqa: F811
    capsys.readouterr()

    world.request()
    metrics.flush_metrics()  # what the handler's log_metrics decorator does after each invocation

    assert published(capsys) == ["ApprovalsRequested"]
