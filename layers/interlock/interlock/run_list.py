"""Finding runs: ``GET /runs`` (filters and a cursor) and ``GET /approvals`` (what waits for a person), read from
the timeline table's index ``runs_by_status`` (docs/operators.md).

The index's partition key is the run's status and its sort key ``listed`` (``<created_at>Z#<run_id>``), so a
status is one partition in time order. A list over several statuses reads each partition in the list's order and
merges them. A partition may stop before it is exhausted (its page filled, or its share of the read budget spent):
the merged page is then complete only as far as the partition that stopped soonest reached, and the cursor says
where the next page starts. The cursor also carries a digest of the filters, so it cannot be used with others.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel

from interlock import aws
from interlock.kit import RunSummary
from interlock.models import RunStatus

INDEX_NAME = "runs_by_status"
INDEX_PARTITION_KEY = "status"
INDEX_SORT_KEY = "listed"
# What the index holds besides its keys: what a list shows (not updated_at: an entry that only moves it writes
# nothing to the index).
WAIT_ATTRIBUTES = ("wait_since", "wait_deadline", "wait_required", "wait_approvers")
INDEX_PROJECTION = ("run_id", "workflow", "source", "event_type", "created_at", "subject", "customer", "search",
                    "replay_of", "replayed_as", *WAIT_ATTRIBUTES)

MAX_SUMMARY_CHARS = 200
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
# Index items one request reads at most (over all its partitions) before it answers what it found, with a cursor.
MAX_EVALUATED = 2000
MIN_SEARCH_CHARS, MAX_SEARCH_CHARS = 2, 100

_POSITION = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                       r"[0-9a-f]{12}")
_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_LOWEST, _HIGHEST = "0", "9"  # below and above every ``listed`` value


def listed_at(when: datetime) -> str:
    """A time as the index's sort key spells it: UTC, fixed width, so that strings sort as times."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def just_before(position: str) -> str:
    """A bound below ``position`` and above every position before it (positions are all as long, in ASCII): a key
    condition's ``BETWEEN`` is inclusive, and a page must not start with its cursor's run again."""
    return position[:-1] + chr(ord(position[-1]) - 1) + "~"


def just_after(position: str) -> str:
    """A bound above ``position`` and below every position after it."""
    return position + " "


def listed_key(created_at: datetime, run_id: str) -> str:
    """The run record's ``listed`` attribute: when it was created, then its id (unique, so positions are too)."""
    return f"{listed_at(created_at)}#{run_id}"


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in value[:MAX_SUMMARY_CHARS * 4])
    text = " ".join(text.split())[:MAX_SUMMARY_CHARS]
    return text or None


def checked_summary(value: object) -> RunSummary:
    """A workflow's summary made safe to store and show: strings only, no control characters, one line, trimmed."""
    if not isinstance(value, RunSummary):
        return RunSummary()
    return RunSummary(subject=_clean(value.subject), customer=_clean(value.customer))


def search_text(summary: RunSummary) -> str | None:
    """What ``q`` matches: the subject and the customer, lower-cased (``casefold``)."""
    parts = [p for p in (summary.subject, summary.customer) if p]
    return "\n".join(parts).casefold() or None


# -- the filters ---------------------------------------------------------------------------------------------


class BadQuery(ValueError):
    """A query parameter that cannot be used: answered 400 with ``code`` and the message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RunFilter:
    statuses: tuple[RunStatus, ...] = tuple(RunStatus)
    workflow: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    limit: int = DEFAULT_LIMIT
    newest_first: bool = True

    @property
    def low(self) -> str:
        return listed_at(self.since) if self.since else _LOWEST

    @property
    def high(self) -> str:
        return listed_at(self.until) if self.until else _HIGHEST

    def digest(self) -> str:
        """What a cursor is bound to: everything but the page's size."""
        fields = [sorted(s.value for s in self.statuses), self.workflow, self.source, self.low, self.high, self.q,
                  self.newest_first]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


PARAMETERS = ("status", "workflow", "source", "since", "until", "q", "limit", "order", "cursor")


def _time(name: str, value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise BadQuery("bad_time", f"{name} is an ISO 8601 time, such as 2026-12-01T00:00:00Z") from None
    if when.tzinfo is None:
        if len(value) > 10:
            raise BadQuery("bad_time", f"{name} needs a time zone (Z, or +01:00)")
        when = when.replace(tzinfo=UTC)  # a date alone: that day, in UTC
    if not 2000 <= when.astimezone(UTC).year <= 9998:
        raise BadQuery("bad_time", f"{name} is out of range")
    return when


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_LIMIT:
        raise BadQuery("bad_limit", f"limit is a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def parse_filter(params: Mapping[str, str] | None, workflows: tuple[str, ...]) -> RunFilter:
    """The filters of a ``GET /runs``'s query string (``BadQuery`` for any that cannot be used)."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise BadQuery("unknown_parameter", f"unknown parameter {unknown[0][:40]!r}; the parameters are "
                                            + ", ".join(PARAMETERS))
    statuses: tuple[RunStatus, ...] = tuple(RunStatus)
    if params.get("status"):
        try:
            statuses = tuple(dict.fromkeys(RunStatus(s.strip()) for s in params["status"].split(",")))
        except ValueError:
            raise BadQuery("bad_status", "status is one or more of " + ", ".join(s.value for s in RunStatus)
                           + ", comma-separated") from None
    workflow = params.get("workflow") or None
    if workflow is not None and workflow not in workflows:
        raise BadQuery("unknown_workflow", "no workflow named that; the workflows are " + ", ".join(workflows))
    source = params.get("source") or None
    if source is not None and not _NAME.fullmatch(source):
        raise BadQuery("bad_source", "source is a source's name, such as stripe or form")
    since = _time("since", params["since"]) if params.get("since") else None
    until = _time("until", params["until"]) if params.get("until") else None
    if since and until and since >= until:
        raise BadQuery("bad_time", "since must come before until")
    q = params.get("q")
    if q is not None:
        q = " ".join(q.split()).casefold()
        if not MIN_SEARCH_CHARS <= len(q) <= MAX_SEARCH_CHARS or any(unicodedata.category(c)[0] == "C" for c in q):
            raise BadQuery("bad_search", f"q is {MIN_SEARCH_CHARS} to {MAX_SEARCH_CHARS} characters of text")
    order = params.get("order", "newest")
    if order not in ("newest", "oldest"):
        raise BadQuery("bad_order", "order is newest or oldest")
    return RunFilter(statuses=statuses, workflow=workflow, source=source, since=since, until=until, q=q or None,
                     limit=_limit(params.get("limit")), newest_first=order == "newest")


# -- the cursor ----------------------------------------------------------------------------------------------


def encode_cursor(position: str, flt: RunFilter) -> str:
    raw = json.dumps({"p": position, "f": flt.digest()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, flt: RunFilter) -> str | None:
    """The position a cursor holds (None without one); ``BadQuery`` for one that is not ours or not these filters'."""
    if not cursor:
        return None
    problem = BadQuery("bad_cursor", "cursor is not one this API gave for these filters: start again without it")
    if len(cursor) > 300:
        raise problem
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise problem from None
    if (not isinstance(data, dict) or data.get("f") != flt.digest() or not isinstance(data.get("p"), str)
            or not _POSITION.fullmatch(data["p"])):
        raise problem
    return str(data["p"])


# -- what a list shows ---------------------------------------------------------------------------------------


class ListedRun(BaseModel):
    run_id: str
    status: RunStatus
    workflow: str | None = None
    source: str | None = None
    event_type: str | None = None
    created_at: str
    subject: str | None = None
    customer: str | None = None
    replay_of: str | None = None
    replayed_as: str | None = None


class WaitingApproval(BaseModel):
    run_id: str
    workflow: str | None = None
    subject: str | None = None
    customer: str | None = None
    created_at: str
    waiting_since: str | None = None
    age_seconds: int | None = None
    deadline: str | None = None
    seconds_left: int | None = None
    required: int | None = None
    approvers: list[str] = []


@dataclass(frozen=True)
class IndexItem:
    """One run as the index holds it: its position (``listed``) and its attributes, as plain values."""

    position: str
    status: RunStatus
    values: dict[str, Any]


@dataclass(frozen=True)
class PartitionRead:
    items: list[IndexItem]
    evaluated: int
    # How far the read got when it stopped before the partition's end (the last position it evaluated); None: it
    # read the partition to the end of the range.
    reached: str | None


class RunIndex(Protocol):
    def read(self, status: RunStatus, low: str, high: str, newest_first: bool, flt: RunFilter, want: int,
             budget: int) -> PartitionRead:
        """The partition ``status`` between ``low`` and ``high`` (inclusive), in the list's order, with the
        filters' workflow, source and text applied, until ``want`` items matched, ``budget`` items were read, or
        the range ends."""


@dataclass(frozen=True)
class Page:
    items: list[IndexItem]
    cursor: str | None
    evaluated: int


def read_page(index: RunIndex, flt: RunFilter, cursor: str | None) -> Page:
    """One page of the list ``flt`` from ``cursor`` (``BadQuery`` for a cursor that is not these filters')."""
    start = decode_cursor(cursor, flt)
    low, high = flt.low, flt.high
    if start is not None:  # the next page starts strictly after the cursor's position, in the list's order
        if flt.newest_first:
            high = min(high, just_before(start))
        else:
            low = max(low, just_after(start))
    budget = max(flt.limit, MAX_EVALUATED // len(flt.statuses))
    reads = [index.read(status, low, high, flt.newest_first, flt, flt.limit + 1, budget) for status in flt.statuses]
    before = (lambda a, b: a > b) if flt.newest_first else (lambda a, b: a < b)
    # The merged list is complete as far as the partition that stopped soonest got.
    stops = [r.reached for r in reads if r.reached is not None]
    frontier = (max(stops) if flt.newest_first else min(stops)) if stops else None
    # A run whose status moved while the partitions were read may be in two of them: it is listed once.
    kept = {item.position: item for r in reads for item in r.items
            if item.position != start and (frontier is None or not before(frontier, item.position))}
    merged = sorted(kept.values(), key=lambda i: i.position, reverse=flt.newest_first)
    evaluated = sum(r.evaluated for r in reads)
    if len(merged) > flt.limit:
        items = merged[:flt.limit]
        return Page(items, encode_cursor(items[-1].position, flt), evaluated)
    if frontier is not None:
        # Everything up to the frontier is in ``merged``; the next page goes on from just past it.
        return Page(merged, encode_cursor(frontier, flt), evaluated)
    return Page(merged, None, evaluated)


def listed_run(item: IndexItem) -> ListedRun:
    v = item.values
    return ListedRun(run_id=item.position.split("#", 1)[1], status=item.status, workflow=v.get("workflow"),
                     source=v.get("source"), event_type=v.get("event_type"), created_at=item.position.split("#")[0],
                     subject=v.get("subject"), customer=v.get("customer"), replay_of=v.get("replay_of"),
                     replayed_as=v.get("replayed_as"))


def _seconds(later: datetime, earlier: datetime) -> int:
    return int((later - earlier).total_seconds())


def waiting_approval(item: IndexItem, now: datetime) -> WaitingApproval:
    v = item.values
    since, deadline = _when(v.get("wait_since")), _when(v.get("wait_deadline"))
    required = v.get("wait_required")
    approvers = v.get("wait_approvers")
    return WaitingApproval(
        run_id=item.position.split("#", 1)[1], workflow=v.get("workflow"), subject=v.get("subject"),
        customer=v.get("customer"), created_at=item.position.split("#")[0],
        waiting_since=listed_at(since) if since else None, age_seconds=_seconds(now, since) if since else None,
        deadline=listed_at(deadline) if deadline else None,
        seconds_left=_seconds(deadline, now) if deadline else None,
        required=required if isinstance(required, int) else None,
        approvers=[a for a in approvers if isinstance(a, str)] if isinstance(approvers, list) else [])


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def approvals_filter(params: Mapping[str, str] | None) -> RunFilter:
    """``GET /approvals``: the ``pending_approval`` partition, oldest first (``limit`` and ``cursor`` only)."""
    params = dict(params or {})
    unknown = sorted(set(params) - {"limit", "cursor"})
    if unknown:
        raise BadQuery("unknown_parameter", f"unknown parameter {unknown[0][:40]!r}; the parameters are limit, cursor")
    return RunFilter(statuses=(RunStatus.PENDING_APPROVAL,), limit=_limit(params.get("limit")), newest_first=False)


# -- the index's adapter -------------------------------------------------------------------------------------


def _plain(attribute: dict[str, Any]) -> Any:
    (kind, value), = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if kind == "L":
        return [_plain(v) for v in value]
    if kind == "SS":
        return sorted(value)
    return None


class DynamoRunIndex(aws.DynamoTable):
    """``runs_by_status`` as a :class:`RunIndex`: one ``Query`` (of pages of at most ``PAGE`` items) per status."""

    PAGE = 100

    def read(self, status: RunStatus, low: str, high: str, newest_first: bool, flt: RunFilter, want: int,
             budget: int) -> PartitionRead:
        names = {"#status": INDEX_PARTITION_KEY, "#listed": INDEX_SORT_KEY}
        values: dict[str, Any] = {":status": {"S": status.value}, ":low": {"S": low}, ":high": {"S": high}}
        conditions = []
        for attribute, value in (("workflow", flt.workflow), ("source", flt.source)):
            if value is not None:
                names[f"#{attribute}"] = attribute
                values[f":{attribute}"] = {"S": value}
                conditions.append(f"#{attribute} = :{attribute}")
        if flt.q is not None:
            names["#search"] = "search"
            values[":q"] = {"S": flt.q}
            conditions.append("contains(#search, :q)")
        kwargs: dict[str, Any] = {
            "TableName": self.table_name, "IndexName": INDEX_NAME, "ScanIndexForward": not newest_first,
            "KeyConditionExpression": "#status = :status AND #listed BETWEEN :low AND :high",
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        }
        if conditions:
            kwargs["FilterExpression"] = " AND ".join(conditions)
        items: list[IndexItem] = []
        evaluated = 0
        while True:
            page = self.client.query(**kwargs, Limit=max(1, min(self.PAGE, budget - evaluated)))
            evaluated += int(page.get("ScannedCount", len(page["Items"])))
            items += [IndexItem(position=i[INDEX_SORT_KEY]["S"], status=status,
                                values={k: _plain(v) for k, v in i.items() if k in INDEX_PROJECTION})
                      for i in page["Items"]]
            last = page.get("LastEvaluatedKey")
            if last is None:
                return PartitionRead(items, evaluated, None)
            if len(items) >= want or evaluated >= budget:
                return PartitionRead(items, evaluated, str(last[INDEX_SORT_KEY]["S"]))
            kwargs["ExclusiveStartKey"] = last


# -- the two lists, as the API answers them ------------------------------------------------------------------


class RunLists:
    """``GET /runs`` and ``GET /approvals``: (HTTP status, JSON body), a 400 with the problem for bad parameters."""

    def __init__(self, index: RunIndex, workflows: tuple[str, ...]) -> None:
        self.index = index
        self.workflows = workflows

    def runs(self, params: Mapping[str, str] | None) -> tuple[int, dict[str, Any]]:
        try:
            flt = parse_filter(params, self.workflows)
            page = read_page(self.index, flt, (params or {}).get("cursor"))
        except BadQuery as problem:
            return 400, {"error": problem.code, "message": str(problem)}
        return 200, {"runs": [listed_run(i).model_dump(mode="json") for i in page.items], "cursor": page.cursor,
                     "evaluated": page.evaluated}

    def approvals(self, params: Mapping[str, str] | None, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
        try:
            flt = approvals_filter(params)
            page = read_page(self.index, flt, (params or {}).get("cursor"))
        except BadQuery as problem:
            return 400, {"error": problem.code, "message": str(problem)}
        now = now or datetime.now(UTC)
        return 200, {"approvals": [waiting_approval(i, now).model_dump(mode="json") for i in page.items],
                     "cursor": page.cursor, "evaluated": page.evaluated}
