"""DynamoTimelineStore against moto's DynamoDB, on the table the topology declares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from interlock.models import EntryState, Envelope, RunStatus, TimelineEntry, run_id_for, utcnow
from interlock.timeline import DedupeRecord, DedupeState, DynamoTimelineStore

from integration.support import TABLE_NAME

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def envelope(msg_id: str = "msg_1", received_at: datetime | None = None) -> Envelope:
    key = f"form:{msg_id}"
    return Envelope(event_id=msg_id, source="form", type="support.ticket", payload_version="standard-webhooks.v1",
                    received_at=received_at or utcnow(), dedupe_key=key, run_id=run_id_for(key),
                    payload={"type": "support.ticket", "data": {"subject": "s"}})


@pytest.fixture
def store(cloud) -> DynamoTimelineStore:
    return DynamoTimelineStore(TABLE_NAME, client=cloud.dynamodb)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_given_a_new_event_when_created_then_the_run_is_received_with_one_entry_and_a_dedupe_key(store, cloud):
    env = envelope(received_at=T0)

    assert store.create_run_once(env, dedupe_ttl_seconds=3600) is True

    view = store.get(env.run_id)
    assert view is not None
    assert view.status is RunStatus.RECEIVED
    assert view.workflow is None
    assert view.created_at == T0
    assert [(e.state, e.step) for e in view.timeline] == [(EntryState.RECEIVED, "ingest")]
    assert view.timeline[0].details == {"event_source": "form", "event_type": "support.ticket", "event_id": "msg_1",
                                        "payload_version": "standard-webhooks.v1"}
    keys = sorted((i["pk"]["S"], i["sk"]["S"][:3]) for i in cloud.items())
    assert keys == [("DEDUPE#form:msg_1", "#DE"), (f"RUN#{env.run_id}", "#RU"), (f"RUN#{env.run_id}", "TL#"),
                    (f"RUN#{env.run_id}", "~EN")]  # the kept event (envelope)
    assert all("expires_at" in i for i in cloud.items())


def test_given_an_existing_dedupe_key_when_created_again_then_false_and_nothing_new_is_written(store, cloud):
    env = envelope(received_at=T0)
    store.create_run_once(env, 3600)
    before = sorted(map(repr, cloud.items()))

    again = envelope(received_at=T0 + timedelta(minutes=5))
    assert store.create_run_once(again, 3600) is False

    assert sorted(map(repr, cloud.items())) == before


def test_given_a_run_record_without_its_dedupe_key_when_created_again_then_false_and_nothing_new_is_written(store,
                                                                                                            cloud):
    # e.g. the dedupe key's TTL has passed but the run is still kept: still the same run, still a duplicate
    env = envelope(received_at=T0)
    store.create_run_once(env, 3600)
    cloud.dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": {"S": "DEDUPE#form:msg_1"}, "sk": {"S": "#DEDUPE"}})
    before = sorted(map(repr, cloud.items()))

    assert store.create_run_once(env, 3600) is False
    assert sorted(map(repr, cloud.items())) == before


def test_given_entries_recorded_out_of_write_order_when_read_then_they_come_back_in_time_order(store):
    env = envelope(received_at=T0)
    store.create_run_once(env, 3600)
    for seconds, step in [(3, "c"), (1, "a"), (2, "b"), (4, "d")]:
        store.record(env.run_id, TimelineEntry(state=EntryState.PROCESSING, step=step, at=at(seconds)))

    view = store.get(env.run_id)

    assert [e.step for e in view.timeline] == ["ingest", "a", "b", "c", "d"]


def test_given_entries_recorded_in_quick_succession_when_read_then_they_keep_their_order(store):
    env = envelope()
    store.create_run_once(env, 3600)
    for i in range(25):
        store.record(env.run_id, TimelineEntry(state=EntryState.PROCESSING, step=f"s{i:02d}"))

    steps = [e.step for e in store.get(env.run_id).timeline]

    assert steps == ["ingest"] + [f"s{i:02d}" for i in range(25)]


def test_given_entries_when_recorded_then_status_workflow_and_updated_at_follow_them(store):
    env = envelope(received_at=T0)
    store.create_run_once(env, 3600)

    store.record(env.run_id, TimelineEntry(state=EntryState.PROCESSING, step="router", at=at(1)),
                 workflow="support_triage")
    assert store.get(env.run_id).status is RunStatus.PROCESSING

    store.record(env.run_id, TimelineEntry(state=EntryState.PENDING_APPROVAL, step="approval", at=at(2)))
    assert store.get(env.run_id).status is RunStatus.PENDING_APPROVAL

    store.record(env.run_id, TimelineEntry(state=EntryState.APPROVED, step="approval", at=at(3)))
    view = store.get(env.run_id)
    assert view.status is RunStatus.PROCESSING
    assert view.workflow == "support_triage"
    assert view.updated_at == at(3)
    assert view.created_at == T0


def test_given_entries_without_a_status_when_recorded_then_the_status_stays(store):
    env = envelope(received_at=T0)
    store.create_run_once(env, 3600)

    store.record(env.run_id, TimelineEntry(state=EntryState.RETRIED, step="fetch_account", at=at(1)))
    store.record(env.run_id, TimelineEntry(state=EntryState.DUPLICATE, step="ingest", at=at(2)))

    view = store.get(env.run_id)
    assert view.status is RunStatus.RECEIVED
    assert [e.state for e in view.timeline] == [EntryState.RECEIVED, EntryState.RETRIED, EntryState.DUPLICATE]


def test_given_a_move_only_while_a_status_when_the_run_has_moved_on_then_the_entry_stands_and_the_status_stays(
        store):
    # A counted approval landing after the decision that ended the wait must not put the run back to waiting.
    env = envelope(received_at=T0)
    store.create_run_once(env, 3600)
    store.record(env.run_id, TimelineEntry(state=EntryState.PENDING_APPROVAL, step="approval", at=at(1)))
    store.record(env.run_id, TimelineEntry(state=EntryState.APPROVED, step="approval", at=at(2)),
                 status=RunStatus.PENDING_APPROVAL, while_status=RunStatus.PENDING_APPROVAL)
    assert store.get(env.run_id).status is RunStatus.PENDING_APPROVAL  # still waiting: moved (to the same)

    store.record(env.run_id, TimelineEntry(state=EntryState.APPROVED, step="approval", at=at(3)),
                 status=RunStatus.PROCESSING)  # the decision that ended the wait
    store.record(env.run_id, TimelineEntry(state=EntryState.APPROVED, step="late", at=at(4)),
                 status=RunStatus.PENDING_APPROVAL, while_status=RunStatus.PENDING_APPROVAL)

    view = store.get(env.run_id)
    assert view.status is RunStatus.PROCESSING
    assert [e.step for e in view.timeline][-1] == "late"


@pytest.mark.parametrize(
    "terminal",
    [EntryState.FAILED, EntryState.COMPLETED, EntryState.REJECTED, EntryState.ESCALATED],
)
def test_given_a_terminal_run_when_later_entries_arrive_then_the_entries_are_kept_and_the_status_is_not(
    store, terminal
):
    env = envelope(received_at=T0)
    store.create_run_once(env, 3600)
    store.record(env.run_id, TimelineEntry(state=terminal, step="outcome", at=at(1)))
    later = [EntryState.PROCESSING, EntryState.APPROVED, EntryState.PENDING_APPROVAL, EntryState.COMPLETED,
             EntryState.FAILED, EntryState.RECEIVED]

    for i, state in enumerate(later):
        store.record(env.run_id, TimelineEntry(state=state, step=f"late-{state.value}", at=at(2 + i)),
                     workflow="support_triage")

    view = store.get(env.run_id)
    assert view.status.value == terminal.value
    assert [e.step for e in view.timeline] == ["ingest", "outcome"] + [f"late-{s.value}" for s in later]
    assert view.updated_at == at(1)


def test_given_details_with_any_json_when_recorded_then_they_round_trip(store):
    env = envelope()
    store.create_run_once(env, 3600)
    details = {"confidence": 0.85, "nested": {"list": [1, 2.5, None, True]}, "unicode": "héllo ✓", "empty": ""}

    store.record(env.run_id, TimelineEntry(state=EntryState.PROCESSING, step="x", attempt=3, details=details))

    entry = store.get(env.run_id).timeline[-1]
    assert entry.details == details
    assert entry.attempt == 3


def test_given_a_new_run_that_could_not_be_queued_when_forgotten_then_nothing_of_it_is_left(store, cloud):
    env = envelope()
    other = envelope("msg_other")
    store.create_run_once(env, 3600)
    store.create_run_once(other, 3600)

    store.forget_new_run(env)

    assert store.get(env.run_id) is None
    assert {i["pk"]["S"] for i in cloud.items()} == {f"RUN#{other.run_id}", "DEDUPE#form:msg_other"}
    # and the sender's retry starts afresh
    assert store.create_run_once(env, 3600) is True


def test_given_an_unknown_run_id_when_read_then_none(store):
    assert store.get("no-such-run") is None


def test_given_many_entries_beyond_one_query_page_when_read_then_every_entry_comes_back_in_order(
    store, cloud, monkeypatch
):
    # Shrink moto's 1 MB query page so that a few dozen entries already span several pages.
    monkeypatch.setattr("moto.dynamodb.models.table.RESULT_SIZE_LIMIT", 4000)
    env = envelope(received_at=T0)
    store.create_run_once(env, 3600)
    count = 120
    for i in range(count):
        store.record(env.run_id, TimelineEntry(state=EntryState.PROCESSING, step=f"step-{i:03d}", at=at(i + 1),
                                               details={"i": i, "pad": "x" * 100}))
    pages = []
    original_query = cloud.dynamodb.query

    def counting_query(**kwargs):
        page = original_query(**kwargs)
        pages.append(len(page["Items"]))
        return page

    monkeypatch.setattr(cloud.dynamodb, "query", counting_query)

    view = store.get(env.run_id)

    assert len(pages) > 3, "the read should have needed several pages"
    assert [e.step for e in view.timeline] == ["ingest"] + [f"step-{i:03d}" for i in range(count)]
    assert [e.details["i"] for e in view.timeline[1:]] == list(range(count))
    assert view.status is RunStatus.RECEIVED  # steps' processing entries leave the run record alone


def test_given_an_entry_recorded_for_a_run_that_does_not_exist_when_read_then_there_is_still_no_run(store):
    store.record("ghost", TimelineEntry(state=EntryState.PROCESSING, step="router"))

    assert store.get("ghost") is None


# -- two-phase acceptance ------------------------------------------------------------------------------------


def test_given_a_new_run_then_its_dedupe_key_is_accepting_until_marked_queued(store):
    env = envelope("msg_phase")
    store.create_run_once(env, 3600)

    first = store.dedupe_record(env.dedupe_key)
    assert first is not None and first.state is DedupeState.ACCEPTING and first.run_id == env.run_id
    store.mark_queued(env)
    assert store.dedupe_record(env.dedupe_key).state is DedupeState.QUEUED
    assert store.dedupe_record("form:never") is None


def test_given_an_abandoned_acceptance_when_taken_over_then_it_passes_to_the_new_token_and_nothing_is_deleted(
    store, cloud,
):
    env = envelope("msg_abandoned")
    store.create_run_once(env, 3600, token="original")
    stale = store.dedupe_record(env.dedupe_key)
    assert stale.token == "original"

    assert store.take_over(env, stale, "takeover") is True

    now = store.dedupe_record(env.dedupe_key)
    assert (now.state, now.token, now.run_id) == (DedupeState.ACCEPTING, "takeover", env.run_id)
    run = store.get(env.run_id)
    assert run.status is RunStatus.RECEIVED
    assert [(e.state, e.details.get("reason")) for e in run.timeline] == [
        (EntryState.RECEIVED, None), (EntryState.RETRIED, "acceptance_taken_over")]


def test_given_a_takeover_when_the_late_original_marks_queued_or_undoes_then_it_writes_nothing(store, cloud):
    # Given an acceptance taken over from the original (which is still running, late)
    env = envelope("msg_late")
    store.create_run_once(env, 3600, token="original")
    assert store.take_over(env, store.dedupe_record(env.dedupe_key), "takeover")
    before = sorted((i["pk"]["S"], i["sk"]["S"]) for i in cloud.items())

    # When the late original undoes its acceptance (it could not queue), or marks it queued (it could)
    store.forget_new_run(env, "original")
    marked = store.mark_queued(env, "original")

    # Then neither touched the new owner's records: its run, its entries and its acceptance stand
    assert marked is False
    assert sorted((i["pk"]["S"], i["sk"]["S"]) for i in cloud.items()) == before
    record = store.dedupe_record(env.dedupe_key)
    assert (record.state, record.token) == (DedupeState.ACCEPTING, "takeover")
    # And the owner's own mark and undo still work
    assert store.mark_queued(env, "takeover") is True
    assert store.dedupe_record(env.dedupe_key).state is DedupeState.QUEUED


def test_given_an_acceptance_when_its_owner_undoes_it_then_the_run_and_its_dedupe_key_are_gone(store, cloud):
    env = envelope("msg_undo")
    store.create_run_once(env, 3600, token="mine")

    store.forget_new_run(env, "other")
    assert store.dedupe_record(env.dedupe_key) is not None
    store.forget_new_run(env, "mine")

    assert cloud.items() == []
    assert store.create_run_once(env, 3600, token="again") is True


def test_given_the_original_queued_first_when_a_takeover_is_tried_then_it_fails_and_the_original_holds(store):
    env = envelope("msg_race")
    store.create_run_once(env, 3600, token="original")
    stale = store.dedupe_record(env.dedupe_key)

    assert store.mark_queued(env, "original") is True
    assert store.take_over(env, stale, "takeover") is False

    record = store.dedupe_record(env.dedupe_key)
    assert (record.state, record.token) == (DedupeState.QUEUED, "original")


def test_given_a_record_without_a_token_when_taken_over_then_the_time_it_was_seen_decides(store):
    env = envelope("msg_legacy")
    store.create_run_once(env, 3600)  # as written before acceptance tokens existed
    stale = store.dedupe_record(env.dedupe_key)
    assert stale.token is None

    assert store.take_over(env, DedupeRecord(stale.run_id, stale.state, stale.accepted_at - 1), "t") is False
    assert store.take_over(env, stale, "t") is True
    assert store.dedupe_record(env.dedupe_key).token == "t"


def test_given_a_queued_or_changed_record_when_taken_over_then_it_is_left_alone(store, cloud):
    env = envelope("msg_queued")
    store.create_run_once(env, 3600)
    stale = store.dedupe_record(env.dedupe_key)
    store.mark_queued(env)

    assert store.take_over(env, stale, "t1") is False
    other = envelope("msg_other")
    store.create_run_once(other, 3600, token="first")
    seen = store.dedupe_record(other.dedupe_key)
    assert store.take_over(other, DedupeRecord(seen.run_id, seen.state, seen.accepted_at, "not-first"), "t2") is False
    assert {i["pk"]["S"] for i in cloud.items() if i["sk"]["S"] == "#DEDUPE"} == {
        "DEDUPE#form:msg_queued", "DEDUPE#form:msg_other"}
