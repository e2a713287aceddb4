"""The models at Interlock's boundaries: the event envelope, the run and its timeline."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Run ids are UUIDv5 of the dedupe key in this namespace, so a run id is known the moment an event is
# accepted and the same delivery always maps to the same run.
RUN_ID_NAMESPACE = uuid.UUID("6f1c2b1e-3d7a-5b8e-9c4f-1a2b3c4d5e6f")

ENVELOPE_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def run_id_for(dedupe_key: str) -> str:
    return str(uuid.uuid5(RUN_ID_NAMESPACE, dedupe_key))


_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_run_id(value: str) -> bool:
    """Whether ``value`` has the shape of a run id (a UUID as ``run_id_for`` writes it): anything else is
    refused before the table is read (a key over DynamoDB's 2,048 bytes would fail the read)."""
    return _RUN_ID.fullmatch(value) is not None


def replay_dedupe_key(run_id: str) -> str:
    """The dedupe key of the run that replays ``run_id``: a run is replayed at most once, so the replay's run id
    (``run_id_for`` of this key) is known from the original alone, and two requests to replay it are one."""
    return f"replay:{run_id}"


class RunStatus(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PENDING_APPROVAL = "pending_approval"
    # Waiting for an external event (a payment), by its correlation key (interlock.kit.correlation)
    WAITING = "waiting"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    ESCALATED = "escalated"
    # An informational event (a WhatsApp delivery status, ...): accepted and kept, nothing to do, no alarm.
    IGNORED = "ignored"


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.REJECTED, RunStatus.FAILED, RunStatus.ESCALATED,
                               RunStatus.IGNORED})
# The runs an operator may replay (``interlock.replay``): those that did nothing with their event.
REPLAYABLE_STATUSES = frozenset({RunStatus.FAILED, RunStatus.IGNORED})


class EntryState(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETRIED = "retried"
    FAILED = "failed"
    ESCALATED = "escalated"
    COMPLETED = "completed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # the router found the event informational (details: its reason)
    REPLAYED = "replayed"  # on a replayed run: an operator replayed it as the run ``details.replayed_as``
    WAITING = "waiting"  # the run waits for an external event (details: its correlation key, the events)
    JOINED = "joined"  # a later event of the same key joined this open run instead of starting another


# The run status an entry moves the run to; entries absent here leave the status as it is.
STATUS_AFTER: dict[EntryState, RunStatus] = {
    EntryState.RECEIVED: RunStatus.RECEIVED,
    EntryState.PROCESSING: RunStatus.PROCESSING,
    EntryState.PENDING_APPROVAL: RunStatus.PENDING_APPROVAL,
    EntryState.WAITING: RunStatus.WAITING,
    EntryState.APPROVED: RunStatus.PROCESSING,
    EntryState.REJECTED: RunStatus.REJECTED,
    EntryState.FAILED: RunStatus.FAILED,
    EntryState.ESCALATED: RunStatus.ESCALATED,
    EntryState.COMPLETED: RunStatus.COMPLETED,
    EntryState.IGNORED: RunStatus.IGNORED,
}


class Envelope(BaseModel):
    """Every accepted event, whatever its source, travels as one of these."""

    model_config = ConfigDict(frozen=True)

    envelope_version: int = ENVELOPE_VERSION
    event_id: str
    source: str
    type: str
    payload_version: str
    received_at: datetime
    dedupe_key: str
    run_id: str
    payload: dict[str, Any]


class TimelineEntry(BaseModel):
    state: EntryState
    step: str
    attempt: int = 0
    at: datetime = Field(default_factory=utcnow)
    details: dict[str, Any] = Field(default_factory=dict)


class Run(BaseModel):
    run_id: str
    workflow: str | None = None
    status: RunStatus
    source: str | None = None
    event_id: str | None = None
    created_at: datetime
    updated_at: datetime
    replay_of: str | None = None
    replayed_as: str | None = None


class RunView(BaseModel):
    """What ``GET /runs/{run_id}`` returns (never the event's payload: ``GET /runs/{run_id}/event`` does)."""

    run_id: str
    workflow: str | None
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    # The run this one replays, and the run that replayed this one (``interlock.replay``).
    replay_of: str | None = None
    replayed_as: str | None = None
    timeline: list[TimelineEntry]
