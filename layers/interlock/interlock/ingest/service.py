"""The ingest use case, independent of API Gateway: raw request in, outcome out."""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from interlock.ingest.ports import EventQueue, WebhookSecrets
from interlock.models import EntryState, Envelope, TimelineEntry, run_id_for, utcnow
from interlock.observability import count, logger
from interlock.settings import IngestSettings
from interlock.timeline import DedupeState, TimelineStore
from interlock.webhooks import standard

FORM_PAYLOAD_VERSION = "standard-webhooks.v1"


@dataclass(frozen=True)
class RawRequest:
    source: str
    headers: dict[str, str]  # lower-case names
    body: str | None
    is_base64: bool


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


class FormPayload(BaseModel):
    """A Standard Webhooks payload: ``type`` names the event, ``data`` carries it."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1, max_length=200)
    timestamp: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


def _error(status: int, code: str, message: str) -> Outcome:
    return Outcome(status, {"error": code, "message": message})


class IngestService:
    def __init__(
        self,
        settings: IngestSettings,
        secrets: WebhookSecrets,
        store: TimelineStore,
        queue: EventQueue,
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        self.store = store
        self.queue = queue

    def accept(self, request: RawRequest) -> Outcome:
        source = request.source
        if not self.settings.source_enabled(source):
            return _error(404, "unknown_source", f"no webhook source named {source!r} is enabled")
        body = self._raw_body(request)
        if body is None:
            return _error(400, "bad_body", "the body is marked base64 but is not valid base64")
        if len(body) > self.settings.max_body_bytes:
            return _error(413, "body_too_large",
                          f"the body is {len(body)} bytes; the limit is {self.settings.max_body_bytes}")
        try:
            secrets = self.secrets.get(source)
        except Exception:
            # The secret store failing is our outage: a 5xx makes the sender retry, a 404 would not.
            logger.exception("could not read the webhook secrets", extra={"source": source})
            return _error(503, "unavailable", "the request could not be verified right now; retry later")
        if not secrets:
            logger.warning("webhook source has no secret configured", extra={"source": source})
            return _error(404, "unknown_source", f"no webhook source named {source!r} is enabled")
        try:
            msg_id = standard.verify(secrets, request.headers, body, time.time(),
                                     self.settings.timestamp_tolerance_seconds)
        except standard.SignatureError as exc:
            logger.info("webhook refused", extra={"source": source, "reason": exc.reason})
            count("WebhookRejected")
            return _error(401, "invalid_signature", "the request's signature or timestamp did not verify")
        try:
            payload = FormPayload.model_validate(json.loads(body))
        except (ValueError, UnicodeDecodeError) as exc:
            message = _validation_message(exc)
            logger.info("webhook body refused", extra={"source": source, "reason": message})
            return _error(400, "invalid_payload", message)

        dedupe_key = f"{source}:{msg_id}"
        envelope = Envelope(
            event_id=msg_id,
            source=source,
            type=payload.type,
            payload_version=FORM_PAYLOAD_VERSION,
            received_at=utcnow(),
            dedupe_key=dedupe_key,
            run_id=run_id_for(dedupe_key),
            payload=payload.model_dump(mode="json"),
        )
        logger.append_keys(correlation_id=envelope.run_id)
        if not self._record_new(envelope):
            existing = self.store.dedupe_record(dedupe_key)
            if existing is not None and existing.state is DedupeState.ACCEPTING:
                # The first delivery is still being accepted (or was abandoned, and taking it over
                # failed because another retry did): not yet safe to acknowledge as a duplicate.
                return _error(409, "in_progress", "an earlier delivery of this event is still being accepted; "
                                                  "retry shortly")
            self.store.record(
                envelope.run_id,
                TimelineEntry(state=EntryState.DUPLICATE, step="ingest",
                              details={"event_source": source, "event_id": msg_id}),
            )
            count("EventsDuplicate")
            return Outcome(202, {"run_id": envelope.run_id, "event_id": msg_id, "duplicate": True})
        try:
            self.queue.send(envelope)
        except Exception:
            # Not queued means not accepted: undo the records so the sender's retry starts afresh.
            logger.exception("could not queue the event; asking the sender to retry")
            self.store.forget_new_run(envelope)
            return _error(503, "unavailable", "the event could not be queued; retry later")
        try:
            self.store.mark_queued(envelope)
        except Exception:
            # It is queued, which is what counts; the router marks it queued too when it picks it up.
            logger.exception("could not mark the event queued")
        count("EventsReceived")
        logger.info("event accepted", extra={"source": source, "event_type": payload.type})
        return Outcome(202, {"run_id": envelope.run_id, "event_id": msg_id, "duplicate": False})

    def _record_new(self, envelope: Envelope) -> bool:
        """Record the run; True if this delivery is the one to queue it.

        A delivery whose dedupe key is still ``accepting`` long after it was recorded was abandoned
        (the function died before queueing it); this delivery takes it over, so the event is not lost.
        """
        if self.store.create_run_once(envelope, self.settings.dedupe_ttl_seconds):
            return True
        existing = self.store.dedupe_record(envelope.dedupe_key)
        if (existing is None or existing.state is not DedupeState.ACCEPTING
                or time.time() - existing.accepted_at < self.settings.accepting_stale_seconds):
            return False
        logger.warning("taking over an abandoned acceptance", extra={"accepted_at": existing.accepted_at})
        return self.store.take_over(envelope, existing) and self.store.create_run_once(
            envelope, self.settings.dedupe_ttl_seconds)

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


def _validation_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
        )
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not UTF-8"
    return f"the body is not valid JSON: {exc}"
