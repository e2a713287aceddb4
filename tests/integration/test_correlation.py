"""The correlation store against moto's DynamoDB: a wait and the event that ends it meet exactly once, whichever
comes first, and a trigger's later events join the open run that owns their key."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from interlock.kit.correlation import Correlation, CorrelationTable, DeliveryKind, InvalidKey, checked_key
from interlock.models import EntryState, Envelope, RunStatus, TimelineEntry, run_id_for
from interlock.timeline import DynamoTimelineStore

from integration.support import TABLE_NAME, Cloud

KEY = "stripe:invoice:in_1"


class Callbacks:
    """Step Functions' SendTaskSuccess, as the store sees it: a token is waiting until it is resumed or dropped."""

    def __init__(self) -> None:
        self.waiting: set[str] = set()
        self.resumed: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        with self.lock:
            if task_token not in self.waiting:
                return False
            self.waiting.discard(task_token)
            self.resumed.append((task_token, output))
            return True


def envelope(event_id: str, event_type: str = "invoice.paid") -> Envelope:
    key = f"stripe:{event_id}"
    return Envelope(event_id=event_id, source="stripe", type=event_type, payload_version="stripe.v1",
                    received_at=datetime.now(UTC), dedupe_key=key, run_id=run_id_for(key), payload={})


@pytest.fixture
def parts(cloud: Cloud) -> tuple[Correlation, Callbacks, DynamoTimelineStore]:
    store = DynamoTimelineStore(TABLE_NAME, cloud.dynamodb)
    callbacks = Callbacks()
    return Correlation(CorrelationTable(TABLE_NAME, cloud.dynamodb), store, callbacks), callbacks, store


def started(store: DynamoTimelineStore, event: Envelope) -> str:
    """A run as the ingest leaves it (received), then started by the router (processing)."""
    assert store.create_run_once(event, 3600)
    store.record(event.run_id, TimelineEntry(state=EntryState.PROCESSING, step="router"), workflow="recovery")
    return event.run_id


def states(store: DynamoTimelineStore, run_id: str) -> list[tuple[str, str]]:
    view = store.get(run_id)
    assert view is not None
    return [(e.state.value, e.step) for e in view.timeline]


def test_given_a_registered_wait_when_its_event_arrives_then_the_wait_is_resumed_once(parts) -> None:
    correlation, callbacks, store = parts
    owner = started(store, envelope("evt_fail", "invoice.payment_failed"))
    callbacks.waiting.add("token-1")
    assert correlation.register(KEY, owner, "token-1", ["invoice.paid"]) is False
    assert store.get(owner).status is RunStatus.WAITING

    paid = envelope("evt_paid")
    delivery = correlation.deliver(KEY, paid)

    assert (delivery.kind, delivery.run_id) == (DeliveryKind.RESUMED, owner)
    assert callbacks.resumed == [("token-1", {"event_type": "invoice.paid", "event_id": "evt_paid",
                                              "event_run_id": paid.run_id})]
    assert states(store, owner)[-1] == ("processing", "wait_for_event")
    # A second event for the key changes nothing.
    again = correlation.deliver(KEY, envelope("evt_void", "invoice.voided"))
    assert (again.kind, again.run_id) == (DeliveryKind.ALREADY_MATCHED, owner)
    assert len(callbacks.resumed) == 1


def test_given_the_event_before_the_wait_when_the_wait_registers_then_it_is_resumed_at_once(parts) -> None:
    correlation, callbacks, store = parts
    owner = started(store, envelope("evt_fail", "invoice.payment_failed"))
    assert correlation.claim(KEY, store.envelope(owner)) == owner

    delivery = correlation.deliver(KEY, envelope("evt_paid"))
    assert (delivery.kind, delivery.run_id) == (DeliveryKind.BUFFERED, owner)
    assert callbacks.resumed == []

    callbacks.waiting.add("token-1")
    assert correlation.register(KEY, owner, "token-1", ["invoice.paid"]) is True
    assert [token for token, _ in callbacks.resumed] == ["token-1"]
    # No "waiting" entry: the wait never waited.
    assert ("waiting", "wait_for_event") not in states(store, owner)


def test_given_no_wait_and_no_owner_then_the_event_is_kept_for_a_wait_that_may_come(parts) -> None:
    correlation, _, _ = parts
    delivery = correlation.deliver(KEY, envelope("evt_paid"))
    assert (delivery.kind, delivery.run_id) == (DeliveryKind.BUFFERED, None)


def test_given_a_wait_that_timed_out_when_the_event_arrives_then_the_next_registration_takes_it(parts) -> None:
    correlation, callbacks, store = parts
    owner = started(store, envelope("evt_fail", "invoice.payment_failed"))
    correlation.register(KEY, owner, "token-1", ["invoice.paid"])  # then token-1 timed out: not waiting

    delivery = correlation.deliver(KEY, envelope("evt_paid"))
    assert delivery.kind is DeliveryKind.BUFFERED
    assert callbacks.resumed == []

    callbacks.waiting.add("token-2")  # the reminder was sent; the wait registers again
    assert correlation.register(KEY, owner, "token-2", ["invoice.paid"]) is True
    assert [token for token, _ in callbacks.resumed] == ["token-2"]


@pytest.mark.parametrize("round_", range(12))
def test_given_the_wait_and_the_event_at_the_same_time_then_exactly_one_side_resumes(
        parts, serialised_moto, round_: int) -> None:
    correlation, callbacks, store = parts
    key = f"{KEY}-{round_}"
    owner = started(store, envelope(f"evt_fail_{round_}", "invoice.payment_failed"))
    callbacks.waiting.add("token")
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def register() -> None:
        barrier.wait()
        results["register"] = correlation.register(key, owner, "token", ["invoice.paid"])

    def deliver() -> None:
        barrier.wait()
        results["deliver"] = correlation.deliver(key, envelope(f"evt_paid_{round_}"))

    threads = [threading.Thread(target=register), threading.Thread(target=deliver)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(callbacks.resumed) == 1  # matched exactly once, never lost
    by_register = results["register"] is True
    by_delivery = results["deliver"].kind is DeliveryKind.RESUMED
    assert by_register != by_delivery


def test_given_an_open_owner_when_the_trigger_fires_again_then_it_joins_and_is_recorded_there(parts) -> None:
    correlation, _, store = parts
    first = envelope("evt_fail_1", "invoice.payment_failed")
    owner = started(store, first)
    assert correlation.claim(KEY, first) == owner

    second = envelope("evt_fail_2", "invoice.payment_failed")
    assert store.create_run_once(second, 3600)
    assert correlation.claim(KEY, second) == owner
    assert correlation.claim(KEY, second) == owner  # a redelivery joins once
    joined = [e for e in store.get(owner).timeline if e.state is EntryState.JOINED]
    assert [e.details["joined_run_id"] for e in joined] == [second.run_id]


def test_given_a_closed_owner_when_the_trigger_fires_again_then_a_new_run_owns_the_key_afresh(parts) -> None:
    correlation, callbacks, store = parts
    first = envelope("evt_fail_1", "invoice.payment_failed")
    owner = started(store, first)
    correlation.claim(KEY, first)
    callbacks.waiting.add("token-1")
    correlation.register(KEY, owner, "token-1", ["invoice.paid"])
    correlation.deliver(KEY, envelope("evt_paid_1"))
    store.record(owner, TimelineEntry(state=EntryState.COMPLETED, step="settle"))

    later = envelope("evt_fail_2", "invoice.payment_failed")
    assert store.create_run_once(later, 3600)
    assert correlation.claim(KEY, later) == later.run_id
    # The old run's event is forgotten: the new run's wait waits for a new one.
    callbacks.waiting.add("token-2")
    assert correlation.register(KEY, later.run_id, "token-2", ["invoice.paid"]) is False


@pytest.mark.parametrize("round_", range(4))
def test_given_two_triggers_at_once_then_one_owns_the_key_and_the_other_joins_it(
        parts, serialised_moto, round_) -> None:
    correlation, _, store = parts
    events = [envelope(f"evt_fail_{i}", "invoice.payment_failed") for i in range(2)]
    for event in events:
        started(store, event)
    barrier = threading.Barrier(2)
    owners: list[str] = []

    def claim(event: Envelope) -> None:
        barrier.wait()
        owners.append(correlation.claim(KEY, event))

    threads = [threading.Thread(target=claim, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(owners)) == 1 and owners[0] in {e.run_id for e in events}


@pytest.mark.parametrize("bad", ["", None])
def test_given_no_key_then_none(bad: object) -> None:
    assert checked_key(bad) is None


@pytest.mark.parametrize("bad", ["has space", "x" * 201, ":starts", "new\nline", 12, "é"])
def test_given_something_that_is_no_key_then_it_is_refused(bad: object) -> None:
    with pytest.raises(InvalidKey):
        checked_key(bad)
