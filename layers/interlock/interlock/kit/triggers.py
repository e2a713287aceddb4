"""The triggers that are not webhooks: a workflow's schedules and its tables' status changes, as queue messages and
as the envelopes the router makes of them (docs/finance.md, Triggers that are not webhooks).

Neither passes through the ingest: on AWS an EventBridge Scheduler schedule sends :func:`schedule_message` (the
fixed text :func:`schedule_message_template`, Scheduler filling in the scheduled time) straight to the ingest queue,
and an EventBridge Pipe sends each DynamoDB stream record its filter (:func:`status_change_pattern`) lets through.
Locally ``interlock.local.scheduler`` and ``interlock.local.streams`` send the very same messages. The router
recognises the two shapes (:func:`parse_message`, strict), re-checks the filter with :func:`matches` (the function
the local stream applies too), and makes each an :class:`~interlock.models.Envelope` whose dedupe key is the
scheduled time or the stream record's sequence number, so that a redelivered message starts nothing new.

Everything here is pure (no AWS call) and imports nothing heavy: the router and the registry's declaration checks
import it.
"""

from __future__ import annotations

import json
import os
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from interlock.kit.follow_ups import FOLLOW_UP_MESSAGE_KIND, FollowUpMessage, follow_up_envelope
from interlock.kit.registry import SCHEDULE_SOURCE, TABLE_SOURCE
from interlock.models import Envelope, run_id_for

if TYPE_CHECKING:
    from interlock.kit import DataTable, Schedule, StatusChange, Workflow

SCHEDULE_PAYLOAD_VERSION = "schedule.v1"
TABLE_PAYLOAD_VERSION = "table.v1"
# What EventBridge Scheduler replaces with the firing's scheduled time (2022-03-22T18:59:43Z) in a target's input.
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
SCHEDULE_MESSAGE_KIND = "interlock.schedule"
# A trigger's dedupe key outlives any redelivery of its message: the queue keeps a message 4 days, its DLQ 14, and a
# redrive from the DLQ must still find the run its first delivery made.
TRIGGER_DEDUPE_TTL_SECONDS = 15 * 24 * 3600
# A trigger's acceptance still ``accepting`` this long after it was recorded was abandoned: a delivery of another
# message (a DLQ redrive, Scheduler's retry) takes it over and starts the run. Far above the router's timeout.
TRIGGER_STALE_SECONDS = 900
# A trigger message moved back from the DLQ carries this attribute: the id of its first delivery, the acceptance
# token that delivery recorded (interlock.dead_letters).
DELIVERY_ATTRIBUTE = "delivery"

_NAME = r"[a-z][a-z0-9_]{0,39}"
_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$")


class PoisonMessage(ValueError):
    """A message on the ingest queue that is no envelope, schedule firing or stream record; or one that names what
    does not exist. Its text names what is wrong, never the message's content (it is logged)."""


# -- schedule expressions ------------------------------------------------------------------------------------


class ScheduleExpressionError(ValueError):
    """A schedule expression or time zone EventBridge Scheduler would refuse, or that Interlock cannot evaluate."""


@dataclass(frozen=True)
class Cron:
    """``cron(minutes hours day-of-month month day-of-week year)``, EventBridge's six fields."""

    minutes: str
    hours: str
    day_of_month: str
    month: str
    day_of_week: str
    year: str


@dataclass(frozen=True)
class Rate:
    """``rate(<value> <unit>)``: every ``seconds``, counted from when the schedule starts."""

    value: int
    unit: str

    @property
    def seconds(self) -> int:
        return self.value * {"minute": 60, "hour": 3600, "day": 86400}[self.unit.removesuffix("s")]


_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# field -> (lowest, highest, names or None) as EventBridge numbers them: day-of-week 1-7 is SUN-SAT.
_RANGES: dict[str, tuple[int, int, list[str] | None]] = {
    "minutes": (0, 59, None), "hours": (0, 23, None), "day-of-month": (1, 31, None), "month": (1, 12, _MONTHS),
    "day-of-week": (1, 7, _DAYS), "year": (1970, 2099, None),
}


def _value(field: str, text: str) -> int:
    low, high, names = _RANGES[field]
    if names and text.upper() in names:
        return names.index(text.upper()) + 1
    if not text.isdigit() or not low <= int(text) <= high:
        extra = f" or {names[0]}-{names[-1]}" if names else ""
        why = " (Interlock evaluates years up to 2099)" if field == "year" and text.isdigit() else ""
        raise ScheduleExpressionError(f"{field}: {text!r} is not {low}-{high}{extra}{why}")
    return int(text)


def _check_term(field: str, term: str) -> None:
    """One comma-separated term of a field: ``*``, ``a``, ``a-b``, with ``/step``; the day fields' own forms."""
    upper = term.upper()
    if field == "day-of-month":
        if upper in ("L",):
            return
        if upper == "LW":
            raise ScheduleExpressionError("day-of-month: 'LW' (the last weekday) is not supported; use 'L' or 'nW'")
        if upper.endswith("W"):
            _value(field, upper[:-1])
            return
    if field == "day-of-week":
        if upper == "L":
            return
        if upper.endswith("L"):
            _value(field, upper[:-1])
            return
        if "#" in upper:
            day, _, nth = upper.partition("#")
            _value(field, day)
            if nth not in ("1", "2", "3", "4", "5"):
                raise ScheduleExpressionError(f"day-of-week: {term!r}: the n in 'day#n' is 1-5")
            return
    base, slash, step = upper.partition("/")
    if slash:
        if field == "day-of-week":
            raise ScheduleExpressionError("day-of-week: '/' is not allowed there (EventBridge)")
        if not step.isdigit() or int(step) == 0:
            raise ScheduleExpressionError(f"{field}: {term!r}: the step after '/' is a positive number")
    if base == "*":
        return
    start, dash, end = base.partition("-")
    low = _value(field, start)
    if dash and _value(field, end) < low:
        raise ScheduleExpressionError(f"{field}: {term!r}: a range runs from low to high")


_FIELD_NAMES = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_ALLOWED = {  # the characters each field may hold besides digits and names (EventBridge's table)
    "minutes": ",-*/", "hours": ",-*/", "day-of-month": ",-*?/LW", "month": ",-*/", "day-of-week": ",-*?L#",
    "year": ",-*/",
}


def _check_cron(text: str) -> Cron:
    fields = text.split()
    if len(fields) != 6:
        raise ScheduleExpressionError(f"cron({text}) has {len(fields)} fields; EventBridge's cron has six: minutes "
                                      "hours day-of-month month day-of-week year, e.g. cron(0 9 ? * MON-FRI *)")
    for field, value in zip(_FIELD_NAMES, fields, strict=True):
        stripped = re.sub(r"[A-Za-z]{3}", "", value) if _RANGES[field][2] else value
        bad = sorted({c for c in stripped if not (c.isdigit() or c in _ALLOWED[field])})
        if bad:
            raise ScheduleExpressionError(f"{field}: {value!r} holds {''.join(bad)!r}, which EventBridge does not "
                                          f"allow there (allowed: digits{', names' if _RANGES[field][2] else ''} "
                                          f"and {_ALLOWED[field]})")
        if value == "?":
            if field not in ("day-of-month", "day-of-week"):
                raise ScheduleExpressionError(f"{field}: '?' is only for day-of-month or day-of-week")
            continue
        for term in value.split(","):
            if term == "?" or not term:
                raise ScheduleExpressionError(f"{field}: {value!r}: '?' stands alone, and terms are not empty")
            _check_term(field, term)
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ScheduleExpressionError(f"cron({text}): exactly one of day-of-month and day-of-week is '?' (EventBridge "
                                      "refuses both or neither), e.g. cron(0 9 1 * ? *) or cron(0 9 ? * MON *)")
    return Cron(*fields)


_RATE = re.compile(r"^([0-9]+)\s+(minute|minutes|hour|hours|day|days)$")


def parse_expression(expression: str) -> Cron | Rate:
    """The schedule expression, checked as EventBridge Scheduler checks it; raises :class:`ScheduleExpressionError`
    for what it refuses and for the few forms Interlock does not evaluate (``LW``, years past 2099)."""
    text = expression.strip()
    if text.startswith("cron(") and text.endswith(")"):
        return _check_cron(text[5:-1].strip())
    if text.startswith("rate(") and text.endswith(")"):
        match = _RATE.fullmatch(text[5:-1].strip())
        if match is None:
            raise ScheduleExpressionError(f"{expression!r}: a rate is rate(<n> minute(s)|hour(s)|day(s))")
        value, unit = int(match.group(1)), match.group(2)
        if value < 1:
            raise ScheduleExpressionError(f"{expression!r}: a rate's value is at least 1")
        if (value == 1) != (not unit.endswith("s")):
            raise ScheduleExpressionError(f"{expression!r}: EventBridge wants the singular unit for 1 and the plural "
                                          "otherwise (rate(1 hour), rate(5 minutes))")
        return Rate(value, unit)
    if text.startswith("at("):
        raise ScheduleExpressionError(f"{expression!r}: one-time schedules (at(...)) are not supported; use cron or "
                                      "rate")
    raise ScheduleExpressionError(f"{expression!r} is neither cron(...) nor rate(...)")


def time_zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA time zone ``name``; raises :class:`ScheduleExpressionError` for a name that is none. None when this
    machine has no time zone database at all (nothing to check the name against: the schedule is checked where
    it is realised, by the local scheduler and by the CDK synthesis)."""
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", name):
        raise ScheduleExpressionError(f"time zone {name!r} is not an IANA name such as Europe/Berlin or UTC")
    try:
        return zoneinfo.ZoneInfo(name)
    except zoneinfo.ZoneInfoNotFoundError:
        if not zoneinfo.available_timezones():
            return None
        raise ScheduleExpressionError(f"time zone {name!r} is not an IANA time zone (e.g. Europe/Berlin, "
                                      "America/New_York, UTC)") from None


def check_schedule(workflow: str, schedule: Schedule) -> None:
    """Raise :class:`ScheduleExpressionError`, naming the schedule, for an expression or time zone that cannot be
    used: the registry calls it when it loads a workflow (declaration time)."""
    try:
        parse_expression(schedule.expression)
        time_zone(schedule.timezone)
    except ScheduleExpressionError as exc:
        raise ScheduleExpressionError(f"workflow {workflow!r}, schedule {schedule.name!r}: {exc}") from None


# -- a schedule's firing -------------------------------------------------------------------------------------


class ScheduleMessage(BaseModel):
    """What a schedule sends to the ingest queue: which schedule fired, and for which scheduled time."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True)

    kind: Literal["interlock.schedule"]
    workflow: str = Field(pattern=f"^{_NAME}$")
    schedule: str = Field(pattern=f"^{_NAME}$")
    scheduled_time: str = Field(max_length=40)

    @field_validator("scheduled_time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _TIME.fullmatch(value):
            raise ValueError("scheduled_time is an ISO 8601 UTC time, 2026-11-22T09:00:00Z")
        datetime.fromisoformat(value.replace("Z", "+00:00"))  # a real date and time
        return value

    @property
    def at(self) -> datetime:
        return datetime.fromisoformat(self.scheduled_time.replace("Z", "+00:00")).replace(microsecond=0)

    @property
    def event_type(self) -> str:
        return f"{self.workflow}.{self.schedule}"

    @property
    def dedupe_key(self) -> str:
        return schedule_dedupe_key(self.workflow, self.schedule, self.at)


def format_time(at: datetime) -> str:
    """A scheduled time as Scheduler writes it: UTC, to the second, ``Z``."""
    if at.tzinfo is None:
        raise ValueError("a scheduled time is timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_dedupe_key(workflow: str, schedule: str, at: datetime) -> str:
    return f"schedule:{workflow}.{schedule}:{format_time(at)}"


def schedule_message_template(workflow: str, schedule: str) -> str:
    """The target input of the schedule's EventBridge Scheduler schedule: fixed JSON, with Scheduler's
    ``<aws.scheduler.scheduled-time>`` where the scheduled time goes."""
    return json.dumps({"kind": SCHEDULE_MESSAGE_KIND, "workflow": workflow, "schedule": schedule,
                       "scheduled_time": SCHEDULED_TIME}, separators=(",", ":"))


def schedule_message(workflow: str, schedule: str, at: datetime) -> str:
    """The message the schedule sends for the firing scheduled at ``at``: the template, filled in as Scheduler
    fills it in."""
    return schedule_message_template(workflow, schedule).replace(SCHEDULED_TIME, format_time(at))


def schedule_envelope(message: ScheduleMessage, workflow: Workflow, received_at: datetime) -> Envelope:
    """The envelope of a schedule's firing; :class:`PoisonMessage` if its workflow declares no such schedule."""
    if workflow.name != message.workflow or not any(s.name == message.schedule for s in workflow.schedules):
        raise PoisonMessage(f"no workflow declares the schedule {message.event_type!r}")
    schedule = workflow.schedule(message.schedule)
    key = message.dedupe_key
    return Envelope(
        event_id=f"{message.event_type}:{format_time(message.at)}",
        source=SCHEDULE_SOURCE,
        type=message.event_type,
        payload_version=SCHEDULE_PAYLOAD_VERSION,
        received_at=received_at,
        dedupe_key=key,
        run_id=run_id_for(key),
        payload={"workflow": message.workflow, "schedule": message.schedule,
                 "scheduled_time": format_time(message.at), "expression": schedule.expression,
                 "timezone": schedule.timezone},
    )


# -- a table's status change ---------------------------------------------------------------------------------

_Image = dict[str, dict[str, Any]]


class StreamChange(BaseModel):
    """The ``dynamodb`` part of a stream record (the fields Interlock reads; others are ignored)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, hide_input_in_errors=True)

    Keys: _Image = Field(min_length=1)
    SequenceNumber: str = Field(pattern=r"^[0-9]{1,40}$")
    NewImage: _Image | None = None
    OldImage: _Image | None = None


class StreamRecord(BaseModel):
    """A DynamoDB stream record as EventBridge Pipes sends it to an SQS target (one message per record)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, hide_input_in_errors=True)

    eventID: str = Field(min_length=1, max_length=128)
    eventName: Literal["INSERT", "MODIFY", "REMOVE"]
    eventSource: Literal["aws:dynamodb"]
    eventSourceARN: str = Field(
        pattern=r"^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]{3,255}/stream/[^/]+$")
    dynamodb: StreamChange

    @property
    def table_name(self) -> str:
        """The physical name of the table whose stream it comes from."""
        return self.eventSourceARN.split(":table/", 1)[1].split("/stream/", 1)[0]

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def status_change_pattern(change: StatusChange) -> dict[str, Any]:
    """The EventBridge event pattern of ``change``: a MODIFY whose old image has ``attribute = from_`` and whose
    new image has ``attribute = to`` (string values). The CDK pipe's filter is this pattern; the local stream and
    the router apply it with :func:`matches`."""
    return {
        "eventName": ["MODIFY"],
        "dynamodb": {
            "OldImage": {change.attribute: {"S": [change.from_]}},
            "NewImage": {change.attribute: {"S": [change.to]}},
        },
    }


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """Whether ``event`` matches an EventBridge event pattern made of nested objects and lists of exact values (the
    part of the pattern language :func:`status_change_pattern` uses; anything else is refused, not guessed)."""
    if not isinstance(event, dict):
        return False
    for key, wanted in pattern.items():
        if key not in event:
            return False
        value = event[key]
        if isinstance(wanted, dict):
            if not matches(wanted, value):
                return False
        elif isinstance(wanted, list):
            if any(isinstance(w, (dict, list)) for w in wanted):
                raise ValueError("only exact values are supported in a pattern's lists")
            values = value if isinstance(value, list) else [value]
            if not any(v == w and type(v) is type(w) for v in values for w in wanted):
                return False
        else:
            raise ValueError(f"a pattern's leaves are lists of values, not {type(wanted).__name__}")
    return True


def plain(image: _Image) -> dict[str, Any]:
    """A DynamoDB image as plain JSON: numbers as int when whole, else float; sets as lists; binary as base64."""
    import base64
    from decimal import Decimal

    from boto3.dynamodb.types import Binary, TypeDeserializer

    deserializer = TypeDeserializer()

    def convert(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, Binary):
            return base64.b64encode(value.value).decode("ascii")
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, (list, set, frozenset, tuple)):
            items = [convert(v) for v in value]
            return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
        return value

    try:
        return {name: convert(deserializer.deserialize(value)) for name, value in image.items()}
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise PoisonMessage(f"the stream record's image is not DynamoDB JSON ({type(exc).__name__})") from None


def status_change_envelope(record: StreamRecord, table: str, change: StatusChange,
                           received_at: datetime) -> Envelope:
    """The envelope of a status change: the new image as plain JSON, the keys, the old and new status."""
    data = record.dynamodb
    key = f"table:{table}:{data.SequenceNumber}"
    return Envelope(
        event_id=record.eventID,
        source=TABLE_SOURCE,
        type=change.event_type,
        payload_version=TABLE_PAYLOAD_VERSION,
        received_at=received_at,
        dedupe_key=key,
        run_id=run_id_for(key),
        payload={"table": table, "status_change": change.name, "attribute": change.attribute,
                 "old_status": change.from_, "new_status": change.to, "keys": plain(data.Keys),
                 "item": plain(data.NewImage or {}), "sequence_number": data.SequenceNumber},
    )


def matching_change(record: StreamRecord, changes: tuple[StatusChange, ...]) -> StatusChange | None:
    """The status change of the record's table that ``record`` is (its pattern matches), if any."""
    wire = record.wire()
    return next((c for c in changes if matches(status_change_pattern(c), wire)), None)


# -- which message is it -------------------------------------------------------------------------------------


def parse_message(body: str) -> Envelope | ScheduleMessage | StreamRecord | FollowUpMessage:
    """The ingest queue message ``body`` as what it is: an envelope (the ingest's, a replay's), a schedule's
    firing, a stream record or a follow-up a step started. :class:`PoisonMessage` for anything else, or for one
    of them that does not validate
    (the error names the shape and the fields, never their values)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise PoisonMessage("the message is not JSON") from None
    except RecursionError:  # only a message no ingest wrote (one sent to the queue by hand) nests this deep
        raise PoisonMessage("the message is nested too deep to read") from None
    if not isinstance(data, dict):
        raise PoisonMessage("the message is not a JSON object")
    if "envelope_version" in data:
        shape: type[BaseModel] = Envelope
    elif data.get("kind") == SCHEDULE_MESSAGE_KIND:
        shape = ScheduleMessage
    elif data.get("eventSource") == "aws:dynamodb":
        shape = StreamRecord
    elif data.get("kind") == FOLLOW_UP_MESSAGE_KIND:
        shape = FollowUpMessage
    else:
        raise PoisonMessage("the message is no envelope, schedule firing, DynamoDB stream record or follow-up")
    try:
        parsed = shape.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "(the message)" for err in exc.errors()})
        raise PoisonMessage(f"the {shape.__name__} does not validate: {', '.join(fields)}") from None
    assert isinstance(parsed, (Envelope, ScheduleMessage, StreamRecord, FollowUpMessage))
    return parsed


# -- from a message to its envelope --------------------------------------------------------------------------


def table_variable(table: str) -> str:
    """The environment variable holding the physical name of the workflow table ``table``."""
    return f"INTERLOCK_TABLE_{table.upper()}"


def declared_table(physical: str, environ: Mapping[str, str] | None = None) -> tuple[Workflow, DataTable] | None:
    """The workflow and the declared table whose physical name is ``physical`` (from the environment the topology
    gives the router and the workers, :func:`table_variable`)."""
    from interlock.kit import registry

    env = os.environ if environ is None else environ
    for wf in registry.workflows().values():
        for table in wf.tables:
            if env.get(table_variable(table.name)) == physical:
                return wf, table
    return None


def trigger_envelope(message: ScheduleMessage | StreamRecord | FollowUpMessage, received_at: datetime,
                     environ: Mapping[str, str] | None = None) -> Envelope | None:
    """The envelope a schedule's firing, a stream record or a follow-up starts a run with; None for a stream record
    that is no status change a workflow declares (the pipe's filter, checked again: it never makes a run).
    :class:`PoisonMessage` for a message naming a schedule, a table or a follow-up no workflow declares."""
    from interlock.kit import registry

    if isinstance(message, FollowUpMessage):
        try:
            workflow = registry.workflow(message.workflow)
        except registry.UnknownWorkflow:
            workflow = None
        if workflow is None or not any(f.name == message.follow_up for f in workflow.follow_ups):
            raise PoisonMessage(f"no workflow declares the follow-up {message.event_type!r}")
        return follow_up_envelope(message, workflow, received_at)
    if isinstance(message, ScheduleMessage):
        try:
            workflow = registry.workflow(message.workflow)
        except registry.UnknownWorkflow:
            raise PoisonMessage(f"no workflow declares the schedule {message.event_type!r}") from None
        return schedule_envelope(message, workflow, received_at)
    found = declared_table(message.table_name, environ)
    if found is None:
        raise PoisonMessage("the stream record comes from a table no workflow declares")
    workflow, table = found
    change = matching_change(message, tuple(c for c in workflow.status_changes if c.table == table.name))
    if change is None:
        return None
    return status_change_envelope(message, table.name, change, received_at)
