"""Human approval: one-time emailed links that resume a waiting Step Functions task once enough people decided.

* A request asks ``approvers`` (N, 1..5) **different** people of the approver pool (the ``approver_email`` setting,
  M addresses) to approve. Each address of the pool gets its own link; the wait ends when N different approvers
  approved, or at the first rejection, and the task is resumed once, with every decision. Approvals are counted by
  approver, not by link: a second click, or a second link to the same person, never counts twice.
* A link carries a 256-bit random token. Only its SHA-256 is stored; the Step Functions task token is
  stored server-side (in the request's quorum record) and never leaves it.
* Expiry is enforced server-side (``deadline``); the workflow's task also has its own timeout, after
  which the run is escalated.
* ``GET``/``HEAD`` only show (mail scanners prefetch links); a ``POST`` decides, once, through a
  conditional write, and only then resumes the execution.
* Concurrent decisions: the quorum record is one DynamoDB item with a version; every decision is computed from
  the item as read (:meth:`Quorum.take`, pure) and written only if the version is still the one read. Of two
  approvers clicking at once, or the last approval racing a rejection, exactly one write lands first; the other
  reads again and decides against what is now there (counted, or closed). So exactly one decision moves the
  quorum out of ``pending``, and only that one resumes the task.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field, TypeAdapter

from interlock import aws
from interlock.errors import StepError
from interlock.models import TERMINAL_STATUSES, EntryState, RunStatus, TimelineEntry
from interlock.observability import count, logger
from interlock.outgoing import APPROVAL_LINK_HEADER  # the email names its own link in it
from interlock.settings import MAX_APPROVERS, approver_id, approver_pool

# Kept in interlock.settings, which `interlock run` checks before the local cloud sets the log level (importing
# this module then would build the handlers' logger at the wrong level); named here for the approvals' readers.
from interlock.settings import approvers_asked as approvers_asked
from interlock.settings import quorum_problems as quorum_problems
from interlock.steps import StepInput
from interlock.timeline import TimelineStore
from interlock.tokens import TOKEN_PATTERN as TOKEN_PATTERN  # the links' tokens, named here for their readers
from interlock.tokens import new_token as new_token
from interlock.tokens import token_hash as token_hash

RECORD_RETENTION_SECONDS = 90 * 24 * 3600
# How many times a decision reads the quorum again after another decision's write landed first. Each failed try
# means another decision was written, and a quorum takes at most one decision per approver of its pool.
MAX_DECISION_TRIES = 25


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    # A link whose approver did not decide, of a request that others' decisions ended (the quorum was reached, or
    # someone rejected it): the link no longer works.
    CLOSED = "closed"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"

    @property
    def status(self) -> ApprovalStatus:
        return ApprovalStatus.APPROVED if self is Decision.APPROVE else ApprovalStatus.REJECTED


class NotEnoughApprovers(StepError):
    """The request asks more different approvers than the approver pool (``approver_email``) names: it could never
    be approved. Not retryable; the wait's Catch records the run failed with this reason."""

    reason = "not_enough_approvers"


class DecisionContended(RuntimeError):
    """Other decisions kept landing first for :data:`MAX_DECISION_TRIES` reads: nothing of this one was written
    (the approver is told to press the button again)."""


class ApproverDecision(BaseModel):
    """One approver's decision: ``approver`` is their address as the pool names it (personal data: kept in the
    table and on the run's timeline, never logged)."""

    approver: str
    decision: ApprovalStatus
    decided_at: float

    def output(self) -> dict[str, Any]:
        return {"approver": self.approver, "decision": self.decision.value, "decided_at": _iso(self.decided_at)}


_DECISIONS = TypeAdapter(list[ApproverDecision])


class Verdict(StrEnum):
    """What one decision does to a quorum (:meth:`Quorum.take`)."""

    COUNTED = "counted"  # an approval counted; the request still waits for more
    REACHED = "reached"  # the approval that reached the quorum: the task resumes approved
    REJECTED = "rejected"  # the first rejection: the task resumes rejected
    ALREADY = "already"  # this approver had decided already: nothing changes
    CLOSED = "closed"  # the request was ended by others' decisions: nothing changes
    EXPIRED = "expired"  # past the deadline, or the wait is over: nothing changes

    @property
    def ends_the_wait(self) -> bool:
        return self in (Verdict.REACHED, Verdict.REJECTED)


class Quorum(BaseModel):
    """The state of one approval request: who must decide how many times, and every decision so far.

    ``key`` is its item's partition key: ``QUORUM#<sha256 of the task token>`` (one per wait, however often the
    request step runs for it), or, for a single link stored before requests had quorums, that link's own item.
    ``version`` grows by one with every write; a write lands only on the version it read."""

    key: str
    run_id: str
    task_token: str
    status: ApprovalStatus
    required: int = 1
    created_at: float
    deadline: float
    context: dict[str, Any]
    decisions: list[ApproverDecision] = Field(default_factory=list)
    decided_at: float | None = None
    version: int = 0
    # approver id -> when their links were sent again (interlock.approval_resend): a link of theirs issued before
    # that no longer works.
    reissued: dict[str, float] = Field(default_factory=dict)

    @property
    def approvals(self) -> int:
        """How many different approvers approved."""
        return len({approver_id(d.approver) for d in self.decisions if d.decision is ApprovalStatus.APPROVED})

    def decision_of(self, approver: str) -> ApproverDecision | None:
        who = approver_id(approver)
        return next((d for d in self.decisions if approver_id(d.approver) == who), None)

    def status_for(self, approver: str) -> ApprovalStatus:
        """The status a link of ``approver`` shows (not taking the deadline into account)."""
        if self.status is ApprovalStatus.EXPIRED:
            return ApprovalStatus.EXPIRED
        mine = self.decision_of(approver)
        if mine is not None:
            return mine.decision
        if self.status is ApprovalStatus.PENDING or not self.decisions:
            return self.status  # pending; or a single link's record decided before decisions were kept
        return ApprovalStatus.CLOSED

    def take(self, approver: str, decision: Decision, now: float) -> tuple[Verdict, Quorum]:
        """What ``approver`` deciding ``decision`` at ``now`` does, and the quorum after it (itself when it changes
        nothing). Pure: the store writes the result only on the version it was computed from."""
        if self.status is ApprovalStatus.EXPIRED or (self.status is ApprovalStatus.PENDING and now >= self.deadline):
            return Verdict.EXPIRED, self
        if self.decision_of(approver) is not None:
            return Verdict.ALREADY, self
        if self.status is not ApprovalStatus.PENDING:
            return (Verdict.CLOSED if self.decisions else Verdict.ALREADY), self
        decisions = [*self.decisions, ApproverDecision(approver=approver, decision=decision.status, decided_at=now)]
        after = self.model_copy(update={"decisions": decisions, "version": self.version + 1})
        if decision is Decision.REJECT:
            return Verdict.REJECTED, after.model_copy(update={"status": ApprovalStatus.REJECTED, "decided_at": now})
        if after.approvals >= self.required:
            return Verdict.REACHED, after.model_copy(update={"status": ApprovalStatus.APPROVED, "decided_at": now})
        return Verdict.COUNTED, after

    def without(self, decision: ApproverDecision, version: int) -> Quorum:
        """The quorum with ``decision`` taken back (it was not delivered), pending again, written as ``version``."""
        return self.model_copy(update={"decisions": [d for d in self.decisions if d != decision],
                                       "status": ApprovalStatus.PENDING, "decided_at": None, "version": version})

    def output(self, decision: ApproverDecision) -> dict[str, Any]:
        """What the task is resumed with (once, when the wait ends): the outcome and every decision."""
        return {"decision": self.status.value, "decided_at": _iso(decision.decided_at), "via": "email_link",
                "approvals": self.approvals, "required": self.required,
                "decisions": [d.output() for d in self.decisions]}


class ApprovalRecord(BaseModel):
    """What one link sees: its request's run, task token, deadline and view, and its own status (its approver's
    decision, or the request's state when they made none)."""

    token_hash: str
    run_id: str
    task_token: str
    status: ApprovalStatus
    created_at: float
    deadline: float
    context: dict[str, Any]
    decided_at: float | None = None
    approver: str = ""  # whose link (empty: a single link stored before links named their approver)
    quorum_key: str | None = None  # the request's quorum item; None: the link's own item is its quorum
    required: int = 1
    approvals: int = 0

    def effective_status(self, now: float) -> ApprovalStatus:
        if self.status is ApprovalStatus.PENDING and now >= self.deadline:
            return ApprovalStatus.EXPIRED
        return self.status


class ApprovalLink(BaseModel):
    """One approver's link to a request: its token's hash, whose it is and the request's quorum item."""

    token_hash: str
    quorum_key: str
    approver: str
    run_id: str
    deadline: float
    issued_at: float = 0.0  # 0: a link stored before links were sent again (issued with its request)

    def superseded(self, quorum: Quorum) -> bool:
        """A newer link was sent to the same approver since this one (interlock.approval_resend)."""
        again = quorum.reissued.get(approver_id(self.approver)) if self.approver else None
        return again is not None and again > (self.issued_at or quorum.created_at)


class ApprovalRequestInput(StepInput):
    """The wait's task: its token, why a person must decide (the guardrail's reasons), how many different approvers
    of the pool must approve (``approvers``; any rejection ends it) and what the approval page shows (``context``:
    the workflow's own fields, from which its ``approval_view`` builds ``{"view": ApprovalView}``,
    :mod:`interlock.approval_pages`)."""

    task_token: str
    workflow: str = ""
    reasons: list[str] = Field(default_factory=list)
    approvers: int = Field(default=1, ge=1, le=MAX_APPROVERS)
    context: dict[str, Any]


def link_record(link: ApprovalLink, quorum: Quorum) -> ApprovalRecord:
    mine = quorum.decision_of(link.approver)
    return ApprovalRecord(
        token_hash=link.token_hash, run_id=quorum.run_id, task_token=quorum.task_token,
        status=quorum.status_for(link.approver), created_at=quorum.created_at, deadline=quorum.deadline,
        context=quorum.context, decided_at=mine.decided_at if mine else quorum.decided_at, approver=link.approver,
        quorum_key=quorum.key, required=quorum.required, approvals=quorum.approvals)


def send_link(store: ApprovalStore, quorum: Quorum, approver: str, settings: RequestSettings, mailer: Mailer,
              now: float) -> str:
    """A new link of ``approver`` to the request ``quorum``, stored (its token's hash) and emailed with the request's
    template; the email's message id. The token exists only in the email."""
    from interlock import approval_pages

    token = new_token()
    link = ApprovalLink(token_hash=token_hash(token), quorum_key=quorum.key, approver=approver,
                        run_id=quorum.run_id, deadline=quorum.deadline, issued_at=now)
    store.put_link(link)
    url = f"{settings.public_base_url.rstrip('/')}/approvals/{token}"
    subject, text, html = approval_pages.email(link_record(link, quorum), url)
    return mailer.send(settings.sender_email, approver, subject, text, html, {APPROVAL_LINK_HEADER: url})


def quorum_key(task_token: str) -> str:
    return f"QUORUM#{token_hash(task_token)}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


# -- what the workflows ask, checked against the pool before anything runs -----------------------------------


# -- ports ------------------------------------------------------------------------------------------------


class ApprovalStore(Protocol):
    def open(self, quorum: Quorum) -> None:
        """Store a new request's quorum; keep the one stored already for the same wait."""

    def put_link(self, link: ApprovalLink) -> None: ...

    def get(self, token_hash: str) -> ApprovalRecord | None:
        """What the link sees; None for a link never stored, or superseded by a newer one to its approver."""

    def reissue(self, key: str, approver: str, at: float) -> None:
        """From now on, only links issued to ``approver`` at or after ``at`` work for the quorum ``key``."""

    def quorum(self, key: str) -> Quorum | None: ...

    def replace(self, quorum: Quorum, read_version: int) -> bool:
        """Write ``quorum`` (its ``version`` one more than ``read_version``) only if the stored one is still at
        ``read_version``; False if another write landed first."""


class Callbacks(Protocol):
    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        """Resume the waiting task; False when it no longer waits (timed out, escalated)."""


class Mailer(Protocol):
    def send(self, sender: str, to: str, subject: str, text: str, html: str,
             headers: Mapping[str, str] | None = None) -> str: ...


# -- adapters ---------------------------------------------------------------------------------------------


def _n(value: float) -> dict[str, str]:
    return {"N": str(value)}


class DynamoApprovalStore(aws.DynamoTable):
    """Links (``APPROVAL#<token hash>``) and quorums (``QUORUM#<task token hash>``) in the run table."""

    SK = "#APPROVAL"
    QUORUM_SK = "#QUORUM"

    def _key(self, token_hash: str) -> dict[str, Any]:
        return {"pk": {"S": f"APPROVAL#{token_hash}"}, "sk": {"S": self.SK}}

    def _item_key(self, pk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": self.QUORUM_SK if pk.startswith("QUORUM#") else self.SK}}

    def put(self, record: ApprovalRecord) -> None:
        """A single link holding its own request (how approvals were stored before quorums; kept readable and
        decidable)."""
        self.client.put_item(
            TableName=self.table_name,
            Item={
                **self._key(record.token_hash),
                "run_id": {"S": record.run_id},
                "task_token": {"S": record.task_token},
                "status": {"S": record.status.value},
                "created_at": _n(record.created_at),
                "deadline": _n(record.deadline),
                "context": {"S": json.dumps(record.context, default=str)},
                "expires_at": _n(int(record.deadline) + RECORD_RETENTION_SECONDS),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def open(self, quorum: Quorum) -> None:
        # The request step may run again for the same wait: its quorum (and the decisions so far) stands.
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    **self._item_key(quorum.key),
                    "run_id": {"S": quorum.run_id},
                    "task_token": {"S": quorum.task_token},
                    "status": {"S": quorum.status.value},
                    "required": _n(quorum.required),
                    "created_at": _n(quorum.created_at),
                    "deadline": _n(quorum.deadline),
                    "context": {"S": json.dumps(quorum.context, default=str)},
                    "decisions": {"S": "[]"},
                    "version": _n(quorum.version),
                    "expires_at": _n(int(quorum.deadline) + RECORD_RETENTION_SECONDS),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )

    def put_link(self, link: ApprovalLink) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={
                **self._key(link.token_hash),
                "quorum": {"S": link.quorum_key},
                "approver": {"S": link.approver},
                "run_id": {"S": link.run_id},
                "deadline": _n(link.deadline),
                **({"issued_at": _n(link.issued_at)} if link.issued_at else {}),
                "expires_at": _n(int(link.deadline) + RECORD_RETENTION_SECONDS),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def _read(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def get(self, token_hash: str) -> ApprovalRecord | None:
        item = self._read(self._key(token_hash))
        if not item:
            return None
        if "quorum" not in item:  # a single link holding its own request
            own = self._quorum(f"APPROVAL#{token_hash}", item)
            return link_record(ApprovalLink(token_hash=token_hash, quorum_key=own.key, approver="",
                                            run_id=own.run_id, deadline=own.deadline), own) \
                .model_copy(update={"quorum_key": None})
        quorum = self.quorum(item["quorum"]["S"])
        if quorum is None:
            return None
        link = ApprovalLink(token_hash=token_hash, quorum_key=quorum.key, approver=item["approver"]["S"],
                            run_id=quorum.run_id, deadline=quorum.deadline,
                            issued_at=float(item["issued_at"]["N"]) if "issued_at" in item else 0.0)
        return None if link.superseded(quorum) else link_record(link, quorum)

    def reissue(self, key: str, approver: str, at: float) -> None:
        for _ in range(MAX_DECISION_TRIES):
            item = self._read(self._item_key(key))
            if item is None:
                raise LookupError(key)
            before = item.get("reissued")
            after = {**(json.loads(before["S"]) if before else {}), approver_id(approver): at}
            try:
                self.client.update_item(
                    TableName=self.table_name, Key=self._item_key(key), UpdateExpression="SET reissued = :after",
                    ConditionExpression="reissued = :before" if before else "attribute_not_exists(reissued)",
                    ExpressionAttributeValues={":after": {"S": json.dumps(after, sort_keys=True)},
                                               **({":before": before} if before else {})})
                return
            except self.client.exceptions.ConditionalCheckFailedException:
                continue  # another resend wrote meanwhile: merge with what it wrote
        raise RuntimeError("the quorum's resends kept changing under this one")

    def quorum(self, key: str) -> Quorum | None:
        item = self._read(self._item_key(key))
        return None if item is None else self._quorum(key, item)

    @staticmethod
    def _quorum(key: str, item: dict[str, Any]) -> Quorum:
        return Quorum(
            key=key,
            run_id=item["run_id"]["S"],
            task_token=item["task_token"]["S"],
            status=ApprovalStatus(item["status"]["S"]),
            required=int(item["required"]["N"]) if "required" in item else 1,
            created_at=float(item["created_at"]["N"]),
            deadline=float(item["deadline"]["N"]),
            context=json.loads(item["context"]["S"]),
            decisions=_DECISIONS.validate_json(item["decisions"]["S"]) if "decisions" in item else [],
            decided_at=float(item["decided_at"]["N"]) if "decided_at" in item else None,
            version=int(item["version"]["N"]) if "version" in item else 0,
            reissued=json.loads(item["reissued"]["S"]) if "reissued" in item else {},
        )

    def replace(self, quorum: Quorum, read_version: int) -> bool:
        values: dict[str, Any] = {
            ":status": {"S": quorum.status.value},
            ":decisions": {"S": _DECISIONS.dump_json(quorum.decisions).decode()},
            ":version": _n(quorum.version),
        }
        sets = "#s = :status, decisions = :decisions, version = :version"
        if quorum.decided_at is not None:
            sets += ", decided_at = :decided_at"
            values[":decided_at"] = _n(quorum.decided_at)
            update = f"SET {sets}"
        else:
            update = f"SET {sets} REMOVE decided_at"
        if read_version:
            condition = "attribute_exists(pk) AND version = :read"
            values[":read"] = _n(read_version)
        else:  # a single link's item, never written since it was stored
            condition = "attribute_exists(pk) AND attribute_not_exists(version)"
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._item_key(quorum.key), UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


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
    ALREADY_DECIDED = "already_decided"  # this approver decided already, or (status ``closed``) others ended it
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
    approver_email: str  # the approver pool: one address, or several, comma-separated
    sender_email: str
    ttl_seconds: int

    @property
    def pool(self) -> tuple[str, ...]:
        return approver_pool(self.approver_email)


_REFUSED = {Verdict.ALREADY: Outcome.ALREADY_DECIDED, Verdict.CLOSED: Outcome.ALREADY_DECIDED,
            Verdict.EXPIRED: Outcome.EXPIRED}


class ApprovalService:
    def __init__(self, store: ApprovalStore, timeline: TimelineStore, callbacks: Callbacks) -> None:
        self.store = store
        self.timeline = timeline
        self.callbacks = callbacks

    def request(self, data: ApprovalRequestInput, settings: RequestSettings, mailer: Mailer,
                now: float | None = None) -> dict[str, Any]:
        """Store the request's quorum and one link per approver of the pool, and email each their own."""
        now = time.time() if now is None else now
        pool = settings.pool
        if data.approvers > len(pool):
            raise NotEnoughApprovers(
                f"the request asks {data.approvers} different approvers and the approver pool (approver_email) "
                f"names {len(pool)}", step="request_approval", approvers=data.approvers, pool_size=len(pool))
        quorum = Quorum(key=quorum_key(data.task_token), run_id=data.run_id, task_token=data.task_token,
                        status=ApprovalStatus.PENDING, required=data.approvers, created_at=now,
                        deadline=now + settings.ttl_seconds, context={**data.context, "workflow": data.workflow},
                        version=1)
        self.store.open(quorum)
        message_ids = [send_link(self.store, quorum, approver, settings, mailer, now) for approver in pool]
        expires = _iso(quorum.deadline)
        self.timeline.record(
            data.run_id,
            TimelineEntry(
                state=EntryState.PENDING_APPROVAL,
                step="approval",
                attempt=data.attempt,
                # quorum: where an operator's resend finds the request (a hash of the task token, no secret)
                details={"reasons": data.reasons, "approvers": list(pool), "required": data.approvers,
                         "expires_at": expires, "email_message_ids": message_ids, "quorum": quorum.key},
            ),
        )
        count("ApprovalsRequested")
        logger.info("approval requested", extra={"expires_at": expires, "required": data.approvers,
                                                 "links": len(pool)})
        return {"requested": True, "expires_at": expires, "required": data.approvers}

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
        key = record.quorum_key or f"APPROVAL#{record.token_hash}"
        for _ in range(MAX_DECISION_TRIES):
            before = self.store.quorum(key)
            if before is None:
                return DecisionResult(Outcome.UNKNOWN)
            verdict, after = before.take(record.approver, decision, now)
            if verdict in _REFUSED:
                shown = self._shown(record, before, now)
                return DecisionResult(_REFUSED[verdict], shown, shown.effective_status(now))
            if verdict is Verdict.COUNTED and self._run_stopped(before.run_id):
                # The wait is over (its timeout escalated the run) and no resume would tell: the request is void.
                return self._void(record, before, now)
            if self.store.replace(after, before.version):
                break
        else:
            logger.warning("the decision kept meeting other decisions; nothing of it was written")
            raise DecisionContended("other decisions kept landing first")
        mine = after.decisions[-1]
        if verdict.ends_the_wait:
            return self._deliver(record, after, before, mine, now)
        return self._count(record, after, mine, now)

    def _shown(self, record: ApprovalRecord, quorum: Quorum, now: float) -> ApprovalRecord:
        link = ApprovalLink(token_hash=record.token_hash, quorum_key=quorum.key, approver=record.approver,
                            run_id=quorum.run_id, deadline=quorum.deadline)
        return link_record(link, quorum).model_copy(update={"context": record.context,
                                                            "quorum_key": record.quorum_key})

    def _entry_details(self, quorum: Quorum, mine: ApproverDecision) -> dict[str, Any]:
        return {"decision": mine.decision.value, "decided_at": _iso(mine.decided_at), "via": "email_link",
                "approver": mine.approver, "approvals": quorum.approvals, "required": quorum.required}

    def _count(self, record: ApprovalRecord, after: Quorum, mine: ApproverDecision, now: float) -> DecisionResult:
        """An approval that counted and did not reach the quorum: on the timeline (the run still waits)."""
        try:
            self.timeline.record(
                after.run_id,
                TimelineEntry(state=EntryState.APPROVED, step="approval", details=self._entry_details(after, mine)),
                # Still waiting, unless the decision that ended the wait has written its entry meanwhile.
                status=RunStatus.PENDING_APPROVAL, while_status=RunStatus.PENDING_APPROVAL,
            )
        except Exception:
            self._take_back(after.key, mine)
            logger.exception("could not record the approval; it was taken back and the link stays open")
            raise
        count("ApprovalsDecided")
        logger.info("approval counted", extra={"approvals": after.approvals, "required": after.required})
        return DecisionResult(Outcome.DECIDED, self._shown(record, after, now), mine.decision)

    def _take_back(self, key: str, mine: ApproverDecision) -> None:
        """Take a counted approval back while the request still waits (others may have decided meanwhile)."""
        for _ in range(MAX_DECISION_TRIES):
            current = self.store.quorum(key)
            if current is None or mine not in current.decisions or current.status is not ApprovalStatus.PENDING:
                return  # gone, or the request ended meanwhile with it counted: it stands
            if self.store.replace(current.without(mine, current.version + 1), current.version):
                return

    def _deliver(self, record: ApprovalRecord, after: Quorum, before: Quorum, mine: ApproverDecision,
                 now: float) -> DecisionResult:
        """The decision that ends the wait: on the timeline, then the task resumed with every decision."""
        output = after.output(mine)
        try:
            # On the timeline before the execution resumes, so the decision precedes what follows from it. Either
            # way the run goes on: what a rejection means is the workflow's (one ends the run rejected, another goes
            # on without what was asked for), and the workflow records its outcome.
            self.timeline.record(
                after.run_id,
                TimelineEntry(
                    state=EntryState.APPROVED if after.status is ApprovalStatus.APPROVED else EntryState.REJECTED,
                    step="approval",
                    details=self._entry_details(after, mine),
                ),
                status=RunStatus.PROCESSING,
            )
            resumed = self.callbacks.resume(after.task_token, output)
        except Exception:
            # The decision did not land (Step Functions throttled or failing, or the timeline write failed) and
            # the workflow still waits: re-open the request (no other decision can land on an ended one, so the
            # version written is still the one there) so that the approver's retry delivers it.
            self.store.replace(before.model_copy(update={"version": after.version + 1}), after.version)
            with contextlib.suppress(Exception):
                self.timeline.record(
                    after.run_id,
                    TimelineEntry(state=EntryState.PENDING_APPROVAL, step="approval",
                                  details={"reason": "decision_not_delivered", "decision": mine.decision.value}),
                )
            logger.exception("could not deliver the decision; the approval link stays open")
            raise
        if not resumed:
            return self._void(record, after, now)
        count("ApprovalsDecided")
        logger.info("approval decided", extra={"decision": after.status.value, "approvals": after.approvals,
                                               "required": after.required})
        return DecisionResult(Outcome.DECIDED, self._shown(record, after, now), mine.decision)

    def _void(self, record: ApprovalRecord, quorum: Quorum, now: float) -> DecisionResult:
        """The workflow stopped waiting (its own timeout escalated the run): every link of the request is void."""
        for _ in range(MAX_DECISION_TRIES):
            current = self.store.quorum(quorum.key) or quorum
            if current.status is ApprovalStatus.EXPIRED:
                break
            expired = current.model_copy(update={"status": ApprovalStatus.EXPIRED, "version": current.version + 1})
            if self.store.replace(expired, current.version):
                break
        self.timeline.record(
            quorum.run_id,
            TimelineEntry(state=EntryState.ESCALATED, step="approval",
                          details={"reason": "decision_after_workflow_stopped_waiting"}),
        )
        logger.info("approval arrived after the workflow stopped waiting")
        return DecisionResult(Outcome.EXPIRED, record, ApprovalStatus.EXPIRED)

    def _run_stopped(self, run_id: str) -> bool:
        run = self.timeline.get(run_id)
        return run is not None and run.status in TERMINAL_STATUSES
