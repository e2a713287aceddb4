"""The local DynamoDB Streams and EventBridge Pipes: each watched workflow table's stream in moto, read as a pipe
reads it, each record put in the shape Pipes sends (``eventSourceARN``, the creation time in epoch seconds) and
passed through **the same filter** the CDK pipe is given (:func:`interlock.kit.triggers.status_change_pattern`,
applied by :func:`~interlock.kit.triggers.matches`); a record that matches a pipe is sent to the ingest queue as
that pipe would send it, one message per record.

The streams are moto's, so they start empty with every start of the runtime: the saved items put back at start are
INSERT records, which no status change matches; a change made before a stop and not yet read when the runtime
stopped is not sent after the restart (the poll reads every 0.2 s). What was read is kept in a short log,
``GET /_local/tables/<table>/changes``, with the run each match starts.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from interlock.kit.triggers import matches, plain
from interlock.local import get_logger
from interlock.local.polling import Poller
from interlock.models import run_id_for
from interlock.topology import StatusPipe

log = get_logger(__name__)

LOG_SIZE = 200  # the records kept for GET /_local/tables/<table>/changes, per table


def pipes_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A record from moto's GetRecords as Pipes sends it: with its stream's ARN and region, the creation time as
    epoch seconds."""
    wire = json.loads(json.dumps(record, default=str))
    wire["eventSourceARN"] = stream_arn
    wire["awsRegion"] = region
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        wire["dynamodb"]["ApproximateCreationDateTime"] = int(created.timestamp())
    return wire


class LocalStreams(Poller):
    """Reads the streams of the tables ``stream_arns`` names (declared name -> stream ARN) and sends each record a
    pipe of ``pipes`` lets through with ``send(message_body)``."""

    def __init__(self, pipes: tuple[StatusPipe, ...], stream_arns: dict[str, str], send: Callable[[str], None],
                 region: str, client: Any | None = None, poll_seconds: float = 0.2) -> None:
        super().__init__("interlock-streams", poll_seconds)
        self.pipes = pipes
        self.stream_arns = {table: arn for table, arn in stream_arns.items() if any(p.table == table for p in pipes)}
        self.send = send
        self.region = region
        self._client = client
        self.poll_seconds = poll_seconds
        self._iterators: dict[tuple[str, str], str | None] = {}  # (table, shard) -> the next iterator
        self.changes: dict[str, deque[dict[str, Any]]] = {t: deque(maxlen=LOG_SIZE) for t in self.stream_arns}
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            # moto answers DynamoDB Streams at the regional endpoint, not the per-account one botocore now derives
            # from the stream's ARN.
            self._client = boto3.client("dynamodbstreams", region_name=self.region,
                                        endpoint_url=f"https://streams.dynamodb.{self.region}.amazonaws.com")
        return self._client

    def start(self) -> None:
        if self.stream_arns:
            super().start()

    def poll_once(self) -> int:
        return len(self.poll())

    def poll(self) -> list[dict[str, Any]]:
        """Read every watched stream once; send what the pipes let through. Returns what was read (the log's
        entries)."""
        read: list[dict[str, Any]] = []
        with self._lock:
            for table, arn in self.stream_arns.items():
                for record in self._records(table, arn):
                    read.append(self._forward(table, arn, record))
        return read

    def _records(self, table: str, arn: str) -> list[dict[str, Any]]:
        shards = self.client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            key = (table, shard["ShardId"])
            if key not in self._iterators:
                self._iterators[key] = self.client.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            iterator = self._iterators[key]
            if iterator is None:
                continue  # a closed shard, read to its end
            answer = self.client.get_records(ShardIterator=iterator, Limit=1000)
            records.extend(answer.get("Records", []))
            self._iterators[key] = answer.get("NextShardIterator")
        return records

    def _forward(self, table: str, arn: str, record: dict[str, Any]) -> dict[str, Any]:
        wire = pipes_record(record, arn, self.region)
        sequence = str(wire.get("dynamodb", {}).get("SequenceNumber", ""))
        matched = [pipe for pipe in self.pipes if pipe.table == table and matches(json.loads(pipe.pattern), wire)]
        for _ in matched:  # each pipe whose filter lets it through sends it (the router dedupes by sequence number)
            self.send(json.dumps(wire, separators=(",", ":")))
        entry = {"sequence_number": sequence, "event_name": wire.get("eventName"),
                 "keys": plain(wire.get("dynamodb", {}).get("Keys", {})),
                 "status_changes": [p.name for p in matched],
                 "run_id": run_id_for(f"table:{table}:{sequence}") if matched else None}
        self.changes[table].append(entry)
        if matched:
            log.info("table %s: record %s is the status change %s", table, sequence, matched[0].id)
        return entry
