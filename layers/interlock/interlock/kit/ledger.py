"""The idempotency ledger: every side effect at most once per run, step and effect name.

Express executions are at-least-once and tasks are retried, so a step that writes to a system of record, sends
a message or an email may run again after it acted. Its effect goes through :meth:`Ledger.once`:

1. a conditional put of ``~LEDGER#<step>#<effect>`` (in the run's partition) marks the effect ``started`` by this
   attempt; the put fails when the effect was started before;
2. the effect is confirmed by the step's own timeline entry, which names it with its result
   (``details.effects``): when the step is on the timeline, its effects are done. So a repeat whose put failed reads
   the run's timeline (a read, not a write): the effect is there, so the first call's result comes back, ``do`` is
   not called, and the worker records a ``duplicate`` entry (reason ``already_done``) instead of the step's entry
   again: the timeline shows the skipped repeat;
3. not on the timeline, and started less than ``stale_seconds`` ago: another execution of the same step is acting
   right now (a duplicate Express execution): :class:`EffectInProgress`, retried by the state machine, which then
   finds it done; started longer ago: that attempt died (timed out, crashed) before its step's entry was written,
   so this attempt takes the effect over and calls ``do`` again with the *same* idempotency key, which the systems
   that take one (the helpdesk's ``Idempotency-Key``, a CRM lookup before a create) use to drop the repeat.

One write per effect (the marker) and none to confirm it. Items expire with the run; their keys sort after the
kept event (``~L`` > ``~E``), so reading a run never reads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

from interlock import aws
from interlock.errors import TransientError

if TYPE_CHECKING:
    from interlock.kit.context import StepContext
    from interlock.timeline import TimelineStore

R = TypeVar("R", bound=BaseModel)
LEDGER_PREFIX = "~LEDGER#"
EFFECTS = "effects"  # the key of a step entry's details that names the effects it confirms


class EffectInProgress(TransientError):
    reason = "effect_in_progress"


@dataclass(frozen=True)
class PendingEffect:
    """An effect done by this attempt, confirmed by the step's entry."""

    effect: str
    result: dict[str, Any]  # the result model, as JSON


class Ledger(Protocol):
    def once(self, ctx: StepContext, effect: str, do: Callable[[str], R], model: type[R]) -> R: ...


def sort_key(step: str, effect: str) -> str:
    return f"{LEDGER_PREFIX}{step}#{effect}"


def idempotency_key(run_id: str, step: str, effect: str) -> str:
    return f"{run_id}:{step}:{effect}"


def confirmed(timeline: TimelineStore, run_id: str, step: str, effect: str) -> tuple[dict[str, Any], Any] | None:
    """The result of ``effect`` as the step's entry on the run's timeline confirms it, with the entry's time."""
    view = timeline.get(run_id)
    for entry in reversed(view.timeline if view else []):
        effects = entry.details.get(EFFECTS) if entry.step == step else None
        if isinstance(effects, dict) and effect in effects:
            return dict(effects[effect]), entry.at
    return None


class DynamoLedger(aws.DynamoTable):
    def __init__(self, table_name: str, timeline: TimelineStore, stale_seconds: float = 60.0,
                 client: Any | None = None) -> None:
        super().__init__(table_name, client)
        self.timeline = timeline
        self.stale_seconds = stale_seconds

    def once(self, ctx: StepContext, effect: str, do: Callable[[str], R], model: type[R]) -> R:
        from interlock.timeline import RUN_RETENTION_SECONDS, run_pk

        key = {"pk": {"S": run_pk(ctx.run_id)}, "sk": {"S": sort_key(ctx.step, effect)}}
        now = time.time()
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={**key, "attempt": {"N": str(ctx.attempt)}, "started_at": {"N": repr(now)},
                      "expires_at": {"N": str(int(now) + RUN_RETENTION_SECONDS)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            item = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item") or {}
            done = confirmed(self.timeline, ctx.run_id, ctx.step, effect)
            if done is not None:
                first, at = done
                ctx.skipped.append({"effect": effect, "first_attempt": int(item.get("attempt", {}).get("N", "0")),
                                    "done_at": at.isoformat()})
                return model.model_validate(first)
            seen = item.get("started_at", {}).get("N")
            if seen is not None and now - float(seen) < self.stale_seconds:
                raise EffectInProgress(f"{effect} was started {now - float(seen):.1f} s ago by another execution of "
                                       "this step; retried once it is confirmed", step=ctx.step) from None
            self._take_over(key, seen, ctx.attempt, now)
        made = do(idempotency_key(ctx.run_id, ctx.step, effect))
        ctx.pending.append(PendingEffect(effect, made.model_dump(mode="json")))
        return made

    def _take_over(self, key: dict[str, Any], seen: str | None, attempt: int, now: float) -> None:
        condition = "started_at = :seen" if seen is not None else "attribute_not_exists(started_at)"
        values = {":now": {"N": repr(now)}, ":attempt": {"N": str(attempt)}}
        if seen is not None:
            values[":seen"] = {"N": seen}
        try:
            self.client.update_item(TableName=self.table_name, Key=key,
                                    UpdateExpression="SET started_at = :now, attempt = :attempt",
                                    ConditionExpression=condition, ExpressionAttributeValues=values)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise EffectInProgress("another attempt took this effect over; retried once it is confirmed") from None
