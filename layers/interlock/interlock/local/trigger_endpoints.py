"""The local runtime's own endpoints for the triggers that are not webhooks, under ``/_local/`` beside the fakes:

* ``GET /_local/scheduler``: the schedules, the scheduler's clock and each schedule's next firing;
* ``POST /_local/scheduler/trigger {"schedule": "<workflow>.<schedule>"}``: fire one now (``interlock trigger``);
  202 with the scheduled time and the run it starts, 404 for a schedule no workflow declares;
* ``POST /_local/scheduler/advance {"seconds": N}``: skip the scheduler's clock N seconds ahead (at most a year)
  and fire what fell due, each firing in order: how the tests (and a curious person) see tomorrow's run today;
* ``GET /_local/tables/<table>/items``: a workflow table's items, as plain JSON;
* ``PUT /_local/tables/<table>/items {"item": {...}}``: put an item (plain JSON);
* ``PATCH /_local/tables/<table>/items {"key": {...}, "set": {...}}``: change attributes of an existing item, as a
  workflow's step or another system of record would (``{"set": {"status": "approved"}}`` is a status change);
* ``GET /_local/tables/<table>/changes``: the stream records read from it lately, with the run each status change
  starts;
* ``GET /_local/queues``: the queues and their DLQs, with the messages each holds;
* ``POST /_local/queues/<queue>/messages {"body": "...", "attributes": {"<name>": "<string>"}}``: send a message
  to a queue or a DLQ (``ingest-dlq``) as SQS would hold it: how a redrive is rehearsed on a laptop
  (docs/operators.md).

Bad input gets a 4xx, never a 5xx; ``<table>`` is a table's declared name, ``<queue>`` a queue's (or
``<queue>-dlq``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from interlock.kit.triggers import format_time
from interlock.local.fakes import MOUNT, LocalFakes
from interlock.local.http_types import Request, Response, json_response
from interlock.local.scheduler import LocalScheduler, firings
from interlock.local.streams import LocalStreams

MAX_ADVANCE_SECONDS = 366 * 86400
MAX_MESSAGE_BYTES = 256 * 1024  # SQS's own limit
MAX_ATTRIBUTES = 10  # SQS's own limit


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    return json_response(status, {"error": code, "message": message, **extra})


def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _dynamo(value: Any) -> Any:
    """Plain JSON as the DynamoDB serializer takes it: numbers as Decimal (a float is refused by it)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("numbers are finite")
        return Decimal(str(value))
    if isinstance(value, list):
        return [_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _dynamo(v) for k, v in value.items()}
    raise ValueError(f"{type(value).__name__} is not JSON")


class TriggerEndpoints:
    def __init__(self, scheduler: LocalScheduler, streams: LocalStreams, tables: dict[str, str],
                 keys: dict[str, tuple[str, ...]], dynamodb: Callable[[], Any],
                 queues: dict[str, str] | None = None, sqs: Callable[[], Any] | None = None) -> None:
        self.scheduler = scheduler
        self.streams = streams
        self.tables = tables  # declared name -> physical name
        self.keys = keys  # declared name -> its key attributes
        self._dynamodb = dynamodb
        self.queues = queues or {}  # queue (or <queue>-dlq) -> its URL
        self._sqs = sqs

    def handle(self, request: Request, system: str, path: str) -> Response:
        if system == "scheduler":
            return self._scheduler(request, path)
        if system == "queues":
            return self._queues(request, path)
        return self._tables(request, path)

    # -- the queues ----------------------------------------------------------------------------------------

    def _queues(self, request: Request, path: str) -> Response:
        if path == "/":
            if request.method != "GET":
                return json_response(405, {"message": "Method Not Allowed"}, {"Allow": "GET"})
            return json_response(200, {"queues": [{"name": name, "messages": self._depth(url)}
                                                  for name, url in sorted(self.queues.items())]})
        name, _, what = path.strip("/").partition("/")
        if name not in self.queues:
            return _error(404, "unknown_queue", f"no queue named {name[:100]!r}; the queues are: "
                                                f"{', '.join(sorted(self.queues)) or 'none'}")
        if what != "messages":
            return json_response(404, {"message": "Not Found"})
        if request.method != "POST":
            return json_response(405, {"message": "Method Not Allowed"}, {"Allow": "POST"})
        body = _body(request)
        text = body.get("body") if body else None
        attributes = (body or {}).get("attributes", {})
        usage = 'send {"body": "<the message>", "attributes": {"<name>": "<string>", ...}}'
        if not isinstance(text, str) or not text or set(body or {}) - {"body", "attributes"}:
            return _error(400, "invalid_request", usage)
        if len(text.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
            return _error(413, "too_large", f"a message is at most {MAX_MESSAGE_BYTES} bytes")
        if (not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES
                or not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in attributes.items())):
            return _error(400, "invalid_request", f"{usage}: at most {MAX_ATTRIBUTES} attributes, non-empty strings")
        if any(not c.isprintable() for c in text + "".join(attributes) + "".join(attributes.values())
               if c not in "\t\n\r") or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            return _error(400, "invalid_request", "a message and its attributes are printable text")
        assert self._sqs is not None
        answer = self._sqs().send_message(
            QueueUrl=self.queues[name], MessageBody=text,
            **({"MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}}
               if attributes else {}))
        return json_response(201, {"queue": name, "message_id": answer["MessageId"]})

    def _depth(self, url: str) -> int:
        from interlock.dead_letters import SqsQueue

        assert self._sqs is not None
        return SqsQueue(url, self._sqs()).depth()

    # -- the scheduler -----------------------------------------------------------------------------------

    def _scheduler(self, request: Request, path: str) -> Response:
        if path == "/":
            if request.method != "GET":
                return json_response(405, {"message": "Method Not Allowed"}, {"Allow": "GET"})
            return json_response(200, self.overview())
        if path not in ("/trigger", "/advance"):
            return json_response(404, {"message": "Not Found"})
        if request.method != "POST":
            return json_response(405, {"message": "Method Not Allowed"}, {"Allow": "POST"})
        body = _body(request)
        if path == "/trigger":
            name = body.get("schedule") if body else None
            if not isinstance(name, str) or not name:
                return _error(400, "invalid_request", 'send {"schedule": "<workflow>.<schedule>"}')
            if name not in self.scheduler.schedules:
                known = sorted(self.scheduler.schedules)
                return _error(404, "unknown_schedule", f"no workflow declares the schedule {name[:100]!r}; the "
                                                       f"schedules are: {', '.join(known) or 'none'}",
                              schedules=known)
            return json_response(202, self.scheduler.trigger(name).as_json())
        seconds = body.get("seconds") if body else None
        if (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds)
                or not 0 < seconds <= MAX_ADVANCE_SECONDS):
            return _error(400, "invalid_request", f'send {{"seconds": N}}, 0 < N <= {MAX_ADVANCE_SECONDS}')
        fired = self.scheduler.advance(float(seconds))
        return json_response(200, {"now": format_time(self.scheduler.clock()),
                                   "fired": [f.as_json() for f in fired]})

    def overview(self) -> dict[str, Any]:
        now = self.scheduler.clock()
        schedules = []
        for schedule_id, schedule in sorted(self.scheduler.schedules.items()):
            cursor = self.scheduler.cursors.get(schedule_id)
            anchor, last = (cursor.anchor, cursor.last) if cursor else (now, now)
            upcoming = firings(schedule.expression, schedule.timezone, anchor, max(last, now),
                               datetime.max.replace(tzinfo=UTC), limit=1)
            schedules.append({"schedule": schedule_id, "expression": schedule.expression,
                              "timezone": schedule.timezone,
                              "next": format_time(upcoming[0]) if upcoming else None})
        return {"now": format_time(now), "schedules": schedules}

    # -- the workflow tables -------------------------------------------------------------------------------

    def _tables(self, request: Request, path: str) -> Response:
        table, _, what = path.strip("/").partition("/")
        if table not in self.tables:
            return _error(404, "unknown_table", f"no workflow declares the table {table[:100]!r}; the tables are: "
                                                f"{', '.join(sorted(self.tables)) or 'none'}")
        if what == "changes":
            if request.method != "GET":
                return json_response(405, {"message": "Method Not Allowed"}, {"Allow": "GET"})
            return json_response(200, {"changes": list(self.streams.changes.get(table, ()))})
        if what != "items":
            return json_response(404, {"message": "Not Found"})
        if request.method == "GET":
            return json_response(200, {"items": self._scan(table)})
        if request.method not in ("PUT", "PATCH"):
            return json_response(405, {"message": "Method Not Allowed"}, {"Allow": "GET, PUT, PATCH"})
        body = _body(request)
        if body is None:
            return _error(400, "invalid_request", "send a JSON object")
        try:
            return self._put(table, body) if request.method == "PUT" else self._patch(table, body)
        except ValueError as exc:
            return _error(400, "invalid_request", str(exc))

    def _client(self) -> Any:
        return self._dynamodb()

    def _serialize(self, values: dict[str, Any]) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        try:
            return {name: serializer.serialize(_dynamo(value)) for name, value in values.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"an item is plain JSON: {exc}") from None

    def _key(self, table: str, values: Any) -> dict[str, Any]:
        names = self.keys[table]
        if not isinstance(values, dict) or set(values) != set(names):
            raise ValueError(f"the key of {table} is {{{', '.join(repr(n) for n in names)}}}")
        if not all(isinstance(values[n], str) and values[n] for n in names):
            raise ValueError("key attributes are non-empty strings")
        return self._serialize(values)

    def _put(self, table: str, body: dict[str, Any]) -> Response:
        item = body.get("item")
        if not isinstance(item, dict):
            raise ValueError('send {"item": {...}}')
        self._key(table, {n: item.get(n) for n in self.keys[table]})
        self._client().put_item(TableName=self.tables[table], Item=self._serialize(item))
        return json_response(200, {"item": item})

    def _patch(self, table: str, body: dict[str, Any]) -> Response:
        key = self._key(table, body.get("key"))
        changes = body.get("set")
        if not isinstance(changes, dict) or not changes:
            raise ValueError('send {"key": {...}, "set": {"<attribute>": <value>, ...}}')
        if set(changes) & set(self.keys[table]):
            raise ValueError("a key attribute cannot be changed")
        values = self._serialize(changes)
        names = {f"#a{i}": name for i, name in enumerate(changes)}
        client = self._client()
        try:
            answer = client.update_item(
                TableName=self.tables[table], Key=key,
                UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(changes))),
                ConditionExpression=" AND ".join(f"attribute_exists(#k{i})" for i in range(len(key))),
                ExpressionAttributeNames={**names, **{f"#k{i}": k for i, k in enumerate(key)}},
                ExpressionAttributeValues={f":v{i}": values[name] for i, name in enumerate(changes)},
                ReturnValues="ALL_NEW",
            )
        except client.exceptions.ConditionalCheckFailedException:
            return _error(404, "unknown_item", f"{table} has no item with that key")
        from interlock.kit.triggers import plain

        return json_response(200, {"item": plain(answer["Attributes"])})

    def _scan(self, table: str) -> list[dict[str, Any]]:
        from interlock.kit.triggers import plain

        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.tables[table]}
        while True:
            page = self._client().scan(**kwargs)
            items.extend(plain(i) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class RuntimeLocalApps(LocalFakes):
    """The fakes, and the runtime's own endpoints (``/_local/scheduler``, ``/_local/tables``, ``/_local/queues``)
    once it has started them (503 before)."""

    def __init__(self) -> None:
        super().__init__()
        self.triggers: TriggerEndpoints | None = None

    def handle(self, request: Request) -> Response:
        rest = request.path[len(MOUNT):]
        system, _, sub = rest.lstrip("/").partition("/")
        if system in ("scheduler", "tables", "queues"):
            if self.triggers is None:
                return json_response(503, {"message": "Service Unavailable"})
            return self.triggers.handle(request, system, "/" + sub.rstrip("/"))
        return super().handle(request)


def keys_of(partition_key: str, sort_key: str | None) -> tuple[str, ...]:
    return (partition_key, sort_key) if sort_key else (partition_key,)

