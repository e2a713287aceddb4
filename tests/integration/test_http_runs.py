"""GET /runs/{run_id} through the real handler, against moto DynamoDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import http_runs
from interlock.models import EntryState, Envelope, TimelineEntry, run_id_for
from interlock.timeline import DynamoTimelineStore

from integration.support import TABLE_NAME, header, rest_event

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def get(lambda_context, run_id: str) -> tuple[int, dict, dict]:
    event = rest_event("GET", f"/runs/{run_id}", "/runs/{run_id}", {"run_id": run_id})
    response = http_runs.handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"]), response


def test_given_a_run_with_a_timeline_when_read_then_200_with_status_and_entries_in_order(cloud, lambda_context):
    store = DynamoTimelineStore(TABLE_NAME)
    key = "form:msg_runs"
    envelope = Envelope(event_id="msg_runs", source="form", type="support.ticket", payload_version="v1",
                        received_at=T0, dedupe_key=key, run_id=run_id_for(key), payload={"type": "support.ticket"})
    store.create_run_once(envelope, 3600)
    steps = [(EntryState.PROCESSING, "router", 3), (EntryState.PROCESSING, "validate", 1),
             (EntryState.RETRIED, "fetch_account", 2), (EntryState.FAILED, "outcome", 4)]
    for state, step, minutes in steps:
        store.record(envelope.run_id, TimelineEntry(state=state, step=step, at=T0 + timedelta(minutes=minutes),
                                                    details={"n": minutes}), workflow="support_triage")

    status, body, response = get(lambda_context, envelope.run_id)

    assert status == 200
    assert header(response, "Content-Type") == "application/json"
    assert header(response, "Cache-Control") == "no-store"
    assert body["run_id"] == envelope.run_id
    assert body["status"] == "failed"
    assert body["workflow"] == "support_triage"
    assert [(e["state"], e["step"]) for e in body["timeline"]] == [
        ("received", "ingest"), ("processing", "validate"), ("retried", "fetch_account"), ("processing", "router"),
        ("failed", "outcome")]
    assert [e["details"].get("n") for e in body["timeline"][1:]] == [1, 2, 3, 4]
    assert datetime.fromisoformat(body["created_at"]) == T0


def test_given_an_unknown_run_when_read_then_404_with_a_json_error(cloud, lambda_context):
    status, body, response = get(lambda_context, "00000000-0000-5000-8000-000000000000")

    assert status == 404
    assert body["error"] == "unknown_run"
    assert header(response, "Cache-Control") == "no-store"
