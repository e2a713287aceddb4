"""The idempotency ledger: every side effect at most once per run, step and effect name.

Express executions are at-least-once and tasks are retried, so a step that writes to a system of record, sends
a message or an email may run again after it acted. Its effect goes through :meth:`Ledger.once`:

1. a conditional put of ``~LEDGER#<step>#<effect>`` (in the run's partition) marks the effect ``started`` by this
   attempt; the put fails when the effect was started before;
2. found ``done``: the first call's result comes back, ``do`` is not called, and the worker records a ``duplicate``
   entry (reason ``already_done``) instead of the step's entry again: the timeline shows the skipped repeat;
3. found ``started`` less than ``stale_seconds`` ago: another execution of the same step is acting right now
   (a duplicate Express execution): :class:`EffectInProgress`, retried by the state machine, which then finds it
   done; ``started`` longer ago: that attempt died (timed out, crashed) without confirming, so this attempt takes
   the effect over and calls ``do`` again with the *same* idempotency key, which the systems that take one
   (the helpdesk's ``Idempotency-Key``, a CRM lookup before a create) use to drop the repeat;
4. ``do(key)`` runs; its result is confirmed ``done`` in the same transaction as the step's timeline entry
   (:meth:`interlock.timeline.DynamoTimelineStore.record_with_effects`), so an effect is confirmed exactly when
   its step is on the timeline.

Items expire with the run. Keys sort after the kept event (``~L`` > ``~E``), so reading a run never reads them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

from interlock import aws
from interlock.errors import TransientError

if TYPE_CHECKING:
    from interlock.kit.context import StepContext

R = TypeVar("R", bound=BaseModel)
LEDGER_PREFIX = "~LEDGER#"


class EffectInProgress(TransientError):
    reason = "effect_in_progress"


@dataclass(frozen=True)
class PendingEffect:
    """An effect done by this attempt, to confirm with the step's entry."""

    sort_key: str
    effect: str
    result: str  # the result model's JSON
    started_at: float


class Ledger(Protocol):
    def once(self, ctx: StepContext, effect: str, do: Callable[[str], R], model: type[R]) -> R: ...


def sort_key(step: str, effect: str) -> str:
    return f"{LEDGER_PREFIX}{step}#{effect}"


def idempotency_key(run_id: str, step: str, effect: str) -> str:
    return f"{run_id}:{step}:{effect}"


class DynamoLedger(aws.DynamoTable):
    def __init__(self, table_name: str, stale_seconds: float = 60.0, client: Any | None = None) -> None:
        super().__init__(table_name, client)
        self.stale_seconds = stale_seconds

    def once(self, ctx: StepContext, effect: str, do: Callable[[str], R], model: type[R]) -> R:
        from interlock.timeline import RUN_RETENTION_SECONDS, run_pk

        key = {"pk": {"S": run_pk(ctx.run_id)}, "sk": {"S": sort_key(ctx.step, effect)}}
        now = time.time()
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={**key, "state": {"S": "started"}, "attempt": {"N": str(ctx.attempt)},
                      "started_at": {"N": repr(now)},
                      "expires_at": {"N": str(int(now) + RUN_RETENTION_SECONDS)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            item = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item") or {}
            if item.get("state", {}).get("S") == "done":
                ctx.skipped.append({"effect": effect, "first_attempt": int(item.get("attempt", {}).get("N", "0")),
                                    "done_at": item.get("done_at", {}).get("S")})
                return model.model_validate_json(item["result"]["S"])
            seen = item.get("started_at", {}).get("N")
            if seen is not None and now - float(seen) < self.stale_seconds:
                raise EffectInProgress(f"{effect} was started {now - float(seen):.1f} s ago by another execution of "
                                       "this step; retried once it is confirmed", step=ctx.step) from None
            self._take_over(key, seen, ctx.attempt, now)
        result = do(idempotency_key(ctx.run_id, ctx.step, effect))
        ctx.pending.append(PendingEffect(sort_key(ctx.step, effect), effect, result.model_dump_json(), now))
        return result

    def _take_over(self, key: dict[str, Any], seen: str | None, attempt: int, now: float) -> None:
        condition, values = "#state = :started", {":started": {"S": "started"}, ":now": {"N": repr(now)},
                                                   ":attempt": {"N": str(attempt)}}
        if seen is not None:
            condition += " AND started_at = :seen"
            values[":seen"] = {"N": seen}
        try:
            self.client.update_item(TableName=self.table_name, Key=key,
                                    UpdateExpression="SET started_at = :now, attempt = :attempt",
                                    ConditionExpression=condition, ExpressionAttributeNames={"#state": "state"},
                                    ExpressionAttributeValues=values)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise EffectInProgress("another attempt took this effect over; retried once it is confirmed") from None


def confirm_items(table_name: str, run_pk: str, pending: list[PendingEffect]) -> list[dict[str, Any]]:
    """The transaction items that confirm ``pending`` effects ``done`` (written with the step's entry)."""
    done_at = json.dumps(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))[1:-1]
    return [{
        "Update": {
            "TableName": table_name,
            "Key": {"pk": {"S": run_pk}, "sk": {"S": p.sort_key}},
            "UpdateExpression": "SET #state = :done, #result = :result, done_at = :done_at",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#state": "state", "#result": "result"},
            "ExpressionAttributeValues": {":done": {"S": "done"}, ":result": {"S": p.result},
                                          ":done_at": {"S": done_at}},
        }
    } for p in pending]
