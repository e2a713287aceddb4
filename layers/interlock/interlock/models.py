"""The models at Interlock's boundaries: the event envelope, the run and its timeline."""

from __future__ import annotations

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


class RunStatus(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PENDING_APPROVAL = "pending_approval"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    ESCALATED = "escalated"


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.REJECTED, RunStatus.FAILED, RunStatus.ESCALATED})


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


# The run status an entry moves the run to; entries absent here leave the status as it is.
STATUS_AFTER: dict[EntryState, RunStatus] = {
    EntryState.RECEIVED: RunStatus.RECEIVED,
    EntryState.PROCESSING: RunStatus.PROCESSING,
    EntryState.PENDING_APPROVAL: RunStatus.PENDING_APPROVAL,
    EntryState.APPROVED: RunStatus.PROCESSING,
    EntryState.REJECTED: RunStatus.REJECTED,
    EntryState.FAILED: RunStatus.FAILED,
    EntryState.ESCALATED: RunStatus.ESCALATED,
    EntryState.COMPLETED: RunStatus.COMPLETED,
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


class RunView(BaseModel):
    """What ``GET /runs/{run_id}`` returns."""

    run_id: str
    workflow: str | None
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    timeline: list[TimelineEntry]
