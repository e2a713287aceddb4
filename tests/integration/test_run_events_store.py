"""Reading a run's entries after a cursor (DynamoTimelineStore.entries_after) and GET /runs/{run_id}/events through
the real handler, against moto DynamoDB."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import http_runs
import pytest
from interlock import timeline
from interlock.models import EntryState, Envelope, RunStatus, TimelineEntry, run_id_for
from interlock.timeline import DynamoTimelineStore, entry_sk_ns

from integration.support import TABLE_NAME, header, rest_event

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def new_run(store: DynamoTimelineStore, msg: str = "msg_events") -> str:
    key = f"form:{msg}"
    envelope = Envelope(event_id=msg, source="form", type="support.ticket", payload_version="v1",
                        received_at=T0, dedupe_key=key, run_id=run_id_for(key), payload={"type": "support.ticket"})
    store.create_run_once(envelope, 3600)
    return envelope.run_id


def test_given_entries_when_read_after_a_cursor_then_only_later_timeline_entries_in_write_order(cloud) -> None:
    store = DynamoTimelineStore(TABLE_NAME)
    run_id = new_run(store)
    store.keep_prompt("f" * 64, "a prompt")  # another partition: never read
    # Entries whose own times are out of order: the stream is in write order
    for n, step in enumerate(["c", "a", "b"]):
        store.record(run_id, TimelineEntry(state=EntryState.PROCESSING, step=step,
                                           at=T0.replace(second=10 - n)))

    everything = store.entries_after(run_id, None)

    assert everything is not None and everything.status is RunStatus.RECEIVED
    assert [e.step for _, e in everything.entries] == ["ingest", "c", "a", "b"]  # not the run record, not ~ENVELOPE
    ids = [i for i, _ in everything.entries]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert all(entry_sk_ns("TL#" + i) > int(T0.timestamp() * 1e9) for i in ids)  # write time, not `at`
    after = store.entries_after(run_id, ids[1])
    assert after is not None and [i for i, _ in after.entries] == ids[2:]
    assert store.entries_after(run_id, ids[-1]).entries == []  # type: ignore[union-attr]
    assert store.entries_after(run_id_for("form:nobody"), None) is None


def test_given_more_entries_than_a_page_when_read_then_every_one_once_and_a_limit_says_more(
        cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DynamoTimelineStore(TABLE_NAME)
    run_id = new_run(store, "msg_many")
    for n in range(8):
        store.record(run_id, TimelineEntry(state=EntryState.PROCESSING, step=f"s{n}", details={"n": n}))
    pages: list[dict] = []
    real_query = store.client.query

    def small_pages(**kwargs):  # DynamoDB pages at 1 MB; two items a page here
        page = real_query(**kwargs, Limit=2)
        pages.append(page)
        return page

    monkeypatch.setattr(store.client, "query", small_pages)

    page = store.entries_after(run_id, None)
    assert page is not None and [e.step for _, e in page.entries] == ["ingest", *(f"s{n}" for n in range(8))]
    assert len(pages) >= 5
    limited = store.entries_after(run_id, page.entries[2][0], limit=3)
    assert limited is not None and limited.more and [e.step for _, e in limited.entries] == ["s2", "s3", "s4"]


def test_given_a_put_that_ends_later_than_the_settle_time_then_it_is_logged_and_counted(
        cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DynamoTimelineStore(TABLE_NAME)
    run_id = new_run(store, "msg_late")
    counted: list[str] = []
    monkeypatch.setenv("INTERLOCK_EVENTS_SETTLE_SECONDS", "0")
    monkeypatch.setattr("interlock.observability.count", lambda name, value=1: counted.append(name))
    real_put = store.client.put_item
    monkeypatch.setattr(store.client, "put_item", lambda **kw: (time.sleep(0.01), real_put(**kw))[1])

    warnings: list[dict] = []
    monkeypatch.setattr("interlock.observability.logger.warning",
                        lambda message, *args, **kwargs: warnings.append(kwargs.get("extra", {})))

    store.record(run_id, TimelineEntry(state=EntryState.PROCESSING, step="slow"))

    assert counted == ["TimelineEntryLate"]
    assert [w["code"] for w in warnings] == ["timeline_entry_late"]
    monkeypatch.setenv("INTERLOCK_EVENTS_SETTLE_SECONDS", "1")
    store.record(run_id, TimelineEntry(state=EntryState.PROCESSING, step="quick"))
    assert counted == ["TimelineEntryLate"]  # within the settle time: nothing
    monkeypatch.setenv("INTERLOCK_EVENTS_SETTLE_SECONDS", "soon")
    assert timeline.events_settle_seconds() == timeline.DEFAULT_EVENTS_SETTLE_SECONDS  # a bad value: the default


def events(lambda_context, run_id: str, headers: dict[str, str] | None = None,
           query: dict[str, str] | None = None) -> dict:
    event = rest_event("GET", f"/runs/{run_id}/events", "/runs/{run_id}/events", {"run_id": run_id},
                       headers=headers)
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    return http_runs.handler(event, lambda_context)


def test_given_a_completed_run_when_its_events_are_asked_then_every_entry_then_end(
        cloud, lambda_context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_EVENTS_SETTLE_SECONDS", "0")
    store = DynamoTimelineStore(TABLE_NAME)
    run_id = new_run(store, "msg_done")
    store.record(run_id, TimelineEntry(state=EntryState.COMPLETED, step="outcome"), workflow="support_triage")

    response = events(lambda_context, run_id)

    assert response["statusCode"] == 200
    assert header(response, "Content-Type") == "text/event-stream"
    assert header(response, "Cache-Control") == "no-store"
    assert header(response, "X-Interlock-Stream") == "end"
    body = response["body"]
    assert body.startswith("retry: 1000\n\n") and body.count("event: entry\n") == 2
    end = json.dumps({"run_id": run_id, "status": "completed"}, separators=(",", ":"))
    assert body.endswith(f"event: end\ndata: {end}\n\n")
    last = [line[4:] for line in body.splitlines() if line.startswith("id: ")][-1]
    again = events(lambda_context, run_id, headers={"Last-Event-ID": last})
    assert "event: entry" not in again["body"] and "event: end" in again["body"]
    bad = events(lambda_context, run_id, query={"after": "../x"})
    assert bad["statusCode"] == 400 and json.loads(bad["body"])["error"] == "bad_event_id"
    unknown = events(lambda_context, run_id_for("form:nobody"))
    assert unknown["statusCode"] == 404 and json.loads(unknown["body"])["error"] == "unknown_run"
