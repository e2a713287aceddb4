"""Runs a workflow's own steps start: its follow-ups (docs/finance.md, Follow-up runs).

A step that finds what needs doing (the past-due invoices of a daily check, say) starts one run for each thing it
found, with ``ctx.start_runs(follow_up, [(key, data), ...])``. Each is a :class:`FollowUpMessage` sent to the
ingest queue, as a schedule's firing is, and the router makes its envelope and creates its run as it does for
every trigger that is not a webhook (``Router.accept_trigger``): the same dedupe, the same ``received`` entry and
kept envelope (replay), the same routing table and timeline.

* **One run per key.** The envelope's dedupe key is ``follow_up:<workflow>.<follow_up>:<key>`` and its run id is
  derived from it: a step that runs again (a retry, a restarted execution, the same check fired twice) sends the
  same keys and starts nothing new; the run ids it gets back are the runs of the first sending. A key names what
  the run is for and how often: ``invoice:LE-000042:2026-12-02`` is one run per invoice per day.
* **Only the workflow's own follow-ups.** A step names the follow-ups it may start (``Step.starts``); the router
  refuses a message naming one its workflow does not declare (a poison message, never a run).
* **Linked.** Each run's payload names the run that started it (``started_by``) beside the step's ``data``.

The message and the envelope are pure (the router imports them); :class:`QueueStarter` sends, with boto3 loaded
only when a step starts runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from interlock.errors import StepError, TransientError
from interlock.models import Envelope, run_id_for

if TYPE_CHECKING:
    from interlock.kit import Workflow

FOLLOW_UP_MESSAGE_KIND = "interlock.follow_up"
FOLLOW_UP_PAYLOAD_VERSION = "follow_up.v1"
# What one follow-up may carry for its run (its envelope is kept with the run, and travels in one queue message).
MAX_DATA_BYTES = 16 * 1024
# How many runs one call starts: a step with more pages through them, a call at a time.
MAX_PER_CALL = 500
_BATCH = 10  # SQS SendMessageBatch's limit

_NAME = r"[a-z][a-z0-9_]{0,39}"
# A key is part of the dedupe key and the event id: printable, no spaces, at most 200 characters.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@/+=-]{0,199}$")
_RUN_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class InvalidFollowUp(StepError):
    """What a step asked to start cannot be a run: a bad key, data too large or not JSON, too many at once."""

    reason = "invalid_follow_up"


class FollowUpNotSent(TransientError):
    """The ingest queue did not take every follow-up: the step is retried, and those it did take are duplicates
    then (their dedupe keys), so nothing starts twice."""

    reason = "follow_up_not_sent"


def _data_size(data: dict[str, Any]) -> int:
    # allow_nan=False: NaN and Infinity are no JSON (the message would carry them as null), so refused
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())


class FollowUpMessage(BaseModel):
    """What a step sends to the ingest queue for one run it starts."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True)

    kind: Literal["interlock.follow_up"]
    workflow: str = Field(pattern=f"^{_NAME}$")
    follow_up: str = Field(pattern=f"^{_NAME}$")
    key: str = Field(pattern=KEY_PATTERN.pattern)
    started_by: str = Field(pattern=_RUN_ID)
    data: dict[str, Any]

    @field_validator("data")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _data_size(value) > MAX_DATA_BYTES:
            raise ValueError(f"data is more than {MAX_DATA_BYTES} bytes of JSON")
        return value

    @property
    def event_type(self) -> str:
        return f"{self.workflow}.{self.follow_up}"

    @property
    def dedupe_key(self) -> str:
        return follow_up_dedupe_key(self.workflow, self.follow_up, self.key)


def follow_up_dedupe_key(workflow: str, follow_up: str, key: str) -> str:
    return f"follow_up:{workflow}.{follow_up}:{key}"


def follow_up_run_id(workflow: str, follow_up: str, key: str) -> str:
    """The id of the run the follow-up ``key`` starts (or started): known before it exists."""
    return run_id_for(follow_up_dedupe_key(workflow, follow_up, key))


def follow_up_envelope(message: FollowUpMessage, workflow: Workflow, received_at: datetime) -> Envelope:
    """The envelope of a follow-up's run (``trigger_envelope`` has checked that ``workflow`` declares it)."""
    from interlock.kit.registry import FOLLOW_UP_SOURCE

    key = message.dedupe_key
    return Envelope(
        event_id=f"{message.event_type}:{message.key}",
        source=FOLLOW_UP_SOURCE,
        type=workflow.follow_up_type(message.follow_up),
        payload_version=FOLLOW_UP_PAYLOAD_VERSION,
        received_at=received_at,
        dedupe_key=key,
        run_id=run_id_for(key),
        payload={"workflow": message.workflow, "follow_up": message.follow_up, "key": message.key,
                 "started_by": message.started_by, "data": message.data},
    )


def messages(workflow: str, follow_up: str, started_by: str,
             items: Sequence[tuple[str, dict[str, Any]]], step: str = "") -> list[FollowUpMessage]:
    """The messages for ``items`` (key, data), each checked as the router will check it: a bad one refuses them
    all with :class:`InvalidFollowUp` before anything is sent (nothing half-started)."""
    if len(items) > MAX_PER_CALL:
        raise InvalidFollowUp(f"{len(items)} follow-ups in one call; at most {MAX_PER_CALL}", step=step)
    made: list[FollowUpMessage] = []
    seen: set[str] = set()
    for index, (key, data) in enumerate(items):
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
            raise InvalidFollowUp("a follow-up's key is 1 to 200 letters, digits and : . _ @ / + = -, starting "
                                  "with a letter or digit", step=step, index=index)
        if not isinstance(data, dict):
            raise InvalidFollowUp("a follow-up's data is a JSON object", step=step, index=index)
        try:
            size = _data_size(data)
        except (TypeError, ValueError):
            raise InvalidFollowUp("a follow-up's data is not JSON", step=step, index=index) from None
        if size > MAX_DATA_BYTES:
            raise InvalidFollowUp(f"a follow-up's data is more than {MAX_DATA_BYTES} bytes of JSON", step=step,
                                  index=index)
        if key in seen:
            continue  # the same key twice in one call is one run
        seen.add(key)
        made.append(FollowUpMessage(kind="interlock.follow_up", workflow=workflow, follow_up=follow_up, key=key,
                                    started_by=started_by, data=json.loads(json.dumps(data))))
    return made


class QueueStarter:
    """Sends follow-up messages to the ingest queue (``INTERLOCK_INGEST_QUEUE_URL``), ten to a request."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from interlock.aws import client

            self._client = client("sqs")
        return self._client

    def send(self, batch: Sequence[FollowUpMessage], step: str = "") -> None:
        failed = 0
        for start in range(0, len(batch), _BATCH):
            chunk = batch[start:start + _BATCH]
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(i), "MessageBody": m.model_dump_json()} for i, m in enumerate(chunk)])
            except (BotoCoreError, ClientError) as exc:
                raise FollowUpNotSent(f"the ingest queue could not be reached ({type(exc).__name__})",
                                      step=step) from None
            failed += len(answer.get("Failed") or [])
        if failed:
            raise FollowUpNotSent(f"the ingest queue refused {failed} of {len(batch)} follow-ups", step=step,
                                  failed=failed)
