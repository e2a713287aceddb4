"""The ingest use case, independent of API Gateway: raw request in, outcome out."""

from __future__ import annotations

import base64
import binascii
import time
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
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        self.store = store
        self.queue = queue
        self.sources = sources or SourceRegistry(settings)

    def accept(self, request: RawRequest) -> Outcome:
        name = request.source
        source = self.sources.get(name)
        if source is None:
            return _refused(name, _unknown(name), "unknown_source")
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
        settle_by = time.monotonic() + self.settings.in_progress_wait_seconds
        outcomes = [self._accept_event(source, event, settle_by) for event in events]
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

    def _accept_event(self, source: WebhookSource, event: SourceEvent, settle_by: float) -> Outcome:
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
        if not self._claim(envelope, source.dedupe_ttl_seconds, settle_by):
            existing = self.store.dedupe_record(dedupe_key)
            if existing is not None and existing.state is DedupeState.ACCEPTING:
                # The first delivery is still being accepted (or was abandoned, and taking it over
                # failed because another retry did): not yet safe to acknowledge as a duplicate.
                logger.warning("an earlier delivery of the event is still being accepted",
                               extra={"source": source.name})
                return _error(409, "in_progress", "an earlier delivery of this event is still being accepted; "
                                                  "retry shortly")
            self.store.record(
                envelope.run_id,
                TimelineEntry(state=EntryState.DUPLICATE, step="ingest",
                              details={"event_source": source.name, "event_id": event.event_id}),
            )
            count("EventsDuplicate")
            return Outcome(202, {"run_id": envelope.run_id, "event_id": event.event_id, "duplicate": True})
        try:
            self.queue.send(envelope)
        except Exception:
            # Not queued means not accepted: undo the records so the sender's retry starts afresh.
            logger.exception("could not queue the event; asking the sender to retry")
            count("WebhookUnavailable")
            self.store.forget_new_run(envelope)
            return _error(503, "unavailable", "the event could not be queued; retry later")
        try:
            self.store.mark_queued(envelope)
        except Exception:
            # It is queued, which is what counts; the router marks it queued too when it picks it up.
            logger.exception("could not mark the event queued")
        count("EventsReceived")
        logger.info("event accepted", extra={"source": source.name, "event_type": event.type})
        return Outcome(202, {"run_id": envelope.run_id, "event_id": event.event_id, "duplicate": False})

    def _claim(self, envelope: Envelope, dedupe_ttl_seconds: int, settle_by: float) -> bool:
        """True if this delivery is the one to queue the event.

        A provider's retry often arrives while its first delivery is still being accepted (Slack retries
        after 3 s). Acknowledging it as a duplicate then could lose the event, should the first fail to queue
        it; refusing it makes the provider count a failure. So the retry waits, until ``settle_by`` (the
        delivery's ``in_progress_wait_seconds``), for the first delivery to settle: queued (a duplicate) or
        undone (this delivery takes the event).
        """
        while True:
            if self._record_new(envelope, dedupe_ttl_seconds):
                return True
            existing = self.store.dedupe_record(envelope.dedupe_key)
            if existing is None:
                # Undone since this delivery looked (or the dedupe record expired, its run still kept): a last try.
                return self._record_new(envelope, dedupe_ttl_seconds)
            if existing.state is not DedupeState.ACCEPTING or time.monotonic() >= settle_by:
                return False
            time.sleep(IN_PROGRESS_POLL_SECONDS)

    def _record_new(self, envelope: Envelope, dedupe_ttl_seconds: int) -> bool:
        """Record the run; True if this delivery is the one to queue it.

        A delivery whose dedupe key is still ``accepting`` long after it was recorded was abandoned
        (the function died before queueing it); this delivery takes it over, so the event is not lost.
        """
        if self.store.create_run_once(envelope, dedupe_ttl_seconds):
            return True
        existing = self.store.dedupe_record(envelope.dedupe_key)
        if (existing is None or existing.state is not DedupeState.ACCEPTING
                or time.time() - existing.accepted_at < self.settings.accepting_stale_seconds):
            return False
        logger.warning("taking over an abandoned acceptance", extra={"accepted_at": existing.accepted_at})
        return self.store.take_over(envelope, existing) and self.store.create_run_once(envelope, dedupe_ttl_seconds)

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

