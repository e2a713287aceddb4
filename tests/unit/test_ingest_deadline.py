"""The ingest finishes before its deadline: an accepted event is answered 2xx, anything else is undone and 503."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from interlock.ingest.service import IngestService, RawRequest
from interlock.models import Envelope, TimelineEntry, run_id_for
from interlock.settings import IngestSettings
from interlock.timeline import DedupeRecord, DedupeState
from interlock.webhooks.base import SourceSecrets
from interlock.webhooks.standard import signed_headers

from unit.fakes import RecordingQueue, RecordingTimeline, StaticSecrets

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
TICKET = json.dumps({"type": "support.ticket", "data": {"subject": "s"}}).encode()
DEADLINE = 10.0  # the invocation's end on the fake clock, which starts at 0


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SlowTimeline(RecordingTimeline):
    """Each call takes the seconds ``costs`` gives its name (0 otherwise) on ``clock``."""

    clock: Clock = field(default_factory=Clock)
    costs: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def _spend(self, name: str) -> None:
        self.clock.now += self.costs.get(name, 0.0)

    def create_run_once(self, envelope: Envelope, dedupe_ttl_seconds: int, token: str | None = None) -> bool:
        self._spend("create_run_once")
        created = super().create_run_once(envelope, dedupe_ttl_seconds, token)
        if created and token:
            self.tokens[envelope.dedupe_key] = token
        return created

    def mark_queued(self, envelope: Envelope, token: str | None = None, read_first: bool = False) -> bool:
        self._spend("mark_queued")
        return super().mark_queued(envelope, token)

    def forget_new_run(self, envelope: Envelope, token: str | None = None) -> None:
        self._spend("forget_new_run")
        super().forget_new_run(envelope, token)

    def record(self, run_id: str, entry: TimelineEntry, workflow: str | None = None, status: Any = None) -> None:
        self._spend("record")
        super().record(run_id, entry, workflow)

    def dedupe_record(self, dedupe_key: str) -> DedupeRecord | None:
        found = super().dedupe_record(dedupe_key)
        if found is None or dedupe_key not in self.tokens:
            return found
        return DedupeRecord(found.run_id, found.state, found.accepted_at, self.tokens[dedupe_key])


@dataclass
class SlowQueue(RecordingQueue):
    clock: Clock = field(default_factory=Clock)
    cost: float = 0.0

    def send(self, envelope: Envelope, acceptance: str | None = None) -> None:
        self.clock.now += self.cost
        super().send(envelope, acceptance)


@dataclass
class SlowSecrets(StaticSecrets):
    clock: Clock = field(default_factory=Clock)
    cost: float = 0.0

    def get(self, source: str, *, free_text: bool = False) -> SourceSecrets:
        self.clock.now += self.cost
        return super().get(source, free_text=free_text)


def deliver(*, secret_cost: float = 0.0, send_cost: float = 0.0, store_costs: dict[str, float] | None = None,
            store: SlowTimeline | None = None, clock: Clock | None = None, **settings: Any):
    clock = clock or (store.clock if store else Clock())
    store = store or SlowTimeline(clock=clock, costs=store_costs or {})
    queue = SlowQueue(clock=clock, cost=send_cost)
    secrets = SlowSecrets({"form": [SECRET]}, clock=clock, cost=secret_cost)
    service = IngestService(IngestSettings(table_name="t", ingest_queue_url="q", **settings), secrets, store, queue,
                            clock=clock, sleep=clock.sleep)
    headers = signed_headers(SECRET, "msg_1", int(time.time()), TICKET)
    outcome = service.accept(RawRequest(source="form", headers=headers, body=TICKET.decode(), is_base64=False),
                             deadline=DEADLINE)
    return outcome, store, queue, clock


def test_given_time_to_spare_when_delivered_then_accepted_queued_and_marked_with_its_own_token():
    outcome, store, queue, clock = deliver(send_cost=0.05, store_costs={"create_run_once": 0.05})

    assert outcome.status == 202 and outcome.body["duplicate"] is False
    assert len(queue.sent) == 1 and store.queued_keys == {"form:msg_1"}
    assert queue.acceptances == [store.tokens["form:msg_1"]]
    assert clock.now <= DEADLINE


def test_given_a_slow_secret_read_when_no_time_is_left_to_accept_then_503_and_nothing_is_recorded():
    outcome, store, queue, clock = deliver(secret_cost=7.5)

    assert (outcome.status, outcome.body["error"]) == (503, "unavailable")
    assert store.created == [] and queue.sent == [] and store.entries == []
    assert clock.now <= DEADLINE


def test_given_a_slow_record_when_no_time_is_left_to_queue_then_the_acceptance_is_undone_and_503():
    outcome, store, queue, clock = deliver(store_costs={"create_run_once": 8.0})

    assert (outcome.status, outcome.body["error"]) == (503, "unavailable")
    assert queue.sent == []
    assert [e.dedupe_key for e in store.forgotten] == ["form:msg_1"]
    assert clock.now <= DEADLINE


def test_given_a_slow_queue_send_when_it_lands_late_then_the_event_is_still_answered_202():
    # The send succeeds with less than one call's time left: no time to mark it queued (the router will),
    # and the answer is the truth: accepted.
    outcome, store, queue, clock = deliver(send_cost=9.0)

    assert outcome.status == 202 and outcome.body["duplicate"] is False
    assert len(queue.sent) == 1 and store.forgotten == []
    assert store.queued_keys == set()
    assert clock.now <= DEADLINE


def test_given_a_redelivery_with_time_when_answered_then_it_leaves_one_duplicate_entry():
    store = SlowTimeline(existing_dedupe_keys={"form:msg_1"})

    outcome, store, queue, _ = deliver(store=store)

    assert outcome.status == 202 and outcome.body["duplicate"] is True
    assert store.states == ["duplicate"] and queue.sent == []


def test_given_a_redelivery_out_of_time_when_answered_then_202_duplicate_without_an_entry_rather_than_a_timeout():
    clock = Clock()
    store = SlowTimeline(clock=clock, costs={"create_run_once": 8.0}, existing_dedupe_keys={"form:msg_1"})

    outcome, store, queue, clock = deliver(store=store)

    assert outcome.status == 202 and outcome.body["duplicate"] is True
    assert store.entries == [] and queue.sent == []
    assert clock.now <= DEADLINE


def test_given_an_acceptance_in_progress_when_the_deadline_is_near_then_the_wait_ends_in_time_with_409():
    # The first delivery stays "accepting"; the wait setting alone would allow 2.5 s, the deadline less.
    clock = Clock(now=6.0)
    store = SlowTimeline(clock=clock, accepting={"form:msg_1": (run_id_for("form:msg_1"), time.time())})

    outcome, store, queue, clock = deliver(store=store, in_progress_wait_seconds=2.5)

    assert (outcome.status, outcome.body["error"]) == (409, "in_progress")
    assert queue.sent == [] and store.entries == []
    # It stopped waiting once it no longer had room to accept the event itself (not at 8.5, the setting's end)
    assert clock.now <= 6.5


@dataclass
class LandedButFailed(SlowTimeline):
    """The SDK retried a create whose first try had landed: the retry's condition fails on this delivery's own
    record."""

    def create_run_once(self, envelope: Envelope, dedupe_ttl_seconds: int, token: str | None = None) -> bool:
        super().create_run_once(envelope, dedupe_ttl_seconds, token)
        return False


def test_given_a_create_retried_after_it_landed_when_delivered_then_the_delivery_knows_its_own_record():
    store = LandedButFailed()

    outcome, store, queue, _ = deliver(store=store)

    assert outcome.status == 202 and outcome.body["duplicate"] is False
    assert len(queue.sent) == 1
    assert store.dedupe_record("form:msg_1").state is DedupeState.QUEUED
