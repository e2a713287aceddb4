"""Which workflow handles which event, and starting it exactly once per run.

The routing table is code, reviewed like code. An event with a route starts its workflow. An event the
:data:`INFORMATIONAL` table declares informational ends ``ignored`` with the rule's reason: accepted, kept,
counted as ``RunsIgnored``, never alarmed on. Any other event is not dropped: its run ends ``failed`` with reason
``no_route`` (something should act on it), its event kept so that it can be replayed once a route exists
(``interlock.replay``). A route always wins over an informational rule.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol

from interlock import aws
from interlock.kit import RunSummary, registry
from interlock.models import EntryState, Envelope, TimelineEntry
from interlock.observability import count, logger
from interlock.timeline import DedupeState, TimelineStore

if TYPE_CHECKING:
    from interlock.kit.correlation import Correlation
    from interlock.kit.follow_ups import FollowUpMessage
    from interlock.kit.triggers import ScheduleMessage, StreamRecord


def route_for(source: str, event_type: str) -> str | None:
    """The workflow an event starts: the routing table is made of the workflows' triggers
    (:func:`interlock.kit.registry.routes`)."""
    return registry.routes().get((source, event_type))


def run_summary(envelope: Envelope, workflow: str) -> RunSummary | None:
    """The subject and customer an operator's list shows of the run (its workflow's ``run_summary``, made safe by
    :func:`interlock.run_list.checked_summary`); None when the workflow has none or its function failed on this
    payload (a warning: the run goes on without one)."""
    from interlock.kit.worker import imported
    from interlock.run_list import checked_summary

    path = registry.workflow(workflow).run_summary
    if path is None:
        return None
    try:
        return checked_summary(imported(path)(envelope))
    except Exception as exc:  # a workflow's function on an outsider's payload: the run is only listed without it
        logger.warning("the run's summary could not be read from its event", extra={"error": type(exc).__name__})
        return None


@dataclass(frozen=True)
class Informational:
    """Events nothing needs to act on: every source whose payload format is ``payload_version`` (so every source
    of one scheme, the ones ``extra_webhook_sources`` adds included), whose type matches one of ``types``
    (``fnmatch`` patterns, case-sensitive)."""

    payload_version: str
    types: tuple[str, ...]
    reason: str = "informational_event"

    def matches(self, envelope: Envelope) -> bool:
        return envelope.payload_version == self.payload_version and any(
            fnmatchcase(envelope.type, pattern) for pattern in self.types)


INFORMATIONAL: tuple[Informational, ...] = (
    # WhatsApp's reports on messages the business sent: sent, delivered, read, played (a voice message), when no
    # workflow takes them (the assistant takes sent, delivered, read and failed: a workflow's trigger comes first).
    # Not ``failed`` (a message did not reach its recipient) nor ``warning``: someone should see those.
    Informational("whatsapp.v1", ("whatsapp.status.sent", "whatsapp.status.delivered", "whatsapp.status.read",
                                  "whatsapp.status.played")),
)


def informational(envelope: Envelope) -> Informational | None:
    return next((rule for rule in INFORMATIONAL if rule.matches(envelope)), None)


class WorkflowEngine(Protocol):
    def start(self, workflow: str, run_id: str, execution_input: dict[str, Any]) -> str:
        """Start the workflow's execution named ``run_id`` (idempotent); return its id."""


class UnknownWorkflow(LookupError):
    pass


class StepFunctionsEngine:
    def __init__(self, state_machine_arns: dict[str, str], client: Any | None = None) -> None:
        self.arns = state_machine_arns
        self._client = client

    def start(self, workflow: str, run_id: str, execution_input: dict[str, Any]) -> str:
        try:
            arn = self.arns[workflow]
        except KeyError:
            raise UnknownWorkflow(workflow) from None
        client = self._client or aws.client("stepfunctions")
        try:
            return str(client.start_execution(
                stateMachineArn=arn, name=run_id, input=json.dumps(execution_input)
            )["executionArn"])
        except client.exceptions.ExecutionAlreadyExists:
            # A redelivered message: the run's execution exists already, which is all we wanted.
            logger.info("execution already exists", extra={"workflow": workflow})
            return f"{arn.replace(':stateMachine:', ':execution:')}:{run_id}"


class Router:
    def __init__(self, engine: WorkflowEngine, store: TimelineStore, policy: dict[str, Any],
                 correlation: Callable[[], Correlation] | None = None) -> None:
        self.engine = engine
        self.store = store
        self.policy = policy
        self._correlation = correlation  # built on first use: only a workflow that waits for an event needs it

    @property
    def correlation(self) -> Correlation:
        if self._correlation is None:
            raise RuntimeError("this router has no correlation store, and an event needs one")
        return self._correlation()

    def route(self, envelope: Envelope, acceptance: str | None = None, confirm_queued: bool = True) -> None:
        """Start the envelope's workflow. ``acceptance`` is the token of the ingest delivery that queued it (the
        message's ``acceptance`` attribute): a message whose acceptance another delivery took over is superseded
        by that delivery's own message, and dropped (the execution name, the run id, makes a second start a
        no-op anyway; this keeps the superseded one from touching the run at all). ``confirm_queued=False``: the
        caller confirms the acceptance itself, once the run is started (:meth:`accept_trigger`)."""
        logger.append_keys(correlation_id=envelope.run_id)
        # It reached the queue: later deliveries of the same event are duplicates, even if the ingest
        # function died before it could say so itself.
        if confirm_queued and not self.store.mark_queued(envelope, acceptance, read_first=True):
            count("MessagesSuperseded")
            logger.info("message superseded: a later delivery took the event's acceptance over")
            return
        workflow = route_for(envelope.source, envelope.type)
        if workflow is None and (resumer := registry.resumer(envelope.source, envelope.type)) is not None:
            self._deliver(envelope, resumer[0].name, resumer[1].correlation)
            return
        if workflow is not None and self._joined(envelope, workflow):
            return
        if workflow is None and (rule := informational(envelope)) is not None:
            self.store.record(
                envelope.run_id,
                TimelineEntry(
                    state=EntryState.IGNORED,
                    step="router",
                    details={"reason": rule.reason, "event_source": envelope.source, "event_type": envelope.type},
                ),
            )
            count("RunsIgnored")
            logger.info("informational event ignored", extra={"source": envelope.source,
                                                              "event_type": envelope.type, "reason": rule.reason})
            return
        if workflow is None:
            self.store.record(
                envelope.run_id,
                TimelineEntry(
                    state=EntryState.FAILED,
                    step="router",
                    details={"reason": "no_route", "event_source": envelope.source,
                             "event_type": envelope.type},
                ),
            )
            count("RunsFailed")
            logger.warning("no route for event", extra={"source": envelope.source, "event_type": envelope.type})
            return
        self.store.record(
            envelope.run_id,
            TimelineEntry(state=EntryState.PROCESSING, step="router",
                          details={"workflow": workflow, "event_type": envelope.type}),
            workflow=workflow,
            summary=run_summary(envelope, workflow),
        )
        execution = self.engine.start(
            workflow,
            envelope.run_id,
            # "entry": where the automatic path starts (a workflow's wait resumes it at "decision")
            {"run_id": envelope.run_id, "entry": "start", "envelope": envelope.model_dump(mode="json"),
             "policy": self.policy},
        )
        count("RunsStarted")
        logger.info("workflow started", extra={"workflow": workflow, "execution": execution})

    # -- events matched by correlation key (interlock.kit.correlation) ------------------------------------------

    def _key(self, envelope: Envelope, function: str, workflow: str) -> tuple[bool, str | None]:
        """(ok, key): the workflow's correlation function applied to the payload; not ok (the run recorded
        failed) when it raises or gives something that is no key."""
        from interlock.kit.correlation import checked_key
        from interlock.kit.worker import imported

        try:
            return True, checked_key(imported(function)(envelope.payload))
        except Exception as exc:  # a workflow's function on an outsider's payload: its failure ends this run
            self.store.record(envelope.run_id, TimelineEntry(
                state=EntryState.FAILED, step="router",
                details={"reason": "correlation_key_error", "error": type(exc).__name__,
                         "event_type": envelope.type}), workflow=workflow)
            count("RunsFailed")
            logger.warning("correlation key could not be read from the event", extra={"error": type(exc).__name__})
            return False, None

    def _joined(self, envelope: Envelope, workflow: str) -> bool:
        """True if the event joined the open run that owns its correlation key (recorded on both runs)."""
        trigger = registry.trigger(envelope.source, envelope.type)
        if trigger is None or trigger.correlation is None:
            return False
        ok, key = self._key(envelope, trigger.correlation, workflow)
        if not ok:
            return True
        if key is None:
            return False
        owner = self.correlation.claim(key, envelope)
        if owner == envelope.run_id:
            return False
        self.store.record(envelope.run_id, TimelineEntry(
            state=EntryState.IGNORED, step="router",
            details={"reason": "joined_open_run", "joined_run_id": owner, "event_type": envelope.type}),
            workflow=workflow)
        count("RunsIgnored")
        logger.info("event joined the open run of its correlation key", extra={"joined_run_id": owner})
        return True

    def _deliver(self, envelope: Envelope, workflow: str, function: str) -> None:
        """An event that ends a wait: handed to the waiting run, or buffered for it; its own run records which."""
        from interlock.kit.correlation import DeliveryKind

        ok, key = self._key(envelope, function, workflow)
        if not ok:
            return
        details: dict[str, str | None]
        if key is None:
            state, details = EntryState.IGNORED, {"reason": "no_correlation_key"}
        else:
            delivery = self.correlation.deliver(key, envelope)
            details = {"correlation_key": key, "run": delivery.run_id}
            if delivery.kind is DeliveryKind.RESUMED:
                state, details = EntryState.COMPLETED, {"reason": "resumed_waiting_run", **details}
            elif delivery.kind is DeliveryKind.BUFFERED and delivery.run_id:
                state, details = EntryState.COMPLETED, {"reason": "buffered_for_waiting_run", **details}
            elif delivery.kind is DeliveryKind.BUFFERED:
                state, details = EntryState.IGNORED, {"reason": "no_waiting_run", **details}
            else:
                state, details = EntryState.IGNORED, {"reason": "wait_already_resumed", **details}
        self.store.record(envelope.run_id, TimelineEntry(
            state=state, step="correlation", details={**details, "event_type": envelope.type}), workflow=workflow)
        count("RunsCompleted" if state is EntryState.COMPLETED else "RunsIgnored")
        logger.info("event matched by correlation key", extra={"reason": details["reason"]})

    # -- the triggers that are not webhooks (interlock.kit.triggers) -------------------------------------------

    def accept_trigger(self, message: ScheduleMessage | StreamRecord | FollowUpMessage, delivery: str) -> None:
        """A schedule's firing, a table's status change or a step's follow-up, straight off the queue: make its
        envelope, create its run (as the ingest does for a webhook: ``received``, the envelope kept, the dedupe
        key), then start it.

        ``delivery`` is the queue message's id: the acceptance token. Its dedupe key (the scheduled time, the
        stream record's sequence number, the follow-up's key) stays ``accepting`` until the run is started, then
        is marked ``queued``:

        * the same message again (SQS redelivers it after a crash) finds its own token and starts the run (the
          execution name makes a second start a no-op);
        * another message for the same firing or record (Scheduler's retry, the DLQ redriven) is a duplicate and
          starts nothing, unless the acceptance was abandoned (``accepting`` for longer than
          ``TRIGGER_STALE_SECONDS``): then it takes the acceptance over and starts the run, so none is lost.
        """
        from interlock.kit.triggers import TRIGGER_DEDUPE_TTL_SECONDS, trigger_envelope
        from interlock.models import utcnow

        envelope = trigger_envelope(message, utcnow())
        if envelope is None:
            count("StatusChangesFiltered")
            logger.info("stream record filtered out: no status change a workflow declares",
                        extra={"event_name": getattr(message, "eventName", None)})
            return
        logger.append_keys(correlation_id=envelope.run_id)
        created = self.store.create_run_once(envelope, TRIGGER_DEDUPE_TTL_SECONDS, delivery)
        if not created and not self._resumable(envelope, delivery):
            return
        self.route(envelope, delivery, confirm_queued=False)
        # Started: from now on a delivery with its dedupe key is a duplicate (False: taken over meanwhile by another
        # delivery, which starts the same execution).
        self.store.mark_queued(envelope, delivery)

    def _resumable(self, envelope: Envelope, delivery: str) -> bool:
        """Whether this delivery goes on to start a trigger's run whose dedupe key exists already; otherwise it is a
        duplicate, recorded once on the run."""
        from interlock.kit.triggers import TRIGGER_STALE_SECONDS

        held = self.store.dedupe_record(envelope.dedupe_key)
        if held is not None and held.token == delivery:
            if held.state is DedupeState.ACCEPTING:
                logger.warning("a trigger's run was created but not started; starting it now")
                return True
            logger.info("trigger message delivered again after its run was started")
            return False
        if (held is not None and held.state is DedupeState.ACCEPTING
                and time.time() - held.accepted_at >= TRIGGER_STALE_SECONDS
                and self.store.take_over(envelope, held, delivery)):
            logger.warning("taking over an abandoned trigger acceptance", extra={"accepted_at": held.accepted_at})
            return True
        self.store.record_once(
            held.run_id if held is not None else envelope.run_id,
            TimelineEntry(state=EntryState.DUPLICATE, step="router",
                          details={"event_source": envelope.source, "event_type": envelope.type,
                                   "event_id": envelope.event_id}),
            key=f"duplicate:{delivery}",
        )
        count("EventsDuplicate")
        logger.info("duplicate trigger: its run exists already", extra={"event_type": envelope.type})
        return False
