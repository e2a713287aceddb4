"""The ingest use case, independent of API Gateway: raw request in, outcome out."""

from __future__ import annotations

import base64
import binascii
import math
import secrets as random_tokens
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from interlock.ingest.ports import EventQueue, WebhookSecrets
from interlock.models import EntryState, Envelope, TimelineEntry, run_id_for, utcnow
from interlock.observability import count, logger
from interlock.settings import IngestSettings
from interlock.timeline import DedupeState, TimelineStore
from interlock.webhooks.base import Delivery, PayloadError, SignatureError, SourceEvent, WebhookSource
from interlock.webhooks.registry import SourceRegistry

IN_PROGRESS_POLL_SECONDS = 0.1
# What the service keeps in hand against its deadline (the invocation's timeout): the time one AWS call may take
# (a DynamoDB write, the queue send), and the time left to answer after the last one. Acceptance starts only
# with room for recording, queueing and (should queueing fail) undoing; the queue send only with room for it and
# the undo. Past those points the delivery answers 503 with nothing kept, rather than be cut off by the timeout
# (API Gateway then answers 502 whatever the function did, and the sender retries an event it may have queued).
CALL_BUDGET_SECONDS = 1.0
ANSWER_MARGIN_SECONDS = 0.25


@dataclass(frozen=True)
class RawRequest:
    source: str
    headers: dict[str, str]  # lower-case names
    body: str | None
    is_base64: bool
    method: str = "POST"
    query: dict[str, str] = field(default_factory=dict)
    path: str = ""


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any] | str = field(default_factory=dict)
    content_type: str = "application/json"


def _error(status: int, code: str, message: str) -> Outcome:
    return Outcome(status, {"error": code, "message": message})


def _unknown(source: str) -> Outcome:
    return _error(404, "unknown_source", f"no webhook source named {source!r} is enabled")


@dataclass(frozen=True)
class _Budget:
    """One delivery's time: ``deadline`` on ``clock``, each AWS call allowed ``call`` seconds, ``margin`` kept to
    answer."""

    clock: Callable[[], float]
    deadline: float
    call: float
    margin: float

    def room_for(self, calls: int) -> bool:
        """True if ``calls`` more AWS calls and the answer fit before the deadline."""
        return self.clock() + calls * self.call + self.margin <= self.deadline


def _out_of_time(where: str) -> Outcome:
    """Not enough of the invocation left to finish: nothing of this delivery is kept, and the sender retries."""
    logger.warning("out of time, answering 503 with nothing kept", extra={"where": where})
    count("WebhookOutOfTime")
    count("WebhookUnavailable")  # a 503 like the others: the front door's alarm watches them all
    return _error(503, "unavailable", "the event could not be accepted in time; retry later")


def _refused(source: str, outcome: Outcome, reason: str) -> Outcome:
    """Log why a request was refused (never the secret, the signature or the body) and answer it."""
    logger.warning("webhook refused", extra={"source": source, "status": outcome.status, "reason": reason})
    count("WebhookRejected")
    return outcome


class IngestService:
    """Drives a source's plug-in through a delivery; records and queues each event it carries."""

    def __init__(
        self,
        settings: IngestSettings,
        secrets: WebhookSecrets,
        store: TimelineStore,
        queue: EventQueue,
        sources: SourceRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        call_budget_seconds: float = CALL_BUDGET_SECONDS,
        answer_margin_seconds: float = ANSWER_MARGIN_SECONDS,
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        self.store = store
        self.queue = queue
        self.sources = sources or SourceRegistry(settings)
        self.clock = clock
        self.sleep = sleep
        self.call_budget = call_budget_seconds
        self.answer_margin = answer_margin_seconds

    def accept(self, request: RawRequest, deadline: float | None = None) -> Outcome:
        """Answer one delivery. ``deadline``: the ``clock()`` value by which the answer must be out (the
        invocation's end, from the Lambda context's remaining time); every wait and write is budgeted against it."""
        budget = _Budget(self.clock, math.inf if deadline is None else deadline, self.call_budget,
                         self.answer_margin)
        name = request.source
        source = self.sources.get(name)
        if source is None:
            return _refused(name, _unknown(name), "unknown_source")
        if not budget.room_for(1):
            return _out_of_time("before reading the webhook secrets")
        try:
            secrets = self.secrets.get(name, free_text=source.secret_is_free_text)
        except Exception:
            # The secret store failing (or a secret that cannot be read) is our outage: a 5xx makes the
            # sender retry, a 404 would not.
            logger.exception("could not read the webhook secrets", extra={"source": name})
            count("WebhookUnavailable")
            return _error(503, "unavailable", "the request could not be verified right now; retry later")
        if not secrets:
            # Disabled: answered exactly like a source that does not exist, whatever the method or size.
            return _refused(name, _unknown(name), "no_secret_configured")
        if request.method not in source.methods:
            return _refused(name, _error(405, "method_not_allowed",
                                         f"{name} webhooks are sent with {', '.join(source.methods)}"),
                            "method_not_allowed")
        body = self._raw_body(request)
        if body is None:
            return _refused(name, _error(400, "bad_body", "the body is marked base64 but is not valid base64"),
                            "bad_base64")
        if len(body) > self.settings.max_body_bytes:
            return _refused(name, _error(413, "body_too_large", f"the body is {len(body)} bytes; the limit is "
                                                                f"{self.settings.max_body_bytes}"),
                            "body_too_large")
        delivery = Delivery(source=name, method=request.method, headers=request.headers, query=request.query,
                            body=body, path=request.path)
        reply = source.handshake(delivery, secrets)
        if reply is not None:
            if reply.status >= 400:
                _refused(name, Outcome(reply.status), "handshake_refused")
            return Outcome(reply.status, reply.body, reply.content_type)
        if request.method != "POST":
            return _refused(name, _error(405, "method_not_allowed",
                                         "only the provider's handshake is answered to a GET"),
                            "method_not_allowed")
        try:
            source.verify(delivery, secrets.signing, time.time())
        except SignatureError as exc:
            return _refused(name, _error(401, "invalid_signature",
                                         "the request's signature or timestamp did not verify"), exc.reason)
        reply = source.challenge(delivery)
        if reply is not None:
            return Outcome(reply.status, reply.body, reply.content_type)
        try:
            events = source.events(delivery)
        except PayloadError as exc:
            return _refused(name, _error(400, "invalid_payload", str(exc)), f"invalid_payload: {exc}")
        # One wait for the whole delivery: a batch's events are accepted one after the other.
        settle_by = self.clock() + self.settings.in_progress_wait_seconds
        outcomes = [self._accept_event(source, event, settle_by, budget) for event in events]
        for failed in (o for o in outcomes if o.status >= 500):
            return failed
        for busy in (o for o in outcomes if o.status == 409):
            return busy  # the others are recorded; the sender's retry sees them as duplicates
        ack = source.acknowledgement(delivery)
        if ack is not None:
            return Outcome(ack.status, ack.body, ack.content_type)
        if len(outcomes) == 1:
            return Outcome(source.accepted_status, outcomes[0].body)
        return Outcome(source.accepted_status, {"events": [o.body for o in outcomes]})

    def _accept_event(self, source: WebhookSource, event: SourceEvent, settle_by: float,
                      budget: _Budget) -> Outcome:
        dedupe_key = f"{source.name}:{event.event_id}"
        envelope = Envelope(
            event_id=event.event_id,
            source=source.name,
            type=event.type,
            payload_version=source.payload_version,
            received_at=utcnow(),
            dedupe_key=dedupe_key,
            run_id=run_id_for(dedupe_key),
            payload=event.payload,
        )
        logger.append_keys(correlation_id=envelope.run_id)
        # This delivery's acceptance: every write that follows is conditioned on it, so a delivery that took the
        # event over and this one (should it turn up late) never undo or mark each other's records.
        token = random_tokens.token_urlsafe(16)
        # Room to record the run, queue it and, should queueing fail, undo the record.
        if not budget.room_for(3):
            return _out_of_time("before recording the event")
        if not self._claim(envelope, source.dedupe_ttl_seconds, settle_by, token, budget):
            existing = self.store.dedupe_record(dedupe_key)
            if existing is not None and existing.state is DedupeState.ACCEPTING:
                # The first delivery is still being accepted (or was abandoned, and taking it over
                # failed because another retry did): not yet safe to acknowledge as a duplicate.
                logger.warning("an earlier delivery of the event is still being accepted",
                               extra={"source": source.name})
                return _error(409, "in_progress", "an earlier delivery of this event is still being accepted; "
                                                  "retry shortly")
            duplicate = Outcome(202, {"run_id": envelope.run_id, "event_id": event.event_id, "duplicate": True})
            if not budget.room_for(2):
                # The event is accepted (by an earlier delivery): say so now rather than be cut off recording
                # this delivery, which would answer 502 and bring one more redelivery (and entry) for nothing.
                logger.warning("duplicate delivery answered without its timeline entry: out of time")
                count("EventsDuplicate")
                return duplicate
            self.store.record(
                envelope.run_id,
                TimelineEntry(state=EntryState.DUPLICATE, step="ingest",
                              details={"event_source": source.name, "event_id": event.event_id}),
            )
            count("EventsDuplicate")
            return duplicate
        if not budget.room_for(2):
            # Recorded, not queued, and no time to queue it safely: undo, so the answer (503) is the truth.
            logger.warning("out of time before queueing the event; undoing its acceptance")
            self.store.forget_new_run(envelope, token)
            return _out_of_time("before queueing the event")
        try:
            self.queue.send(envelope, token)
        except Exception:
            # Not queued means not accepted: undo the records so the sender's retry starts afresh.
            logger.exception("could not queue the event; asking the sender to retry")
            count("WebhookUnavailable")
            self.store.forget_new_run(envelope, token)
            return _error(503, "unavailable", "the event could not be queued; retry later")
        # Queued: from here the answer is 2xx whatever happens (the router marks it queued too on pickup).
        if budget.room_for(1):
            try:
                if not self.store.mark_queued(envelope, token):
                    # Another delivery took the acceptance over meanwhile; the router drops this message.
                    logger.warning("the event's acceptance was taken over by a later delivery")
                    return Outcome(202, {"run_id": envelope.run_id, "event_id": event.event_id, "duplicate": True})
            except Exception:
                logger.exception("could not mark the event queued")
        count("EventsReceived")
        logger.info("event accepted", extra={"source": source.name, "event_type": event.type})
        return Outcome(202, {"run_id": envelope.run_id, "event_id": event.event_id, "duplicate": False})

    def _claim(self, envelope: Envelope, dedupe_ttl_seconds: int, settle_by: float, token: str,
               budget: _Budget) -> bool:
        """True if this delivery is the one to queue the event.

        A provider's retry often arrives while its first delivery is still being accepted (Slack retries
        after 3 s). Acknowledging it as a duplicate then could lose the event, should the first fail to queue
        it; refusing it makes the provider count a failure. So the retry waits, until ``settle_by`` (the
        delivery's ``in_progress_wait_seconds``) or while it still has room to accept the event itself, for the
        first delivery to settle: queued (a duplicate) or undone (this delivery takes the event).
        """
        while True:
            if self._record_new(envelope, dedupe_ttl_seconds, token):
                return True
            existing = self.store.dedupe_record(envelope.dedupe_key)
            if existing is None:
                # Undone since this delivery looked (or the dedupe record expired, its run still kept): a last try.
                return self._record_new(envelope, dedupe_ttl_seconds, token)
            if existing.state is not DedupeState.ACCEPTING or self.clock() >= settle_by:
                return False
            self.sleep(IN_PROGRESS_POLL_SECONDS)
            if not budget.room_for(4):  # another look (a read, a write), then queueing and a possible undo
                return False

    def _record_new(self, envelope: Envelope, dedupe_ttl_seconds: int, token: str) -> bool:
        """Record the run; True if this delivery is the one to queue it.

        A delivery whose dedupe key is still ``accepting`` long after it was recorded was abandoned
        (the function died before queueing it); this delivery takes it over, so the event is not lost. The
        takeover passes the acceptance to this delivery's token by a conditional write; it deletes nothing.
        """
        if self.store.create_run_once(envelope, dedupe_ttl_seconds, token):
            return True
        existing = self.store.dedupe_record(envelope.dedupe_key)
        if existing is not None and existing.token == token:
            return True  # this delivery's own write, retried by the SDK after it had landed
        if (existing is None or existing.state is not DedupeState.ACCEPTING
                or time.time() - existing.accepted_at < self.settings.accepting_stale_seconds):
            return False
        logger.warning("taking over an abandoned acceptance", extra={"accepted_at": existing.accepted_at})
        return self.store.take_over(envelope, existing, token)

    @staticmethod
    def _raw_body(request: RawRequest) -> bytes | None:
        if request.body is None:
            return b""
        if request.is_base64:
            try:
                return base64.b64decode(request.body, validate=True)
            except (binascii.Error, ValueError):
                return None
        return request.body.encode("utf-8")

