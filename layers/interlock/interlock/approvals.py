"""Human approval: a one-time emailed link that resumes a waiting Step Functions task.

* The link carries a 256-bit random token. Only its SHA-256 is stored; the Step Functions task token is
  stored server-side and never leaves it.
* Expiry is enforced server-side (``deadline``); the workflow's task also has its own timeout, after
  which the run is escalated.
* ``GET``/``HEAD`` only show (mail scanners prefetch links); a ``POST`` decides, once, through a
  conditional write, and only then resumes the execution.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field

from interlock import aws
from interlock.models import EntryState, RunStatus, TimelineEntry
from interlock.observability import count, logger
from interlock.outgoing import APPROVAL_LINK_HEADER  # the email names its own link in it
from interlock.steps import StepInput
from interlock.timeline import TimelineStore

TOKEN_PATTERN = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")  # secrets.token_urlsafe(32); \Z: no trailing newline
RECORD_RETENTION_SECONDS = 90 * 24 * 3600


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"

    @property
    def status(self) -> ApprovalStatus:
        return ApprovalStatus.APPROVED if self is Decision.APPROVE else ApprovalStatus.REJECTED


class ApprovalRecord(BaseModel):
    token_hash: str
    run_id: str
    task_token: str
    status: ApprovalStatus
    created_at: float
    deadline: float
    context: dict[str, Any]
    decided_at: float | None = None

    def effective_status(self, now: float) -> ApprovalStatus:
        if self.status is ApprovalStatus.PENDING and now >= self.deadline:
            return ApprovalStatus.EXPIRED
        return self.status


class ApprovalRequestInput(StepInput):
    """The wait's task: its token, why a person must decide (the guardrail's reasons) and what the approval page
    shows (``context``: the workflow's own fields, from which its ``approval_view`` builds
    ``{"view": ApprovalView}``, :mod:`interlock.approval_pages`)."""

    task_token: str
    workflow: str = ""
    reasons: list[str] = Field(default_factory=list)
    context: dict[str, Any]


# -- ports ------------------------------------------------------------------------------------------------


class ApprovalStore(Protocol):
    def put(self, record: ApprovalRecord) -> None: ...

    def get(self, token_hash: str) -> ApprovalRecord | None: ...

    def decide(self, token_hash: str, status: ApprovalStatus, now: float) -> bool:
        """Move a pending, unexpired approval to ``status``; False if it was not pending or has expired."""

    def mark(self, token_hash: str, status: ApprovalStatus) -> None: ...


class Callbacks(Protocol):
    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        """Resume the waiting task; False when it no longer waits (timed out, escalated)."""


class Mailer(Protocol):
    def send(self, sender: str, to: str, subject: str, text: str, html: str,
             headers: Mapping[str, str] | None = None) -> str: ...


# -- adapters ---------------------------------------------------------------------------------------------


class DynamoApprovalStore(aws.DynamoTable):
    SK = "#APPROVAL"

    def _key(self, token_hash: str) -> dict[str, Any]:
        return {"pk": {"S": f"APPROVAL#{token_hash}"}, "sk": {"S": self.SK}}

    def put(self, record: ApprovalRecord) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={
                **self._key(record.token_hash),
                "run_id": {"S": record.run_id},
                "task_token": {"S": record.task_token},
                "status": {"S": record.status.value},
                "created_at": {"N": str(record.created_at)},
                "deadline": {"N": str(record.deadline)},
                "context": {"S": json.dumps(record.context, default=str)},
                "expires_at": {"N": str(int(record.deadline) + RECORD_RETENTION_SECONDS)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get(self, token_hash: str) -> ApprovalRecord | None:
        item = self.client.get_item(TableName=self.table_name, Key=self._key(token_hash),
                                    ConsistentRead=True).get("Item")
        if not item:
            return None
        return ApprovalRecord(
            token_hash=token_hash,
            run_id=item["run_id"]["S"],
            task_token=item["task_token"]["S"],
            status=ApprovalStatus(item["status"]["S"]),
            created_at=float(item["created_at"]["N"]),
            deadline=float(item["deadline"]["N"]),
            context=json.loads(item["context"]["S"]),
            decided_at=float(item["decided_at"]["N"]) if "decided_at" in item else None,
        )

    def decide(self, token_hash: str, status: ApprovalStatus, now: float) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(token_hash),
                UpdateExpression="SET #s = :new, decided_at = :now",
                ConditionExpression="#s = :pending AND deadline > :now",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":new": {"S": status.value},
                    ":pending": {"S": ApprovalStatus.PENDING.value},
                    ":now": {"N": str(now)},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def mark(self, token_hash: str, status: ApprovalStatus) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=self._key(token_hash),
            UpdateExpression="SET #s = :new",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":new": {"S": status.value}},
        )


class StepFunctionsCallbacks:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        client = self._client or aws.client("stepfunctions")
        try:
            client.send_task_success(taskToken=task_token, output=json.dumps(output))
        except (client.exceptions.TaskTimedOut, client.exceptions.TaskDoesNotExist,
                client.exceptions.InvalidToken):
            return False
        return True


class SesMailer:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    def send(self, sender: str, to: str, subject: str, text: str, html: str,
             headers: Mapping[str, str] | None = None) -> str:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = to
        message["Subject"] = subject
        for name, value in (headers or {}).items():
            message[name] = value
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        client = self._client or aws.client("ses")
        answer = client.send_raw_email(Source=sender, Destinations=[to], RawMessage={"Data": message.as_bytes()})
        return str(answer["MessageId"])


# -- the use cases ----------------------------------------------------------------------------------------


class Outcome(StrEnum):
    DECIDED = "decided"
    ALREADY_DECIDED = "already_decided"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DecisionResult:
    outcome: Outcome
    record: ApprovalRecord | None = None
    status: ApprovalStatus | None = None


@dataclass(frozen=True)
class RequestSettings:
    public_base_url: str
    approver_email: str
    sender_email: str
    ttl_seconds: int


class ApprovalService:
    def __init__(self, store: ApprovalStore, timeline: TimelineStore, callbacks: Callbacks) -> None:
        self.store = store
        self.timeline = timeline
        self.callbacks = callbacks

    def request(self, data: ApprovalRequestInput, settings: RequestSettings, mailer: Mailer,
                now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        token = new_token()
        record = ApprovalRecord(
            token_hash=token_hash(token),
            run_id=data.run_id,
            task_token=data.task_token,
            status=ApprovalStatus.PENDING,
            created_at=now,
            deadline=now + settings.ttl_seconds,
            context={**data.context, "workflow": data.workflow},
        )
        self.store.put(record)
        from interlock import approval_pages

        link = f"{settings.public_base_url.rstrip('/')}/approvals/{token}"
        subject, text, html = approval_pages.email(record, link)
        message_id = mailer.send(settings.sender_email, settings.approver_email, subject, text, html,
                                 {APPROVAL_LINK_HEADER: link})
        expires = datetime.fromtimestamp(record.deadline, UTC).isoformat()
        self.timeline.record(
            data.run_id,
            TimelineEntry(
                state=EntryState.PENDING_APPROVAL,
                step="approval",
                attempt=data.attempt,
                details={"reasons": data.reasons, "approver": settings.approver_email,
                         "expires_at": expires, "email_message_id": message_id},
            ),
        )
        count("ApprovalsRequested")
        logger.info("approval requested", extra={"expires_at": expires})
        return {"requested": True, "expires_at": expires}

    def find(self, token: str) -> ApprovalRecord | None:
        if not TOKEN_PATTERN.match(token):
            return None
        record = self.store.get(token_hash(token))
        return None if record is None else self._with_view(record)

    def _with_view(self, record: ApprovalRecord) -> ApprovalRecord:
        """A record stored before approvals kept what their approver is shown (its context the workflow's own
        fields, no ``view``) is shown through its workflow's view all the same: its run names the workflow. One
        that cannot be keeps the bare page (the run, the link's expiry); its decision works either way."""
        if "view" in record.context or not record.context:
            return record
        from interlock.kit import registry
        from interlock.kit.outcomes import view_context

        try:
            run = self.timeline.get(record.run_id)
            workflow = registry.workflow(run.workflow) if run is not None and run.workflow else None
            shown = view_context(workflow, record.context) if workflow is not None else None
        except Exception as exc:  # a record the workflow's view cannot read: the bare page, never a 5xx
            logger.warning("an approval stored without its view could not be shown through its workflow's",
                           extra={"error": type(exc).__name__})
            return record
        return record if shown is None else record.model_copy(update={"context": shown})

    def decide(self, token: str, decision: Decision, now: float | None = None) -> DecisionResult:
        now = time.time() if now is None else now
        record = self.find(token)
        if record is None:
            return DecisionResult(Outcome.UNKNOWN)
        logger.append_keys(correlation_id=record.run_id)
        if not self.store.decide(record.token_hash, decision.status, now):
            current = self.store.get(record.token_hash) or record
            status = current.effective_status(now)
            if status is ApprovalStatus.EXPIRED:
                return DecisionResult(Outcome.EXPIRED, current, status)
            return DecisionResult(Outcome.ALREADY_DECIDED, current, status)
        decided_at = datetime.fromtimestamp(now, UTC).isoformat()
        output = {"decision": decision.status.value, "decided_at": decided_at, "via": "email_link"}
        try:
            # On the timeline before the execution resumes, so the decision precedes what follows from it. Either
            # way the run goes on: what a rejection means is the workflow's (one ends the run rejected, another goes
            # on without what was asked for), and the workflow records its outcome.
            self.timeline.record(
                record.run_id,
                TimelineEntry(
                    state=EntryState.APPROVED if decision is Decision.APPROVE else EntryState.REJECTED,
                    step="approval",
                    details=output,
                ),
                status=RunStatus.PROCESSING,
            )
            resumed = self.callbacks.resume(record.task_token, output)
        except Exception:
            # The decision did not land (Step Functions throttled or failing, or the timeline write failed) and
            # the workflow still waits: re-open the link so that the approver's retry delivers it.
            self.store.mark(record.token_hash, ApprovalStatus.PENDING)
            with contextlib.suppress(Exception):
                self.timeline.record(
                    record.run_id,
                    TimelineEntry(state=EntryState.PENDING_APPROVAL, step="approval",
                                  details={"reason": "decision_not_delivered", "decision": decision.status.value}),
                )
            logger.exception("could not deliver the decision; the approval link stays open")
            raise
        if not resumed:
            # The workflow stopped waiting (its own timeout escalated the run): the link is void.
            self.store.mark(record.token_hash, ApprovalStatus.EXPIRED)
            self.timeline.record(
                record.run_id,
                TimelineEntry(state=EntryState.ESCALATED, step="approval",
                              details={"reason": "decision_after_workflow_stopped_waiting"}),
            )
            logger.info("approval arrived after the workflow stopped waiting")
            return DecisionResult(Outcome.EXPIRED, record, ApprovalStatus.EXPIRED)
        count("ApprovalsDecided")
        logger.info("approval decided", extra={"decision": decision.status.value})
        return DecisionResult(Outcome.DECIDED, record, decision.status)
