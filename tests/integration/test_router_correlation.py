"""The router's correlation paths against moto's DynamoDB: an event that ends a wait never starts a run, a trigger
event for an open run's key joins it, and a key that cannot be read ends the run failed with its reason."""

from __future__ import annotations

import json
import uuid
from importlib import resources
from typing import Any

import pytest
from interlock.kit.correlation import Correlation, CorrelationTable
from interlock.kit.worker import imported
from interlock.models import Envelope, run_id_for, utcnow
from interlock.routing import Router
from interlock.timeline import DynamoTimelineStore

from integration.support import TABLE_NAME, Cloud

SAMPLES = resources.files("interlock") / "workflows" / "payment_recovery" / "samples"


class Engine:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, workflow: str, run_id: str, execution_input: dict[str, Any]) -> str:
        self.started.append(run_id)
        return f"arn:{run_id}"


class Callbacks:
    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        return True


@pytest.fixture
def router(cloud: Cloud) -> tuple[Router, Engine, DynamoTimelineStore]:
    store = DynamoTimelineStore(TABLE_NAME, cloud.dynamodb)
    engine = Engine()
    correlation = Correlation(CorrelationTable(TABLE_NAME, cloud.dynamodb), store, Callbacks())
    return Router(engine, store, {}, correlation=lambda: correlation), engine, store


def accepted(store: DynamoTimelineStore, event_type: str, invoice_id: str | None) -> Envelope:
    failed = event_type == "invoice.payment_failed"
    name = "stripe_invoice_payment_failed.json" if failed else "stripe_invoice_paid.json"
    payload = json.loads((SAMPLES / name).read_text())
    payload["id"], payload["type"] = f"evt_{uuid.uuid4().hex[:20]}", event_type
    if invoice_id is None:
        del payload["data"]["object"]["id"]
    else:
        payload["data"]["object"]["id"] = invoice_id
    key = f"stripe:{payload['id']}"
    envelope = Envelope(event_id=payload["id"], source="stripe", type=event_type, payload_version="stripe.v1",
                        received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key), payload=payload)
    assert store.create_run_once(envelope, 3600)
    return envelope


def outcome(store: DynamoTimelineStore, run_id: str) -> tuple[str, str, dict[str, Any]]:
    view = store.get(run_id)
    assert view is not None
    entry = view.timeline[-1]
    return view.status.value, entry.step, entry.details


def test_given_a_payment_with_no_recovery_then_it_is_kept_and_starts_nothing(router) -> None:
    route, engine, store = router
    paid = accepted(store, "invoice.paid", "in_nobody")
    route.route(paid)
    status, step, details = outcome(store, paid.run_id)
    assert (status, step, details["reason"], details["run"]) == ("ignored", "correlation", "no_waiting_run", None)
    assert engine.started == []


def test_given_an_event_with_no_invoice_then_it_is_ignored_with_that_reason(router) -> None:
    route, engine, store = router
    paid = accepted(store, "invoice.paid", None)
    route.route(paid)
    assert outcome(store, paid.run_id)[2]["reason"] == "no_correlation_key"
    assert engine.started == []


def test_given_a_second_failure_while_the_first_run_is_open_then_it_joins_and_starts_nothing(router) -> None:
    route, engine, store = router
    first = accepted(store, "invoice.payment_failed", "in_join")
    route.route(first)
    assert engine.started == [first.run_id]
    second = accepted(store, "invoice.payment_failed", "in_join")
    route.route(second)
    status, _, details = outcome(store, second.run_id)
    assert (status, details["reason"], details["joined_run_id"]) == ("ignored", "joined_open_run", first.run_id)
    assert engine.started == [first.run_id]
    assert outcome(store, first.run_id)[:2] == ("processing", "correlation")  # the joined entry, status unmoved


def test_given_a_key_function_that_raises_then_the_run_fails_with_the_reason(router, monkeypatch) -> None:
    from interlock.workflows.payment_recovery import correlation as keys

    def broken(payload: dict[str, Any]) -> str:
        raise KeyError("data")

    imported.cache_clear()
    monkeypatch.setattr(keys, "invoice_key", broken)
    try:
        route, engine, store = router
        failed = accepted(store, "invoice.payment_failed", "in_broken")
        route.route(failed)
        status, _, details = outcome(store, failed.run_id)
        assert (status, details["reason"], details["error"]) == ("failed", "correlation_key_error", "KeyError")
        assert engine.started == []
    finally:
        imported.cache_clear()
