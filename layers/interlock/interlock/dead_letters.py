"""The ingest queue's DLQ: what each message in it is, what moving it back would do, and the redrive itself.

A message lands in the ingest DLQ when the router failed on it ``max_receive_count`` times (Step Functions or
DynamoDB unavailable, a bug), or when it is nothing the router can read. Moving every message back blindly would
start some runs twice (an Express execution's name does not make a second start a no-op), so a redrive first
**plans** each message: the same reads the router makes (the run, its dedupe record) give its :class:`Verdict`:

* ``start``: moved back to the ingest queue, where the router starts its run (an envelope whose run is still
  ``received``, or ``processing`` with no step after the router's for longer than an Express execution lasts; a
  schedule firing, status change or follow-up whose run is not there yet, or was created and never started, or
  whose acceptance was abandoned). What the router will do with it is ``outcome``;
* ``duplicate``: its run was started already, or a later delivery of the same event holds it: removed from the
  DLQ, with a ``duplicate`` entry (step ``redrive``) on its run;
* ``filtered``: a stream record that is no status change a workflow declares: removed (the router drops it too);
* ``poison``: nothing the router can read, or naming what no workflow declares: kept, with the reason;
* ``no_run``: an envelope whose run is not recorded (its acceptance was undone): kept;
* ``in_progress``: its run is being started right now (another delivery holds it, not yet abandoned): kept; plan
  it again later.

A **dry run** plans and changes nothing (the messages it read are made visible again at once). A redrive plans each
message again at that moment and acts on that plan, so it does what a dry run just before it said, unless a run
moved meanwhile. A moved message keeps its attributes; a trigger's also carries ``delivery``, the id its first
delivery had, so the router knows the acceptance that delivery recorded as its own (``queue_router``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from interlock import aws
from interlock.kit.triggers import DELIVERY_ATTRIBUTE
from interlock.models import EntryState, Envelope, RunStatus, TimelineEntry, utcnow
from interlock.observability import count, logger

if TYPE_CHECKING:
    from interlock.timeline import TimelineStore

# An Express execution lasts at most five minutes: a run ``processing`` for longer with no entry after the router's
# never had its execution started.
EXPRESS_MAX_SECONDS = 300
# How long the messages a request reads stay hidden from another request: longer than the function's timeout.
HOLD_SECONDS = 60
MAX_LIMIT = 100  # messages planned (or redriven) per request: well within API Gateway's 29 seconds


class Verdict(StrEnum):
    START = "start"
    DUPLICATE = "duplicate"
    FILTERED = "filtered"
    POISON = "poison"
    NO_RUN = "no_run"
    IN_PROGRESS = "in_progress"


class Action(StrEnum):
    MOVE = "move"  # back to the ingest queue
    REMOVE = "remove"  # deleted from the DLQ: nothing is left for it to do
    KEEP = "keep"  # left in the DLQ


ACTION = {Verdict.START: Action.MOVE, Verdict.DUPLICATE: Action.REMOVE, Verdict.FILTERED: Action.REMOVE,
          Verdict.POISON: Action.KEEP, Verdict.NO_RUN: Action.KEEP, Verdict.IN_PROGRESS: Action.KEEP}


@dataclass(frozen=True)
class DeadLetter:
    """A message read from a DLQ: its body and string attributes as the queue holds them."""

    message_id: str
    receipt: str
    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    sent_at: datetime | None = None  # when it was first sent to the ingest queue (SQS keeps it through the move)
    receive_count: int = 0


@dataclass(frozen=True)
class Plan:
    """What moving one message back would do: ``verdict``, ``reason`` (a code) and ``outcome`` (a sentence)."""

    message_id: str
    kind: str  # envelope, schedule, status_change, follow_up, unknown
    verdict: Verdict
    reason: str
    outcome: str
    run_id: str | None = None
    run_status: str | None = None
    workflow: str | None = None
    event_type: str | None = None
    sent_at: str | None = None
    receive_count: int = 0

    @property
    def action(self) -> Action:
        return ACTION[self.verdict]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict.value, "action": self.action.value}


class DeadLetterQueue(Protocol):
    def depth(self) -> int:
        """The messages it holds (visible or held by a reader), as SQS approximates them."""

    def take(self, limit: int, hold_seconds: int) -> list[DeadLetter]:
        """At most ``limit`` messages, each hidden from other readers for ``hold_seconds``."""

    def release(self, letters: list[DeadLetter]) -> None:
        """Make messages taken but not acted on visible again now."""

    def delete(self, letter: DeadLetter) -> None: ...


class MessageSender(Protocol):
    def send_raw(self, body: str, attributes: Mapping[str, str]) -> None:
        """Send ``body`` to the ingest queue with these string message attributes."""


# -- planning --------------------------------------------------------------------------------------------------


def _kind(message: Any) -> str:
    from interlock.kit.follow_ups import FollowUpMessage
    from interlock.kit.triggers import ScheduleMessage

    if isinstance(message, Envelope):
        return "envelope"
    if isinstance(message, ScheduleMessage):
        return "schedule"
    if isinstance(message, FollowUpMessage):
        return "follow_up"
    return "status_change"


def envelope_outcome(envelope: Envelope) -> tuple[str | None, str]:
    """(workflow, what the router does with the envelope): the router's own order (``Router.route``)."""
    from interlock.kit import registry
    from interlock.routing import informational, route_for

    workflow = route_for(envelope.source, envelope.type)
    if workflow is not None:
        return workflow, f"starts workflow {workflow}"
    resumer = registry.resumer(envelope.source, envelope.type)
    if resumer is not None:
        return resumer[0].name, f"is matched to a waiting run of workflow {resumer[0].name}"
    if informational(envelope) is not None:
        return None, "ends ignored (an informational event)"
    return None, "ends failed: no_route (no workflow takes this event)"


class Planner:
    def __init__(self, store: TimelineStore, now: Callable[[], datetime] = utcnow,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.now = now
        self.clock = clock

    def plan(self, letter: DeadLetter) -> Plan:
        from interlock.kit.triggers import PoisonMessage, parse_message

        sent_at = letter.sent_at.isoformat().replace("+00:00", "Z") if letter.sent_at else None
        base: dict[str, Any] = {"message_id": letter.message_id, "receive_count": letter.receive_count,
                                "sent_at": sent_at}
        try:
            message = parse_message(letter.body)
        except PoisonMessage as exc:
            return Plan(kind="unknown", verdict=Verdict.POISON, reason="poison", outcome=str(exc), **base)
        if isinstance(message, Envelope):
            return self._envelope(message, letter, base)
        return self._trigger(message, letter, base)

    def _envelope(self, envelope: Envelope, letter: DeadLetter, base: dict[str, Any]) -> Plan:
        workflow, outcome = envelope_outcome(envelope)
        facts = {**base, "kind": "envelope", "run_id": envelope.run_id, "workflow": workflow,
                 "event_type": envelope.type}
        view = self.store.get(envelope.run_id)
        if view is None:
            return Plan(verdict=Verdict.NO_RUN, reason="run_not_recorded",
                        outcome="its run is not recorded (its acceptance was undone, or it expired): kept", **facts)
        facts["run_status"] = view.status.value
        acceptance = letter.attributes.get("acceptance")
        held = self.store.dedupe_record(envelope.dedupe_key)
        if acceptance and held is not None and held.token and held.token != acceptance:
            return Plan(verdict=Verdict.DUPLICATE, reason="superseded",
                        outcome="a later delivery of the same event holds its run: removed", **facts)
        if view.status is RunStatus.RECEIVED:
            return Plan(verdict=Verdict.START, reason="not_started", outcome=outcome, **facts)
        last = view.timeline[-1] if view.timeline else None
        if (view.status is RunStatus.PROCESSING and last is not None and last.step == "router"
                and last.state is EntryState.PROCESSING):
            if self.now() - last.at >= timedelta(seconds=EXPRESS_MAX_SECONDS):
                return Plan(verdict=Verdict.START, reason="start_never_happened",
                            outcome=f"{outcome} (its execution never started)", **facts)
            return Plan(verdict=Verdict.IN_PROGRESS, reason="starting",
                        outcome="its execution was started moments ago: kept; plan it again later", **facts)
        return Plan(verdict=Verdict.DUPLICATE, reason="already_started",
                    outcome=f"its run was started already (it is {view.status.value}): removed", **facts)

    def _trigger(self, message: Any, letter: DeadLetter, base: dict[str, Any]) -> Plan:
        from interlock.kit.triggers import TRIGGER_STALE_SECONDS, PoisonMessage, trigger_envelope
        from interlock.timeline import DedupeState

        kind = _kind(message)
        try:
            envelope = trigger_envelope(message, self.now())
        except PoisonMessage as exc:
            return Plan(kind=kind, verdict=Verdict.POISON, reason="poison", outcome=str(exc), **base)
        if envelope is None:
            return Plan(kind=kind, verdict=Verdict.FILTERED, reason="not_a_declared_change",
                        outcome="no status change a workflow declares: removed (the router drops it too)", **base)
        workflow, _ = envelope_outcome(envelope)
        held = self.store.dedupe_record(envelope.dedupe_key)
        run_id = held.run_id if held is not None else envelope.run_id
        view = self.store.get(run_id) if held is not None else None
        facts = {**base, "kind": kind, "run_id": run_id, "workflow": workflow, "event_type": envelope.type,
                 "run_status": view.status.value if view else None}
        starts = f"starts workflow {workflow}" if workflow else "starts its run"
        delivery = letter.attributes.get(DELIVERY_ATTRIBUTE) or letter.message_id
        if held is None:
            return Plan(verdict=Verdict.START, reason="new_run", outcome=f"creates its run and {starts}", **facts)
        if held.token == delivery and held.state is DedupeState.ACCEPTING:
            return Plan(verdict=Verdict.START, reason="created_not_started",
                        outcome=f"its run was created and never started: {starts}", **facts)
        if held.state is DedupeState.QUEUED:
            return Plan(verdict=Verdict.DUPLICATE, reason="already_started",
                        outcome="its run was started already: removed", **facts)
        if self.clock() - held.accepted_at >= TRIGGER_STALE_SECONDS:
            return Plan(verdict=Verdict.START, reason="abandoned_acceptance",
                        outcome=f"takes over the acceptance another delivery abandoned and {starts}", **facts)
        return Plan(verdict=Verdict.IN_PROGRESS, reason="acceptance_held",
                    outcome="another delivery is starting its run right now: kept; plan it again later", **facts)


# -- the redrive -----------------------------------------------------------------------------------------------


class UnknownDlq(LookupError):
    pass


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    dry_run: bool = True  # nothing moves unless asked for
    limit: int = Field(default=MAX_LIMIT, ge=1, le=MAX_LIMIT)


@dataclass
class RedriveReport:
    dlq: str
    dry_run: bool
    depth: int
    plans: list[Plan]
    done: dict[str, str] = field(default_factory=dict)  # message id -> moved, removed, kept, failed

    def as_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for plan in self.plans:
            counts[plan.verdict.value] = counts.get(plan.verdict.value, 0) + 1
        messages = [{**p.as_dict(), **({"done": self.done[p.message_id]} if p.message_id in self.done else {})}
                    for p in self.plans]
        body: dict[str, Any] = {"dlq": self.dlq, "dry_run": self.dry_run, "depth": self.depth,
                                "examined": len(self.plans), "more": self.depth > len(self.plans),
                                "verdicts": counts, "messages": messages}
        if not self.dry_run:
            body["moved"] = sum(1 for v in self.done.values() if v == "moved")
            body["removed"] = sum(1 for v in self.done.values() if v == "removed")
            body["failed"] = sum(1 for v in self.done.values() if v == "failed")
        return body


class Redrive:
    """The DLQs an operator can redrive (name -> the DLQ), each back to ``sender``'s queue."""

    def __init__(self, store: TimelineStore, dlqs: Mapping[str, DeadLetterQueue], sender: MessageSender,
                 planner: Planner | None = None) -> None:
        self.store = store
        self.dlqs = dlqs
        self.sender = sender
        self.planner = planner or Planner(store)

    def queues(self) -> list[dict[str, Any]]:
        return [{"name": name, "messages": dlq.depth()} for name, dlq in sorted(self.dlqs.items())]

    def run(self, name: str, *, dry_run: bool, limit: int) -> RedriveReport:
        dlq = self.dlqs.get(name)
        if dlq is None:
            raise UnknownDlq(name)
        depth = dlq.depth()
        letters = dlq.take(limit, HOLD_SECONDS)
        report = RedriveReport(dlq=name, dry_run=dry_run, depth=max(depth, len(letters)), plans=[])
        keep: list[DeadLetter] = []
        try:
            for letter in letters:
                plan = self.planner.plan(letter)
                report.plans.append(plan)
                if dry_run or plan.action is Action.KEEP:
                    keep.append(letter)
                    if not dry_run:
                        report.done[letter.message_id] = "kept"
                    continue
                report.done[letter.message_id] = self._act(dlq, letter, plan, keep)
        finally:
            dlq.release(keep + letters[len(report.plans):])
        if not dry_run:
            count("DeadLettersRedriven", report.as_dict()["moved"])
            logger.info("DLQ redriven", extra={"dlq": name, "examined": len(report.plans),
                                                "done": sorted(report.done.values())})
        return report

    def _act(self, dlq: DeadLetterQueue, letter: DeadLetter, plan: Plan, keep: list[DeadLetter]) -> str:
        try:
            if plan.action is Action.MOVE:
                attributes = dict(letter.attributes)
                if plan.kind != "envelope":
                    attributes.setdefault(DELIVERY_ATTRIBUTE, letter.message_id)
                self.sender.send_raw(letter.body, attributes)
            dlq.delete(letter)
        except Exception:
            logger.exception("could not redrive a DLQ message; it stays", extra={"message_id": letter.message_id})
            keep.append(letter)
            return "failed"
        if plan.run_id:
            moved = plan.action is Action.MOVE
            entry = TimelineEntry(
                state=EntryState.RETRIED if moved else EntryState.DUPLICATE, step="redrive",
                details={"reason": "redriven_from_dlq" if moved else plan.reason, "message_id": letter.message_id})
            try:
                self.store.record_once(plan.run_id, entry, key=f"redrive:{letter.message_id}")
            except Exception:  # the message went where it should: the entry is what is missing
                logger.exception("could not record the redrive on its run", extra={"run_id": plan.run_id})
        return "moved" if plan.action is Action.MOVE else "removed"


# -- the API's requests (POST /dlqs/{name}/redrive) ---------------------------------------------------------


def redrive_answer(redrive: Redrive, name: str, body: str | None) -> tuple[int, dict[str, Any]]:
    """The answer to ``POST /dlqs/{name}/redrive`` with JSON ``body`` ``{"dry_run": bool, "limit": 1..100}``, both
    optional: without ``"dry_run": false`` nothing moves."""
    from interlock.http import BodyError, model_body

    if name not in redrive.dlqs:
        return 404, {"error": "unknown_dlq", "message": f"no DLQ named {name[:64]!r}; the DLQs are: "
                                                        f"{', '.join(sorted(redrive.dlqs))}"}
    try:
        request = model_body(body, RedriveRequest)
    except BodyError as exc:
        if exc.code == "bad_body":
            return 400, {"error": "bad_body", "message": "the body is not JSON"}
        return 400, {"error": "bad_request", "message": f"a redrive takes {{\"dry_run\": true|false, \"limit\": "
                                                        f"1..{MAX_LIMIT}}}; wrong: {', '.join(exc.fields)}"}
    report = redrive.run(name, dry_run=request.dry_run, limit=request.limit)
    return 200, report.as_dict()


# -- SQS adapters ----------------------------------------------------------------------------------------------


class SqsQueue:
    """A queue by its URL, and its client, made on first use unless given."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.client("sqs")

    def depth(self) -> int:
        """The messages it holds (visible or held by a reader), as SQS approximates them."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0))


class SqsDeadLetters(SqsQueue):
    def take(self, limit: int, hold_seconds: int) -> list[DeadLetter]:
        letters: dict[str, DeadLetter] = {}
        while len(letters) < limit:
            answer = self.client.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, limit - len(letters)),
                VisibilityTimeout=hold_seconds, WaitTimeSeconds=1,
                AttributeNames=["SentTimestamp", "ApproximateReceiveCount"], MessageAttributeNames=["All"])
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                letters.setdefault(message["MessageId"], _letter(message))
        return list(letters.values())

    def release(self, letters: list[DeadLetter]) -> None:
        for start in range(0, len(letters), 10):
            batch = letters[start:start + 10]
            try:
                self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": letter.receipt, "VisibilityTimeout": 0}
                    for i, letter in enumerate(batch)])
            except Exception:  # they come back by themselves once their hold ends
                logger.exception("could not make DLQ messages visible again", extra={"messages": len(batch)})

    def delete(self, letter: DeadLetter) -> None:
        self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=letter.receipt)


def _letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("Attributes", {})
    sent = attributes.get("SentTimestamp")
    return DeadLetter(
        message_id=message["MessageId"], receipt=message["ReceiptHandle"], body=message.get("Body", ""),
        attributes={name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()
                    if value.get("DataType", "").startswith("String") and "StringValue" in value},
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent and sent.isdigit() else None,
        receive_count=int(attributes.get("ApproximateReceiveCount", "0") or 0))


class SqsSender(SqsQueue):
    def send_raw(self, body: str, attributes: Mapping[str, str]) -> None:
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes={
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()})
