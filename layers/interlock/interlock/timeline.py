"""The run record and its ordered timeline, behind a small port, with its DynamoDB adapter.

One table holds everything (single-table design):

=====================  ===========================  =============================================
item                   pk                           sk
=====================  ===========================  =============================================
run record             ``RUN#<run_id>``             ``#RUN``
timeline entry         ``RUN#<run_id>``             ``TL#<ns since epoch, 20 digits>#<random>``
kept event (envelope)  ``RUN#<run_id>``             ``~ENVELOPE``
dedupe key             ``DEDUPE#<source>:<id>``     ``#DEDUPE``
approval               ``APPROVAL#<sha256(token)>`` ``#APPROVAL``
once marker            ``ONCE#<key>``               ``#ONCE``
=====================  ===========================  =============================================

A query on ``RUN#<run_id>`` returns the run record first, then its entries in time order, then the kept event
(``~`` sorts after ``TL#``), which :meth:`DynamoTimelineStore.get` leaves out: reading a run never reads its
payload. Details are stored as JSON strings so that any JSON (floats included) round-trips (zlib-compressed when
large: ``details_z``); the kept envelope
as zlib-compressed JSON (a 128 KiB body fits DynamoDB's 400 KB item with room to spare, and costs less to
write). Every item expires with the run (``INTERLOCK_RUN_RETENTION_DAYS``), dedupe keys sooner.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from interlock import aws
from interlock.models import (
    REPLAYABLE_STATUSES,
    STATUS_AFTER,
    TERMINAL_STATUSES,
    EntryState,
    Envelope,
    Run,
    RunStatus,
    RunView,
    TimelineEntry,
    utcnow,
)
from interlock.run_list import WAIT_ATTRIBUTES, listed_at, listed_key, search_text
from interlock.settings import env_seconds

if TYPE_CHECKING:
    from interlock.kit import RunSummary

RUN_RETENTION_SECONDS = int(os.environ.get("INTERLOCK_RUN_RETENTION_DAYS", "90")) * 24 * 3600
# A kept envelope larger than this once compressed (DynamoDB's item limit is 400 KB, names included) is kept
# without its payload, and cannot be replayed. A body within the ingest's limit (128 KiB at most) never is.
MAX_KEPT_ENVELOPE_BYTES = 350_000


# An entry's event id (its sort key without ``TL#``) is the time it was written, and several workers write a run's
# entries: a reader emits an entry only once its id is older than this (interlock.run_events), so no entry can later
# appear before an id already sent. A put that finishes later than this after its id's time is counted
# (``TimelineEntryLate``).
DEFAULT_EVENTS_SETTLE_SECONDS = 1.0


def events_settle_seconds() -> float:
    return env_seconds("INTERLOCK_EVENTS_SETTLE_SECONDS", DEFAULT_EVENTS_SETTLE_SECONDS)


ENTRY_SK_PREFIX = "TL#"


@dataclass(frozen=True)
class EntriesAfter:
    """What :meth:`TimelineStore.entries_after` read: the run's status (read first) and its entries after the
    cursor, each with its event id (its sort key without ``TL#``), in id order."""

    status: RunStatus
    entries: list[tuple[str, TimelineEntry]]
    more: bool = False  # the read stopped at its limit: further entries follow


class RunNotFound(LookupError):
    pass


class ReplayConflict(StrEnum):
    """Why :meth:`TimelineStore.create_replay` wrote nothing."""

    NOT_REPLAYABLE = "not_replayable"  # the run is not failed or ignored (any more), or does not exist
    ALREADY_REPLAYED = "already_replayed"  # the run was replayed already (by this replay or another)


class RecordOnce(StrEnum):
    """What :meth:`TimelineStore.record_once` did."""

    RECORDED = "recorded"  # the entry is on the timeline and moved the run's status
    RECORDED_KEPT_STATUS = "recorded_kept_status"  # the entry is on the timeline; the run was terminal already
    DUPLICATE = "duplicate"  # an entry with this key was recorded before: nothing written
    UNKNOWN_RUN = "unknown_run"  # no such run: nothing written


class DedupeState(StrEnum):
    ACCEPTING = "accepting"  # recorded, not yet confirmed on the queue
    QUEUED = "queued"  # on the queue: later deliveries are duplicates


@dataclass(frozen=True)
class DedupeRecord:
    run_id: str
    state: DedupeState
    accepted_at: float
    # Which acceptance holds the event: a random token per delivery that recorded or took it over (None on
    # records written before tokens existed). Every later write of the acceptance is conditioned on it.
    token: str | None = None


class TimelineStore(Protocol):
    def create_run_once(self, envelope: Envelope, dedupe_ttl_seconds: int, token: str | None = None) -> bool:
        """Record a new run as ``received`` and its dedupe key as ``accepting`` by the acceptance ``token``;
        False (and nothing written) when the dedupe key exists."""

    def mark_queued(self, envelope: Envelope, token: str | None = None, read_first: bool = False) -> bool:
        """The envelope is on the queue: from now on a delivery with its dedupe key is a duplicate.

        With a ``token``, only if that acceptance still holds the event: False (nothing written) when another
        delivery took it over, so its message is superseded. True too when the record is gone (expired).
        ``read_first``: read the record and write only when it is not queued already by this acceptance."""

    def dedupe_record(self, dedupe_key: str) -> DedupeRecord | None: ...

    def take_over(self, envelope: Envelope, stale: DedupeRecord, token: str) -> bool:
        """Hand an abandoned acceptance (still ``accepting`` by ``stale``'s token) to the acceptance ``token``,
        by a conditional write that deletes nothing; False if it changed meanwhile (queued, or taken over by
        another retry). The run's records stay (a ``retried`` entry says the acceptance was taken over)."""

    def forget_new_run(self, envelope: Envelope, token: str | None = None) -> None:
        """Undo :meth:`create_run_once` for a run that could not be queued; with a ``token``, only while that
        acceptance still holds the event (a late original never undoes the records of the one that took over)."""

    def record(self, run_id: str, entry: TimelineEntry, workflow: str | None = None,
               status: RunStatus | None = None, while_status: RunStatus | None = None,
               summary: RunSummary | None = None) -> None:
        """Append an entry; move the run's status as the entry says (or to ``status``), never out of a terminal
        status, and with ``while_status`` only while the run is in that status (a decision that does not end a
        wait must not put back a run another decision has moved on meanwhile)."""

    def record_once(self, run_id: str, entry: TimelineEntry, key: str) -> RecordOnce:
        """:meth:`record`, at most once per ``key`` and only for a run that exists, atomically."""

    def get(self, run_id: str) -> RunView | None: ...

    def entries_after(self, run_id: str, after: str | None, limit: int = 200) -> EntriesAfter | None:
        """The run's status, then its entries whose event id sorts after ``after`` (all with None), at most
        ``limit``; None for an unknown run."""

    def keep_prompt(self, sha256: str, text: str) -> None:
        """Keep the text of a model's instructions (a prompt version and its policies) once, by its hash: the
        decisions' context entries name it instead of repeating it."""

    def prompt(self, sha256: str) -> str | None:
        """The text :meth:`keep_prompt` kept for ``sha256``."""

    def envelope(self, run_id: str) -> Envelope | None:
        """The event the run was started with, payload included; None if the run has none kept."""

    def create_replay(self, original: str, replay: Envelope, received: TimelineEntry,
                      replayed: TimelineEntry) -> ReplayConflict | None:
        """Atomically: mark the run ``original`` replayed as ``replay.run_id`` (only if it is failed or ignored and
        was never replayed), record the new run ``received`` (``replay_of`` the original) with its kept
        envelope, and append ``received`` to the new run and ``replayed`` to the original. None when written."""

    def forget_replay(self, original: str, replay: Envelope) -> None:
        """Undo :meth:`create_replay` for a replay that could not be queued."""


def moves_status(entry: TimelineEntry) -> bool:
    """Whether the entry changes its run's status: not a step's ``processing`` (nor a ``retried``) entry."""
    status = STATUS_AFTER.get(entry.state)
    return status is not None and (entry.state is not EntryState.PROCESSING)


def _updated_at(head: dict[str, Any], entries: list[dict[str, Any]]) -> datetime:
    """When the run last changed. A step's ``processing`` entry does not write the run record, so a running run
    was last updated by its last entry; a terminal run, by the entry that ended it (later entries never move it)."""
    written = datetime.fromisoformat(head["updated_at"]["S"])
    if RunStatus(head["status"]["S"]) in TERMINAL_STATUSES or not entries:
        return written
    return max(written, datetime.fromisoformat(entries[-1]["at"]["S"]))


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


_sk_clock = threading.Lock()
_last_sk_ns = 0


def _sk_ns() -> int:
    """Now, in ns since the epoch, later than any value this process gave before (the wall clock may step back)."""
    global _last_sk_ns
    with _sk_clock:
        _last_sk_ns = max(time.time_ns(), _last_sk_ns + 1)
        return _last_sk_ns


def _entry_sk(ns: int) -> str:
    # The time of the write (not the entry's ``at``, which a step may have taken earlier) plus a random suffix:
    # ordered by when it was written, unique under concurrent writers.
    return f"{ENTRY_SK_PREFIX}{ns:020d}#{secrets.token_hex(4)}"


def entry_sk_ns(sk: str) -> int:
    """The write time (ns since the epoch) an entry's sort key carries."""
    return int(sk[len(ENTRY_SK_PREFIX):].split("#", 1)[0])


def _warn_late(late_seconds: float) -> None:
    # Imported here: the timeline is imported by light modules that never load Powertools.
    from interlock.observability import count, logger

    logger.warning("a timeline entry was written later than the events' settle time after its id",
                   extra={"code": "timeline_entry_late", "late_ms": int(late_seconds * 1000)})
    count("TimelineEntryLate")


# An entry's details larger than this (a decision's context, with the messages the model saw) are kept
# zlib-compressed: a write unit is 1 KB, and such JSON shrinks to well under half.
COMPRESS_DETAILS_OVER = 700


def _details(details: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(details, default=str, separators=(",", ":"))
    if len(text) > COMPRESS_DETAILS_OVER:
        return {"details_z": {"B": zlib.compress(text.encode())}}
    return {"details": _s(text)}


def _read_details(item: dict[str, Any]) -> dict[str, Any]:
    if "details_z" in item:
        return dict(json.loads(zlib.decompress(item["details_z"]["B"])))
    return dict(json.loads(item["details"]["S"]))


def _wait_sets(entry: TimelineEntry, values: dict[str, Any]) -> list[str]:
    """What ``GET /approvals`` shows of a run's wait, from its ``pending_approval`` entry: since when (kept from the
    first such entry while the run waits), its deadline, the approvals it needs and who was asked."""
    values[":wait_since"] = _s(listed_at(entry.at))
    sets = ["wait_since = if_not_exists(wait_since, :wait_since)"]
    details = entry.details
    if isinstance(details.get("expires_at"), str):
        values[":wait_deadline"] = _s(details["expires_at"])
        sets.append("wait_deadline = :wait_deadline")
    if isinstance(details.get("required"), int):
        values[":wait_required"] = _n(details["required"])
        sets.append("wait_required = :wait_required")
    approvers = details.get("approvers")
    if isinstance(approvers, list) and approvers and all(isinstance(a, str) for a in approvers):
        values[":wait_approvers"] = {"L": [_s(a) for a in approvers[:20]]}
        sets.append("wait_approvers = :wait_approvers")
    return sets


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


class DynamoTimelineStore(aws.DynamoTable):
    RUN_SK = "#RUN"
    DEDUPE_SK = "#DEDUPE"
    ONCE_SK = "#ONCE"
    PROMPT_SK = "#PROMPT"

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        super().__init__(table_name, client)
        self._kept_prompts: set[str] = set()  # written by this process already: a cold start writes each once

    # -- the models' instructions, kept once ---------------------------------------------------------------

    def keep_prompt(self, sha256: str, text: str) -> None:
        if sha256 in self._kept_prompts:
            return
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.put_item(
                TableName=self.table_name,
                Item={"pk": _s(f"PROMPT#{sha256}"), "sk": _s(self.PROMPT_SK),
                      "text": {"B": zlib.compress(text.encode())},
                      # kept as long as a run that names it: each new cold start extends it
                      "expires_at": _n(int(time.time()) + RUN_RETENTION_SECONDS)},
                ConditionExpression="attribute_not_exists(pk)",
            )
        self._kept_prompts.add(sha256)

    def prompt(self, sha256: str) -> str | None:
        item = self.client.get_item(TableName=self.table_name,
                                    Key={"pk": _s(f"PROMPT#{sha256}"), "sk": _s(self.PROMPT_SK)}).get("Item")
        return zlib.decompress(item["text"]["B"]).decode() if item else None

    # -- writes ------------------------------------------------------------------------------------------

    def create_run_once(self, envelope: Envelope, dedupe_ttl_seconds: int, token: str | None = None) -> bool:
        now = envelope.received_at
        expires = int(time.time()) + RUN_RETENTION_SECONDS
        entry = TimelineEntry(
            state=EntryState.RECEIVED,
            step="ingest",
            at=now,
            details={
                "event_source": envelope.source,
                "event_type": envelope.type,
                "event_id": envelope.event_id,
                "payload_version": envelope.payload_version,
            },
        )
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": {
                                "pk": _s(f"DEDUPE#{envelope.dedupe_key}"),
                                "sk": _s(self.DEDUPE_SK),
                                "run_id": _s(envelope.run_id),
                                "state": _s(DedupeState.ACCEPTING.value),
                                "accepted_at": _n(time.time()),
                                "expires_at": _n(int(time.time()) + dedupe_ttl_seconds),
                                **({"token": _s(token)} if token else {}),
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": {
                                "pk": _s(run_pk(envelope.run_id)),
                                "sk": _s(self.RUN_SK),
                                "status": _s(RunStatus.RECEIVED.value),
                                "source": _s(envelope.source),
                                "event_id": _s(envelope.event_id),
                                "event_type": _s(envelope.type),
                                "created_at": _s(now.isoformat()),
                                "updated_at": _s(now.isoformat()),
                                "listed": _s(listed_key(now, envelope.run_id)),
                                "expires_at": _n(expires),
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self.table_name, "Item": self._entry_item(envelope.run_id, entry)}},
                    {"Put": {"TableName": self.table_name, "Item": self._envelope_item(envelope)}},
                ]
            )
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                return False
            raise
        return True

    def _dedupe_key(self, dedupe_key: str) -> dict[str, Any]:
        return {"pk": _s(f"DEDUPE#{dedupe_key}"), "sk": _s(self.DEDUPE_SK)}

    def mark_queued(self, envelope: Envelope, token: str | None = None, read_first: bool = False) -> bool:
        if read_first:
            # The router's confirmation of what the ingest nearly always confirmed already: a read (a quarter of
            # a write's price) finds it so, and nothing is written.
            current = self.dedupe_record(envelope.dedupe_key)
            if current is None:
                return True
            if current.state is DedupeState.QUEUED and (not token or not current.token or current.token == token):
                return True
            if token and current.token and current.token != token:
                return False  # another delivery took the event over: this message is superseded
        condition, values = "attribute_exists(pk)", {":queued": _s(DedupeState.QUEUED.value)}
        if token:
            condition += " AND (#token = :token OR attribute_not_exists(#token))"
            values[":token"] = _s(token)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._dedupe_key(envelope.dedupe_key),
                UpdateExpression="SET #state = :queued",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#state": "state", **({"#token": "token"} if token else {})},
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            # Gone (expired, or undone by the delivery that took it over) or held by another acceptance.
            current = self.dedupe_record(envelope.dedupe_key) if token else None
            return current is None or current.token == token
        return True

    def dedupe_record(self, dedupe_key: str) -> DedupeRecord | None:
        item = self.client.get_item(TableName=self.table_name, Key=self._dedupe_key(dedupe_key),
                                    ConsistentRead=True).get("Item")
        if not item:
            return None
        return DedupeRecord(
            run_id=item["run_id"]["S"],
            # Records written before the two-phase acceptance existed were only written once queued.
            state=DedupeState(item.get("state", {}).get("S", DedupeState.QUEUED.value)),
            accepted_at=float(item.get("accepted_at", {}).get("N", "0")),
            token=item.get("token", {}).get("S"),
        )

    def take_over(self, envelope: Envelope, stale: DedupeRecord, token: str) -> bool:
        """One transaction: the dedupe record passes to ``token`` (only while still ``accepting`` by the stale
        acceptance), the run record is kept (or rebuilt, should an older undo have removed it), and a ``retried``
        entry says so. Nothing is deleted, so an original that turns up late finds its token gone: its
        ``mark_queued`` and ``forget_new_run`` write nothing, and the router drops its message."""
        now = utcnow()
        if stale.token:
            held = "#token = :old"
            values: dict[str, Any] = {":old": _s(stale.token)}
        else:
            held = "attribute_not_exists(#token) AND accepted_at = :seen"
            values = {":seen": _n(stale.accepted_at)}
        entry = TimelineEntry(state=EntryState.RETRIED, step="ingest", at=now,
                              details={"reason": "acceptance_taken_over",
                                       "message": "an earlier delivery was recorded but never confirmed on the "
                                                  "queue; this delivery took the event over"})
        reasons = self._transact([
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": self._dedupe_key(envelope.dedupe_key),
                    "UpdateExpression": "SET #token = :new, accepted_at = :now",
                    "ConditionExpression": f"#state = :accepting AND {held}",
                    "ExpressionAttributeNames": {"#state": "state", "#token": "token"},
                    "ExpressionAttributeValues": {**values, ":new": _s(token), ":now": _n(time.time()),
                                                  ":accepting": _s(DedupeState.ACCEPTING.value)},
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"pk": _s(run_pk(envelope.run_id)), "sk": _s(self.RUN_SK)},
                    "UpdateExpression": "SET #status = if_not_exists(#status, :received), "
                                        "#source = if_not_exists(#source, :source), "
                                        "event_id = if_not_exists(event_id, :event_id), "
                                        "event_type = if_not_exists(event_type, :event_type), "
                                        "created_at = if_not_exists(created_at, :now), updated_at = :now, "
                                        "listed = if_not_exists(listed, :listed), "
                                        "expires_at = if_not_exists(expires_at, :expires)",
                    "ExpressionAttributeNames": {"#status": "status", "#source": "source"},
                    "ExpressionAttributeValues": {
                        ":received": _s(RunStatus.RECEIVED.value), ":source": _s(envelope.source),
                        ":event_id": _s(envelope.event_id), ":event_type": _s(envelope.type),
                        ":now": _s(now.isoformat()), ":expires": _n(int(time.time()) + RUN_RETENTION_SECONDS),
                        ":listed": _s(listed_key(now, envelope.run_id)),
                    },
                }
            },
            {"Put": {"TableName": self.table_name, "Item": self._entry_item(envelope.run_id, entry)}},
        ])
        return reasons is None

    def forget_new_run(self, envelope: Envelope, token: str | None = None) -> None:
        items = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(run_pk(envelope.run_id))},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )["Items"]
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in items]
        if token is None:
            keys.append(self._dedupe_key(envelope.dedupe_key))
            for key in keys:
                self.client.delete_item(TableName=self.table_name, Key=key)
            return
        # All or nothing, and only while this acceptance holds the event (a transaction takes 100 items; a run
        # not yet queued has a handful).
        release = {
            "Delete": {
                "TableName": self.table_name,
                "Key": self._dedupe_key(envelope.dedupe_key),
                "ConditionExpression": "#state = :accepting AND #token = :token",
                "ExpressionAttributeNames": {"#state": "state", "#token": "token"},
                "ExpressionAttributeValues": {":accepting": _s(DedupeState.ACCEPTING.value), ":token": _s(token)},
            }
        }
        # A failed condition (another delivery holds the event now) leaves everything as it is.
        self._transact([release, *({"Delete": {"TableName": self.table_name, "Key": k}} for k in keys[:99])])

    def record(self, run_id: str, entry: TimelineEntry, workflow: str | None = None,
               status: RunStatus | None = None, while_status: RunStatus | None = None,
               summary: RunSummary | None = None) -> None:
        """The entry, and the run record's update when the entry moves the run's status (or names its workflow):
        a step's ``processing`` entry leaves the run record alone (it is ``processing`` already; its
        ``updated_at`` is read from the last entry). ``summary``: the run's subject and customer, as its list
        shows them (interlock.run_list), written with the workflow."""
        item = self._entry_item(run_id, entry)
        self.client.put_item(TableName=self.table_name, Item=item)
        late = (time.time_ns() - entry_sk_ns(item["sk"]["S"])) / 1e9
        if late > events_settle_seconds():
            _warn_late(late)
        if workflow is None and status is None and not moves_status(entry):
            return
        # The run is already terminal (or unknown): the entry stands on the timeline, the status stays.
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(TableName=self.table_name,
                                    **self._run_update(run_id, entry, workflow, status, while_status, summary))

    def record_once(self, run_id: str, entry: TimelineEntry, key: str) -> RecordOnce:
        """One transaction writes a marker for ``key`` (only if absent), the entry and the run's new status.

        When the run's status may not move (it is terminal) or the run does not exist, a second transaction
        writes the marker and the entry only if the run exists, leaving its status as it is. Either way the
        marker, the entry and the status move are all-or-nothing, so a retry after a crash records it then.
        """
        marker = {
            "Put": {
                "TableName": self.table_name,
                "Item": {
                    "pk": _s(f"ONCE#{key}"),
                    "sk": _s(self.ONCE_SK),
                    "run_id": _s(run_id),
                    "expires_at": _n(int(time.time()) + RUN_RETENTION_SECONDS),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        put_entry = {"Put": {"TableName": self.table_name, "Item": self._entry_item(run_id, entry)}}
        move = {"Update": {"TableName": self.table_name, **self._run_update(run_id, entry, None)}}
        reasons = self._transact([marker, put_entry, move])
        if reasons is None:
            return RecordOnce.RECORDED
        if reasons[0] == "ConditionalCheckFailed":
            return RecordOnce.DUPLICATE
        run_exists = {
            "ConditionCheck": {
                "TableName": self.table_name,
                "Key": {"pk": _s(run_pk(run_id)), "sk": _s(self.RUN_SK)},
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        reasons = self._transact([marker, put_entry, run_exists])
        if reasons is None:
            return RecordOnce.RECORDED_KEPT_STATUS
        return RecordOnce.DUPLICATE if reasons[0] == "ConditionalCheckFailed" else RecordOnce.UNKNOWN_RUN

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """None when written; the items' cancellation codes when a condition failed (other errors raise)."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException as exc:
            codes = [str(r.get("Code") or "None") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" not in codes:
                raise
            return codes + ["None"] * (len(items) - len(codes))
        return None

    def _run_update(self, run_id: str, entry: TimelineEntry, workflow: str | None,
                    status: RunStatus | None = None, while_status: RunStatus | None = None,
                    summary: RunSummary | None = None) -> dict[str, Any]:
        """The update of the run record an entry implies: ``updated_at``, and the status unless terminal (with the
        wait's attributes while it is ``pending_approval``: ``GET /approvals`` reads them from the index)."""
        status = status or STATUS_AFTER.get(entry.state)
        sets = ["updated_at = :now"]
        removes: list[str] = []
        values: dict[str, Any] = {":now": _s(entry.at.isoformat())}
        names: dict[str, str] = {}
        if workflow:
            sets.append("workflow = :wf")
            values[":wf"] = _s(workflow)
        if summary is not None:
            for attribute, value in (("subject", summary.subject), ("customer", summary.customer),
                                     ("search", search_text(summary))):
                if value:  # by name: "search" is a reserved word
                    sets.append(f"#{attribute} = :{attribute}")
                    names[f"#{attribute}"] = attribute
                    values[f":{attribute}"] = _s(value)
        condition = "attribute_exists(pk)"
        if status is not None:
            sets.append("#status = :status")
            names["#status"] = "status"
            values[":status"] = _s(status.value)
            if status is RunStatus.PENDING_APPROVAL:
                sets += _wait_sets(entry, values)
            else:
                removes += list(WAIT_ATTRIBUTES)
            terminal = sorted(s.value for s in TERMINAL_STATUSES)
            for i, value in enumerate(terminal):
                values[f":t{i}"] = _s(value)
            condition += " AND NOT #status IN (" + ", ".join(f":t{i}" for i in range(len(terminal))) + ")"
            if while_status is not None:
                values[":while"] = _s(while_status.value)
                condition += " AND #status = :while"
        update: dict[str, Any] = {
            "Key": {"pk": _s(run_pk(run_id)), "sk": _s(self.RUN_SK)},
            "UpdateExpression": "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        return update

    def _entry_item(self, run_id: str, entry: TimelineEntry) -> dict[str, Any]:
        return {
            "pk": _s(run_pk(run_id)),
            "sk": _s(_entry_sk(_sk_ns())),
            "state": _s(entry.state.value),
            "step": _s(entry.step),
            "attempt": _n(entry.attempt),
            "at": _s(entry.at.isoformat()),
            **_details(entry.details),
            "expires_at": _n(int(time.time()) + RUN_RETENTION_SECONDS),
        }

    # -- kept events and replays -------------------------------------------------------------------------

    ENVELOPE_SK = "~ENVELOPE"

    def _envelope_item(self, envelope: Envelope) -> dict[str, Any]:
        """The run's kept event: its envelope as compressed JSON, without its payload if that cannot fit."""
        kept = zlib.compress(envelope.model_dump_json().encode())
        item: dict[str, Any] = {"pk": _s(run_pk(envelope.run_id)), "sk": _s(self.ENVELOPE_SK),
                                "expires_at": _n(int(time.time()) + RUN_RETENTION_SECONDS)}
        if len(kept) > MAX_KEPT_ENVELOPE_BYTES:
            kept = zlib.compress(envelope.model_copy(update={"payload": {}}).model_dump_json().encode())
            item["payload_omitted"] = {"BOOL": True}
        item["envelope"] = {"B": kept}
        return item

    def envelope(self, run_id: str) -> Envelope | None:
        item = self.client.get_item(TableName=self.table_name, ConsistentRead=True,
                                    Key={"pk": _s(run_pk(run_id)), "sk": _s(self.ENVELOPE_SK)}).get("Item")
        if not item or item.get("payload_omitted", {}).get("BOOL"):
            return None
        return Envelope.model_validate_json(zlib.decompress(item["envelope"]["B"]))

    def create_replay(self, original: str, replay: Envelope, received: TimelineEntry,
                      replayed: TimelineEntry) -> ReplayConflict | None:
        now = replay.received_at.isoformat()
        replayable = sorted(s.value for s in REPLAYABLE_STATUSES)
        values: dict[str, Any] = {":new": _s(replay.run_id), ":now": _s(now)}
        values.update({f":r{i}": _s(v) for i, v in enumerate(replayable)})
        mark = {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": _s(run_pk(original)), "sk": _s(self.RUN_SK)},
                # The status stays: a terminal run never changes it; the link to its replay is what moves.
                "UpdateExpression": "SET replayed_as = :new, updated_at = :now",
                "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(replayed_as) AND #status IN ("
                                       + ", ".join(f":r{i}" for i in range(len(replayable))) + ")",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }
        new_run = {
            "Put": {
                "TableName": self.table_name,
                "Item": {
                    "pk": _s(run_pk(replay.run_id)),
                    "sk": _s(self.RUN_SK),
                    "status": _s(RunStatus.RECEIVED.value),
                    "source": _s(replay.source),
                    "event_id": _s(replay.event_id),
                    "event_type": _s(replay.type),
                    "replay_of": _s(original),
                    "created_at": _s(now),
                    "listed": _s(listed_key(replay.received_at, replay.run_id)),
                    "updated_at": _s(now),
                    "expires_at": _n(int(time.time()) + RUN_RETENTION_SECONDS),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        items = [
            mark,
            new_run,
            {"Put": {"TableName": self.table_name, "Item": self._envelope_item(replay)}},
            {"Put": {"TableName": self.table_name, "Item": self._entry_item(replay.run_id, received)}},
            {"Put": {"TableName": self.table_name, "Item": self._entry_item(original, replayed)}},
        ]
        codes = self._transact(items)
        if codes is None:
            return None
        head = self.client.get_item(TableName=self.table_name, ConsistentRead=True,
                                    Key={"pk": _s(run_pk(original)), "sk": _s(self.RUN_SK)}).get("Item") or {}
        if "replayed_as" in head or codes[0] != "ConditionalCheckFailed":
            return ReplayConflict.ALREADY_REPLAYED  # by another request (or its run exists already)
        return ReplayConflict.NOT_REPLAYABLE

    def forget_replay(self, original: str, replay: Envelope) -> None:
        for item in self._partition(replay.run_id, projection="pk, sk"):
            self.client.delete_item(TableName=self.table_name, Key={"pk": item["pk"], "sk": item["sk"]})
        for item in self._partition(original, sk_prefix="TL#"):
            if (item["state"]["S"] == EntryState.REPLAYED.value
                    and _read_details(item).get("replayed_as") == replay.run_id):
                self.client.delete_item(TableName=self.table_name, Key={"pk": item["pk"], "sk": item["sk"]})
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": _s(run_pk(original)), "sk": _s(self.RUN_SK)},
                UpdateExpression="REMOVE replayed_as",
                ConditionExpression="replayed_as = :new",
                ExpressionAttributeValues={":new": _s(replay.run_id)},
            )

    def _partition(self, run_id: str, *, projection: str | None = None,
                   sk_prefix: str | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(run_pk(run_id))},
            "ConsistentRead": True,
        }
        if sk_prefix is not None:
            kwargs["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"][":prefix"] = _s(sk_prefix)
        if projection is not None:
            kwargs["ProjectionExpression"] = projection
        items: list[dict[str, Any]] = []
        while True:
            page = self.client.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- reads -------------------------------------------------------------------------------------------

    def entries_after(self, run_id: str, after: str | None, limit: int = 200) -> EntriesAfter | None:
        head = self.client.get_item(TableName=self.table_name, ConsistentRead=True,
                                    Key={"pk": _s(run_pk(run_id)), "sk": _s(self.RUN_SK)}).get("Item")
        if not head:
            return None
        status = RunStatus(head["status"]["S"])
        start = ENTRY_SK_PREFIX + (after or "")
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            # Only timeline entries: from the cursor (inclusive, dropped below) to the end of TL# (``$`` sorts
            # right after ``#``, before the kept event's ``~``).
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
            "ExpressionAttributeValues": {":pk": _s(run_pk(run_id)), ":from": _s(start), ":to": _s("TL$")},
            "ConsistentRead": True,
        }
        entries: list[tuple[str, TimelineEntry]] = []
        while True:
            page = self.client.query(**kwargs)
            for i in page["Items"]:
                sk = i["sk"]["S"]
                if sk == start or not sk.startswith(ENTRY_SK_PREFIX):
                    continue
                if len(entries) == limit:
                    return EntriesAfter(status, entries, more=True)
                entries.append((sk[len(ENTRY_SK_PREFIX):], _entry(i)))
            if "LastEvaluatedKey" not in page:
                return EntriesAfter(status, entries)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, run_id: str) -> RunView | None:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            # The run record and its entries; not the kept event (~ENVELOPE sorts after them).
            "KeyConditionExpression": "pk = :pk AND sk < :kept",
            "ExpressionAttributeValues": {":pk": _s(run_pk(run_id)), ":kept": _s(self.ENVELOPE_SK)},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if not items or items[0]["sk"]["S"] != self.RUN_SK:
            return None
        # Stored in write order (the sort key is the write's time); the run's view is in the entries' own time
        # order (stable: entries of the same instant keep their write order).
        head, entries = items[0], sorted(items[1:], key=lambda i: datetime.fromisoformat(i["at"]["S"]))
        run = Run(
            run_id=run_id,
            workflow=head.get("workflow", {}).get("S"),
            status=RunStatus(head["status"]["S"]),
            source=head.get("source", {}).get("S"),
            event_id=head.get("event_id", {}).get("S"),
            created_at=datetime.fromisoformat(head["created_at"]["S"]),
            updated_at=_updated_at(head, entries),
            replay_of=head.get("replay_of", {}).get("S"),
            replayed_as=head.get("replayed_as", {}).get("S"),
        )
        return RunView(
            run_id=run.run_id,
            workflow=run.workflow,
            status=run.status,
            created_at=run.created_at,
            updated_at=run.updated_at,
            replay_of=run.replay_of,
            replayed_as=run.replayed_as,
            timeline=[_entry(i) for i in entries],
        )


def _entry(item: dict[str, Any]) -> TimelineEntry:
    return TimelineEntry(
        state=EntryState(item["state"]["S"]),
        step=item["step"]["S"],
        attempt=int(item["attempt"]["N"]),
        at=datetime.fromisoformat(item["at"]["S"]),
        details=_read_details(item),
    )
