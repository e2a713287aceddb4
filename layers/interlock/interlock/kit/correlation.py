"""Waiting for an external event: a run's wait registered by a correlation key, the event that ends it matched to it
exactly once, whichever of the two comes first.

A workflow that waits for a later event (Stripe's ``invoice.paid`` after an ``invoice.payment_failed``) declares the
events that end the wait as :class:`~interlock.kit.Resumer` s, each with a function from the event's payload to its
correlation key (``stripe:invoice:in_123``). One item of the table holds each key (``pk = CORR#<key>``):

* ``owner``: the run that owns the key (the run a trigger with a ``correlation`` started). While it is open, the
  key's next events of that trigger *join* it (:meth:`Correlation.claim`): recorded on its timeline, no second run.
* ``token`` / ``token_run``: the Step Functions task token of the wait registered for the key, and its run
  (:func:`wait_for_event`, the wait's task).
* ``matched``: the event that ends the wait, set once (a conditional write).

The race: the event can arrive before the wait is registered (the run is still sending its email). Both sides are
one conditional update of the key's item, and each reads the other's half in the same write's answer:
:meth:`Correlation.deliver` sets ``matched`` (only if unset) and sees the token if a wait is registered;
:meth:`Correlation.register` sets the token and sees ``matched`` if the event came first. DynamoDB applies the two
updates one after the other, so exactly one of them sees the other's write and resumes the task: the event is
matched once and never lost. An event with no wait yet stays buffered in ``matched`` until the item expires.

A delivery to a token that is no longer waiting (the wait timed out a moment ago, and the run is sending a
reminder) leaves ``matched`` set: the run's next registration finds it and resumes at once.

Platform code: it names no workflow (the keys come from the workflows' own functions).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pydantic import Field

from interlock import aws
from interlock.kit.context import StepContext
from interlock.models import TERMINAL_STATUSES, EntryState, Envelope, TimelineEntry
from interlock.observability import count, logger
from interlock.steps import StepInput
from interlock.timeline import RUN_RETENTION_SECONDS, TimelineStore

# A key is the workflow function's, from a provider's ids: bounded, and of characters no key of the table's other
# items can be confused with.
_KEY = r"[A-Za-z0-9][A-Za-z0-9:_.\-]{0,199}"
KEY_PATTERN = re.compile(rf"\A{_KEY}\Z")
# How long an event that no wait took yet is kept for one that may still register.
BUFFER_SECONDS = 14 * 24 * 3600
_SK = "CORR"


class InvalidKey(ValueError):
    """A workflow's correlation function gave something that cannot be a key."""


def checked_key(key: object) -> str | None:
    """``key`` if it is a usable correlation key, None when the function found none (an empty value)."""
    if key is None or key == "":
        return None
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise InvalidKey("a correlation key is 1-200 letters, digits and ':_.-', starting with a letter or digit")
    return key


@dataclass(frozen=True)
class Matched:
    """The event that ended (or will end) a wait: what the waiting run is resumed with."""

    event_type: str
    event_id: str
    run_id: str  # the run the event was accepted as (its envelope is kept there)

    def output(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "event_id": self.event_id, "event_run_id": self.run_id}


@dataclass(frozen=True)
class KeyItem:
    owner: str | None
    token: str | None
    token_run: str | None
    matched: Matched | None


class DeliveryKind(StrEnum):
    RESUMED = "resumed"  # a registered wait took it now
    BUFFERED = "buffered"  # no wait is registered (yet): the next registration for the key takes it
    ALREADY_MATCHED = "already_matched"  # the key's wait had its event already: this one changes nothing


@dataclass(frozen=True)
class Delivery:
    kind: DeliveryKind
    run_id: str | None  # the run it resumed, is buffered for, or that had its event already (None: no run yet)


class Callbacks(Protocol):
    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        """SendTaskSuccess; False when the task is no longer waiting for it."""


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _matched(value: dict[str, Any] | None) -> Matched | None:
    if not value:
        return None
    m = value["M"]
    return Matched(event_type=m["event_type"]["S"], event_id=m["event_id"]["S"], run_id=m["run_id"]["S"])


def _item(attributes: dict[str, Any]) -> KeyItem:
    def text(name: str) -> str | None:
        return attributes[name]["S"] if name in attributes else None

    return KeyItem(owner=text("owner"), token=text("token"), token_run=text("token_run"),
                   matched=_matched(attributes.get("matched")))


class CorrelationTable(aws.DynamoTable):
    """The keys' items, in the timeline table."""

    def _key(self, key: str) -> dict[str, Any]:
        return {"pk": _s(f"CORR#{key}"), "sk": _s(_SK)}

    def get(self, key: str) -> KeyItem | None:
        item = self.client.get_item(TableName=self.table_name, Key=self._key(key), ConsistentRead=True).get("Item")
        return _item(item) if item else None

    def take(self, key: str, run_id: str, previous: str | None) -> bool:
        """Make ``run_id`` the key's owner: over no owner (keeping an event buffered for the key), or over the
        closed run ``previous`` (forgetting that run's wait and event). False if someone else changed it first."""
        expires = {":e": {"N": str(int(time.time()) + RUN_RETENTION_SECONDS)}, ":r": _s(run_id)}
        if previous is None:
            update, condition, values = "SET #owner = :r, expires_at = :e", "attribute_not_exists(#owner)", expires
        else:
            update = "SET #owner = :r, expires_at = :e REMOVE #token, token_run, matched"
            condition, values = "#owner = :prev", {**expires, ":prev": _s(previous)}
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._key(key), UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeValues=values,
                ExpressionAttributeNames={"#owner": "owner", **({"#token": "token"} if previous else {})})
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def match(self, key: str, event: Matched) -> KeyItem | None:
        """Set the key's event, if it has none: the item as it is now (with the token of a registered wait, if
        any); None if the key had its event already."""
        try:
            answer = self.client.update_item(
                TableName=self.table_name, Key=self._key(key),
                UpdateExpression="SET matched = :m, expires_at = if_not_exists(expires_at, :e)",
                ConditionExpression="attribute_not_exists(matched)",
                ExpressionAttributeValues={
                    ":m": {"M": {"event_type": _s(event.event_type), "event_id": _s(event.event_id),
                                 "run_id": _s(event.run_id)}},
                    ":e": {"N": str(int(time.time()) + BUFFER_SECONDS)},
                },
                ReturnValues="ALL_NEW")
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return _item(answer["Attributes"])

    def register(self, key: str, run_id: str, token: str) -> KeyItem:
        """Register the wait of ``run_id`` with its task token (replacing a previous one of the same key): the item
        as it is now (with the key's event, if it came first)."""
        answer = self.client.update_item(
            TableName=self.table_name, Key=self._key(key),
            UpdateExpression="SET #token = :t, token_run = :r, #owner = if_not_exists(#owner, :r), expires_at = :e",
            ExpressionAttributeNames={"#token": "token", "#owner": "owner"},
            ExpressionAttributeValues={":t": _s(token), ":r": _s(run_id),
                                       ":e": {"N": str(int(time.time()) + RUN_RETENTION_SECONDS)}},
            ReturnValues="ALL_NEW")
        return _item(answer["Attributes"])


class Correlation:
    """The three moves on a key: a trigger claims it (or joins its run), an event is delivered to its wait (or
    buffered), a wait registers for it (and takes a buffered event)."""

    def __init__(self, table: CorrelationTable, timeline: TimelineStore, callbacks: Callbacks) -> None:
        self.table = table
        self.timeline = timeline
        self.callbacks = callbacks

    def _open(self, run_id: str) -> bool:
        run = self.timeline.get(run_id)
        return run is not None and run.status not in TERMINAL_STATUSES

    def claim(self, key: str, envelope: Envelope) -> str:
        """The run that owns ``key`` now: ``envelope.run_id`` when it took the key (no owner, or the owner's run
        is over), else the open run its event joins (recorded on that run's timeline)."""
        run_id = envelope.run_id
        for _ in range(3):  # a lost race is read again: it ends as an owner or as a join within a few rounds
            item = self.table.get(key)
            owner = item.owner if item else None
            if owner == run_id:
                return run_id
            if owner is not None and self._open(owner):
                self.timeline.record_once(owner, TimelineEntry(
                    state=EntryState.JOINED, step="correlation",
                    details={"event_type": envelope.type, "event_id": envelope.event_id, "joined_run_id": run_id}),
                    key=f"joined:{run_id}")
                count("EventsJoined")
                return owner
            if self.table.take(key, run_id, owner):
                return run_id
        raise RuntimeError("the correlation key kept changing under the claim")  # retried by the queue

    def deliver(self, key: str, envelope: Envelope) -> Delivery:
        """Hand ``envelope`` to the wait registered for ``key``, or buffer it there for the wait to come."""
        event = Matched(event_type=envelope.type, event_id=envelope.event_id, run_id=envelope.run_id)
        item = self.table.match(key, event)
        if item is None:
            current = self.table.get(key)
            return Delivery(DeliveryKind.ALREADY_MATCHED, (current.token_run or current.owner) if current else None)
        if item.token and item.token_run and self._resume(item.token_run, item.token, event):
            return Delivery(DeliveryKind.RESUMED, item.token_run)
        # No wait yet, or it is between two (a timeout's reminder): its next registration takes the event.
        count("EventsBuffered")
        return Delivery(DeliveryKind.BUFFERED, item.token_run or item.owner)

    def arrived(self, key: str) -> Matched | None:
        """The event that will end ``key``'s wait, if it came already (a workflow checks before it acts)."""
        item = self.table.get(key)
        return item.matched if item else None

    def register(self, key: str, run_id: str, token: str, waiting_for: list[str], attempt: int = 0) -> bool:
        """Register ``run_id``'s wait; True if the key's event had come already (the wait is resumed now)."""
        item = self.table.register(key, run_id, token)
        if item.matched is not None:
            return self._resume(run_id, token, item.matched)
        self.timeline.record(run_id, TimelineEntry(
            state=EntryState.WAITING, step="wait_for_event", attempt=attempt,
            details={"correlation_key": key, "waiting_for": waiting_for}))
        return False

    def _resume(self, run_id: str, token: str, event: Matched) -> bool:
        if not self.callbacks.resume(token, event.output()):
            logger.info("the wait was not waiting any more; its next registration takes the event")
            return False
        self.timeline.record_once(run_id, TimelineEntry(
            state=EntryState.PROCESSING, step="wait_for_event",
            details={"resumed_by": event.event_type, "event_id": event.event_id, "event_run_id": event.run_id}),
            key=f"resumed:{event.event_id}")
        count("WaitsResumed")
        return True


# -- the wait's task (the wait worker) ---------------------------------------------------------------------------


class WaitInput(StepInput):
    task_token: str = Field(min_length=1, max_length=2048)
    correlation_key: str = Field(min_length=1, max_length=200, pattern=rf"^{_KEY}$")
    waiting_for: list[str] = Field(default_factory=list, max_length=10)


def wait_for_event(data: WaitInput, ctx: StepContext) -> dict[str, Any]:
    """Register the run's wait for its correlation key (the ``.waitForTaskToken`` task of a workflow's wait); the
    task ends when the key's event is delivered, at once if it came first, or at the task's timeout."""
    from interlock.wiring import correlation

    resumed = correlation().register(data.correlation_key, data.run_id, data.task_token, data.waiting_for,
                                     data.attempt)
    return {"registered": True, "resumed": resumed}

