"""GET /runs and GET /approvals through the real handler, against moto DynamoDB and its index ``runs_by_status``."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import http_runs
import pytest
from interlock import run_list
from interlock.kit import RunSummary
from interlock.models import EntryState, Envelope, TimelineEntry, run_id_for
from interlock.timeline import DynamoTimelineStore

from integration.support import TABLE_NAME, rest_event

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def get(lambda_context: Any, path: str, params: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    event = rest_event("GET", path, path, {})
    event["queryStringParameters"] = params
    response = http_runs.handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"])


def make_run(store: DynamoTimelineStore, name: str, minutes: int, *, source: str = "form",
             workflow: str | None = "support_triage", end: EntryState | None = EntryState.COMPLETED,
             summary: RunSummary | None = None) -> str:
    key = f"{source}:{name}"
    envelope = Envelope(event_id=name, source=source, type="support.ticket", payload_version="v1",
                        received_at=T0 + timedelta(minutes=minutes), dedupe_key=key, run_id=run_id_for(key),
                        payload={})
    assert store.create_run_once(envelope, 3600)
    at = envelope.received_at + timedelta(seconds=1)
    if workflow:
        store.record(envelope.run_id, TimelineEntry(state=EntryState.PROCESSING, step="router", at=at),
                     workflow=workflow, summary=summary or RunSummary(subject=f"Ticket {name}"))
    if end is not None:
        store.record(envelope.run_id, TimelineEntry(state=end, step="outcome", at=at + timedelta(seconds=1)))
    return envelope.run_id


def all_pages(lambda_context: Any, params: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    runs: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        status, body = get(lambda_context, "/runs", {**params, **({"cursor": cursor} if cursor else {})})
        assert status == 200, body
        runs += body["runs"]
        pages += 1
        cursor = body["cursor"]
        if cursor is None:
            return runs, pages
        assert pages < 50


@pytest.fixture
def store(cloud: Any) -> DynamoTimelineStore:
    return DynamoTimelineStore(TABLE_NAME)


def test_given_runs_of_every_status_when_listed_a_page_at_a_time_then_each_comes_once_newest_first(
        store, lambda_context):
    ends = [EntryState.COMPLETED, EntryState.FAILED, None, EntryState.REJECTED, EntryState.COMPLETED,
            EntryState.ESCALATED, EntryState.IGNORED]
    made = [make_run(store, f"r{i}", i, end=end) for i, end in enumerate(ends)]
    received = make_run(store, "r_received", 30, workflow=None, end=None)

    runs, pages = all_pages(lambda_context, {"limit": "3"})

    assert [r["run_id"] for r in runs] == [received, *reversed(made)]
    assert pages == 3
    assert [r["status"] for r in runs[:3]] == ["received", "ignored", "escalated"]
    first = runs[-1]
    assert first["workflow"] == "support_triage" and first["source"] == "form"
    assert first["subject"] == "Ticket r0" and first["event_type"] == "support.ticket"
    assert first["created_at"] == "2026-11-30T09:00:00.000000Z"


def test_given_a_status_filter_when_listed_then_only_those_statuses_oldest_first_when_asked(store, lambda_context):
    failed = make_run(store, "f1", 1, end=EntryState.FAILED)
    make_run(store, "c1", 2)
    escalated = make_run(store, "e1", 3, end=EntryState.ESCALATED)
    failed_later = make_run(store, "f2", 4, end=EntryState.FAILED)

    runs, _ = all_pages(lambda_context, {"status": "failed"})
    both, _ = all_pages(lambda_context, {"status": "failed,escalated", "order": "oldest", "limit": "1"})

    assert [r["run_id"] for r in runs] == [failed_later, failed]
    assert [r["run_id"] for r in both] == [failed, escalated, failed_later]


def test_given_a_run_whose_status_moved_when_listed_then_it_is_in_its_new_status_only(store, lambda_context):
    run_id = make_run(store, "moving", 1, end=None)
    assert [r["status"] for r in all_pages(lambda_context, {})[0]] == ["processing"]

    store.record(run_id, TimelineEntry(state=EntryState.FAILED, step="outcome", details={"reason": "x"}))

    runs, _ = all_pages(lambda_context, {})
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "failed")]
    assert all_pages(lambda_context, {"status": "processing"})[0] == []


def test_given_filters_when_listed_then_workflow_source_text_and_time_range_apply(store, lambda_context):
    ana = make_run(store, "a", 1, summary=RunSummary(subject="Refund for order 1234", customer="Ana@Example.com"))
    make_run(store, "b", 2, summary=RunSummary(subject="Password reset", customer="bo@example.com"))
    stripe = make_run(store, "s", 3, source="stripe", workflow="payment_recovery",
                      summary=RunSummary(subject="Payment failed", customer="ana@example.com"))
    late = make_run(store, "late", 120, summary=RunSummary(subject="Another refund"))

    def ids(params: dict[str, str]) -> list[str]:
        return [r["run_id"] for r in all_pages(lambda_context, params)[0]]

    assert ids({"workflow": "payment_recovery"}) == [stripe]
    assert ids({"source": "stripe"}) == [stripe]
    assert ids({"q": "ANA@example"}) == [stripe, ana]
    assert ids({"q": "refund"}) == [late, ana]
    assert ids({"q": "refund", "until": "2026-11-30T10:00:00Z"}) == [ana]
    assert ids({"since": "2026-11-30T09:02:00+00:00"}) == [late, stripe, run_id_for("form:b")]
    # since is inclusive, until is not
    assert ids({"since": "2026-11-30T09:01:00Z", "until": "2026-11-30T09:03:00Z"}) == [run_id_for("form:b"), ana]
    assert ids({"since": "2026-11-30", "q": "password", "workflow": "support_triage", "source": "form"}) == [
        run_id_for("form:b")]


def test_given_few_matches_among_many_runs_when_the_read_budget_is_spent_then_cursors_go_on_to_every_match(
        store, lambda_context, monkeypatch):
    monkeypatch.setattr(run_list, "MAX_EVALUATED", 5)
    monkeypatch.setattr(run_list.DynamoRunIndex, "PAGE", 2)
    wanted = [make_run(store, f"w{i}", i * 5, summary=RunSummary(subject="needle")) for i in range(3)]
    for i in range(12):
        make_run(store, f"hay{i}", i + 1, end=EntryState.FAILED if i % 2 else EntryState.COMPLETED)

    runs, pages = all_pages(lambda_context, {"q": "needle", "limit": "2"})

    assert [r["run_id"] for r in runs] == list(reversed(wanted))
    assert pages > 1  # the budget stopped a page short of the matches, and its cursor went on


@pytest.mark.parametrize(("params", "code"), [
    ({"status": "done"}, "bad_status"),
    ({"status": "failed,"}, "bad_status"),
    ({"workflow": "no_such"}, "unknown_workflow"),
    ({"source": "Stripe!"}, "bad_source"),
    ({"since": "yesterday"}, "bad_time"),
    ({"since": "2026-11-30T09:00:00"}, "bad_time"),
    ({"since": "2026-12-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "bad_time"),
    ({"since": "0001-01-01T00:00:00Z"}, "bad_time"),
    ({"q": "a"}, "bad_search"),
    ({"q": "x" * 101}, "bad_search"),
    ({"q": "bad\x00text"}, "bad_search"),
    ({"limit": "0"}, "bad_limit"),
    ({"limit": "101"}, "bad_limit"),
    ({"limit": "-1"}, "bad_limit"),
    ({"limit": "²"}, "bad_limit"),
    ({"order": "random"}, "bad_order"),
    ({"sort": "x"}, "unknown_parameter"),
    ({"cursor": "not-a-cursor"}, "bad_cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'{"p": "x", "f": "y"}').decode()}, "bad_cursor"),
    ({"cursor": "x" * 400}, "bad_cursor"),
])
def test_given_a_bad_parameter_when_listed_then_400_with_its_code(store, lambda_context, params, code):
    status, body = get(lambda_context, "/runs", params)

    assert (status, body["error"]) == (400, code), body
    assert body["message"]


def test_given_a_cursor_of_other_filters_when_listed_then_400_bad_cursor(store, lambda_context):
    for i in range(3):
        make_run(store, f"c{i}", i, end=EntryState.FAILED)
    status, body = get(lambda_context, "/runs", {"status": "failed", "limit": "1"})
    assert status == 200 and body["cursor"]

    for other in ({"status": "completed", "limit": "1"}, {"limit": "1"}, {"status": "failed", "q": "zz"}):
        answer, problem = get(lambda_context, "/runs", {**other, "cursor": body["cursor"]})
        assert (answer, problem["error"]) == (400, "bad_cursor")
    # The page's size may change between pages: the cursor is bound to the filters, not the size.
    status, more = get(lambda_context, "/runs", {"status": "failed", "limit": "5", "cursor": body["cursor"]})
    assert status == 200 and len(more["runs"]) == 2 and more["cursor"] is None


def test_given_runs_waiting_for_approval_when_listed_then_oldest_first_with_age_deadline_and_approvers(
        store, lambda_context):
    first = make_run(store, "wait1", 1, end=None)
    second = make_run(store, "wait2", 2, end=None)
    make_run(store, "done", 3)
    asked = T0 + timedelta(minutes=5)
    for run_id, at in ((second, asked), (first, asked + timedelta(minutes=1))):
        store.record(run_id, TimelineEntry(state=EntryState.PENDING_APPROVAL, step="approval", at=at, details={
            "reasons": ["low_confidence"], "approvers": ["lead@example.com", "ops@example.com"], "required": 2,
            "expires_at": "2026-12-01T09:05:00+00:00"}))
    # A second entry of the same wait (an approver's decision that did not end it) keeps when it began.
    store.record(first, TimelineEntry(state=EntryState.PENDING_APPROVAL, step="approval",
                                      at=asked + timedelta(minutes=30), details={"required": 2}))

    status, body = get(lambda_context, "/approvals")

    assert status == 200
    assert [a["run_id"] for a in body["approvals"]] == [first, second]
    waiting = body["approvals"][0]
    assert waiting["waiting_since"] == "2026-11-30T09:06:00.000000Z"
    assert waiting["deadline"] == "2026-12-01T09:05:00.000000Z"
    assert waiting["required"] == 2 and waiting["approvers"] == ["lead@example.com", "ops@example.com"]
    assert waiting["age_seconds"] > 0 and waiting["subject"] == "Ticket wait1"

    store.record(first, TimelineEntry(state=EntryState.APPROVED, step="approval"))
    status, body = get(lambda_context, "/approvals", {"limit": "5"})
    assert [a["run_id"] for a in body["approvals"]] == [second]
    head = store.client.get_item(TableName=TABLE_NAME, Key={"pk": {"S": f"RUN#{first}"}, "sk": {"S": "#RUN"}})
    assert not set(run_list.WAIT_ATTRIBUTES) & set(head["Item"])


@pytest.mark.parametrize("params", [{"status": "failed"}, {"limit": "x"}, {"cursor": "%%%"}])
def test_given_bad_parameters_when_approvals_are_listed_then_400(store, lambda_context, params):
    status, body = get(lambda_context, "/approvals", params)

    assert status == 400 and body["error"] in {"unknown_parameter", "bad_limit", "bad_cursor"}
