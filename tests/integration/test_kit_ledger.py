"""The idempotency ledger on DynamoDB (moto): an effect once per run, step and effect, confirmed by its step's
timeline entry; a repeat gets the first result back; a concurrent attempt waits; an abandoned one is taken over."""

from __future__ import annotations

import time
from typing import Any

import pytest
from interlock.kit.context import Services, StepContext
from interlock.kit.ledger import EFFECTS, DynamoLedger, EffectInProgress, PendingEffect, sort_key
from interlock.models import EntryState, Envelope, TimelineEntry, run_id_for, utcnow
from interlock.timeline import DynamoTimelineStore, run_pk
from pydantic import BaseModel

from integration.support import TABLE_NAME


class Sent(BaseModel):
    message_id: str


@pytest.fixture
def run(cloud: Any) -> Envelope:
    key = "form:msg_ledger"
    envelope = Envelope(event_id="msg_ledger", source="form", type="support.ticket", payload_version="v1",
                        received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key), payload={})
    DynamoTimelineStore(TABLE_NAME).create_run_once(envelope, 3600)
    return envelope


def ledger_of(**kwargs: Any) -> DynamoLedger:
    return DynamoLedger(TABLE_NAME, DynamoTimelineStore(TABLE_NAME), **kwargs)


def confirm(run_id: str, pending: list[PendingEffect]) -> None:
    """What the worker writes when the step returns: its entry, naming the effects it did."""
    DynamoTimelineStore(TABLE_NAME).record(run_id, TimelineEntry(
        state=EntryState.COMPLETED, step="send_reply", details={EFFECTS: {p.effect: p.result for p in pending}}))


def context(run_id: str, ledger: DynamoLedger, attempt: int = 0) -> StepContext:
    return StepContext(run_id=run_id, attempt=attempt, workflow="support_triage", step="send_reply", deadline=None,
                       services=Services(timeline=DynamoTimelineStore(TABLE_NAME), ledger=ledger))


def item(cloud: Any, run_id: str) -> dict[str, Any]:
    key = {"pk": {"S": run_pk(run_id)}, "sk": {"S": sort_key("send_reply", "reply")}}
    return dict(cloud.dynamodb.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True).get("Item") or {})


def test_given_an_effect_done_and_confirmed_when_the_step_repeats_then_it_gets_the_first_result_and_acts_not(
    cloud: Any, run: Envelope
) -> None:
    ledger, keys = ledger_of(stale_seconds=60), []

    def send(key: str) -> Sent:
        keys.append(key)
        return Sent(message_id=f"m{len(keys)}")

    first = context(run.run_id, ledger)
    assert first.once("reply", send, Sent) == Sent(message_id="m1")
    assert item(cloud, run.run_id)["attempt"]["N"] == "0"  # started; confirmed once the step's entry is written
    confirm(run.run_id, first.pending)

    repeat = context(run.run_id, ledger, attempt=1)
    assert repeat.once("reply", send, Sent) == Sent(message_id="m1")
    assert keys == [f"{run.run_id}:send_reply:reply"]  # called once, with the idempotency key
    assert repeat.pending == [] and repeat.skipped[0]["effect"] == "reply"
    assert repeat.skipped[0]["first_attempt"] == 0


def test_given_an_effect_started_by_a_running_attempt_when_another_starts_then_it_is_retried_later(
    cloud: Any, run: Envelope
) -> None:
    ledger = ledger_of(stale_seconds=60)
    context(run.run_id, ledger).once("reply", lambda key: Sent(message_id="m1"), Sent)  # not confirmed yet

    with pytest.raises(EffectInProgress) as raised:
        context(run.run_id, ledger, attempt=1).once("reply", lambda key: Sent(message_id="m2"), Sent)
    assert raised.value.retryable


def test_given_an_effect_started_by_an_attempt_that_died_when_retried_then_it_is_taken_over_with_the_same_key(
    cloud: Any, run: Envelope
) -> None:
    ledger, keys = ledger_of(stale_seconds=0.2), []
    context(run.run_id, ledger).once("reply", lambda key: Sent(message_id="m1"), Sent)  # died before confirming
    time.sleep(0.3)

    retry = context(run.run_id, ledger, attempt=1)
    result = retry.once("reply", lambda key: keys.append(key) or Sent(message_id="m2"), Sent)

    assert result == Sent(message_id="m2") and keys == [f"{run.run_id}:send_reply:reply"]
    assert item(cloud, run.run_id)["attempt"]["N"] == "1"
    confirm(run.run_id, retry.pending)
    again = context(run.run_id, ledger, attempt=2)
    assert again.once("reply", lambda key: Sent(message_id="m3"), Sent) == Sent(message_id="m2")  # the confirmed one


def test_given_ledger_items_then_reading_the_run_never_shows_them(cloud: Any, run: Envelope) -> None:
    ctx = context(run.run_id, ledger_of())
    ctx.once("reply", lambda key: Sent(message_id="m1"), Sent)
    confirm(run.run_id, ctx.pending)

    view = DynamoTimelineStore(TABLE_NAME).get(run.run_id)
    assert view is not None
    assert [e.step for e in view.timeline] == ["ingest", "send_reply"]
