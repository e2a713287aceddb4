"""The ingest's 503s (a secret it cannot read, an event it cannot queue) never reach a DLQ: the sender retries.
Each is counted as ``WebhookUnavailable``, the metric the stack's ``webhook_ingest-unavailable`` alarm watches
(infra/constructs/monitoring.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from interlock.observability import metrics

from unit.fakes import RecordingQueue
from unit.test_steps_routing_ingest import TICKET, ingest, signed

WEBHOOK_UNAVAILABLE_METRIC = "WebhookUnavailable"  # the name tests/infra/test_trust.py finds alarmed


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def counted() -> dict[str, float]:
    return {name: sum(entry["Value"]) for name, entry in metrics.metric_set.items()}


def test_given_the_secret_store_fails_when_accepted_then_the_503_is_counted_as_unavailable() -> None:
    outcome, *_ = ingest(TICKET, signed(TICKET), secrets_fail_with=RuntimeError("throttled"))

    assert outcome.status == 503
    assert counted().get(WEBHOOK_UNAVAILABLE_METRIC) == 1


def test_given_the_queue_fails_when_accepted_then_the_503_is_counted_as_unavailable() -> None:
    outcome, *_ = ingest(TICKET, signed(TICKET), queue=RecordingQueue(fail_with=RuntimeError("sqs down")))

    assert outcome.status == 503
    assert counted().get(WEBHOOK_UNAVAILABLE_METRIC) == 1


def test_given_an_accepted_event_then_nothing_is_counted_as_unavailable() -> None:
    outcome, *_ = ingest(TICKET, signed(TICKET))

    assert outcome.status == 202
    assert WEBHOOK_UNAVAILABLE_METRIC not in counted()


def test_given_no_time_left_when_accepted_then_the_503_is_counted_as_unavailable() -> None:
    from interlock.ingest.service import _out_of_time

    outcome = _out_of_time("before_recording")

    assert outcome.status == 503
    assert counted().get(WEBHOOK_UNAVAILABLE_METRIC) == 1
