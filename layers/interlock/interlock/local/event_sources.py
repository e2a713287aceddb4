"""The SQS event source mapping, emulated: poll a queue, invoke its consumer, delete what succeeded.

Behaves as Lambda's mapping with ``ReportBatchItemFailures`` on (what the stack configures):

* a batch of up to ``batch_size`` messages, gathered for up to ``max_batching_window_seconds``;
* the event is Lambda's SQS event, record for record (``messageId``, ``receiptHandle``, ``body``,
  ``attributes``, ``messageAttributes`` in Lambda's camelCase shape, ``md5OfBody``, ``eventSource``,
  ``eventSourceARN``, ``awsRegion``);
* the messages named in ``batchItemFailures`` stay on the queue, the others are deleted; if the
  function fails, or its answer names an unknown or empty ``itemIdentifier``, the whole batch stays;
* what stays becomes visible again after the queue's visibility timeout, and SQS (moto) moves a message
  to the DLQ once it has been received more than ``maxReceiveCount`` times. Nothing is retried here.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from interlock.local import get_logger
from interlock.local.functions import Invocation
from interlock.local.polling import Poller
from interlock.topology import Queue

log = get_logger(__name__)

MAX_RECEIVE = 10  # SQS's ReceiveMessage limit per call
Invoke = Callable[[str, Any], Invocation]


def lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attributes -> the camelCase shape Lambda puts in the event."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        item: dict[str, Any] = {
            "stringListValues": list(value.get("StringListValues", [])),
            "binaryListValues": [_b64(v) for v in value.get("BinaryListValues", [])],
            "dataType": value["DataType"],
        }
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = _b64(value["BinaryValue"])
        converted[name] = item
    return converted


def _b64(value: bytes | str) -> str:
    return base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode()


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message["MD5OfBody"],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def failed_message_ids(invocation: Invocation, message_ids: list[str]) -> set[str]:
    """The messages to leave on the queue, by Lambda's rules for a partial batch response."""
    everything = set(message_ids)
    if not invocation.ok:
        return everything
    answer = invocation.payload
    if answer is None or answer == {}:
        return set()
    if not isinstance(answer, dict):
        log.warning("the consumer's answer is not a batch response; the whole batch is kept")
        return everything
    failures = answer.get("batchItemFailures")
    if failures is None or failures == []:
        return set()
    if not isinstance(failures, list):
        return everything
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            log.warning("batchItemFailures names %r, not a message of the batch; the whole batch is kept",
                        identifier)
            return everything
        failed.add(identifier)
    return failed


class SqsEventSource(Poller):
    """One queue's mapping: :meth:`poll_once` is one poll-invoke-delete cycle, :meth:`start` loops it."""

    def __init__(self, queue: Queue, queue_url: str, queue_arn: str, invoke: Invoke, sqs: Any,
                 region: str, idle_seconds: float = 0.2) -> None:
        super().__init__(f"sqs-{queue.name}", idle_seconds)
        self.queue = queue
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.invoke = invoke
        self.sqs = sqs
        self.region = region

    def poll_once(self) -> int:
        """Receive a batch, invoke the consumer, delete the successes; the number of messages handled."""
        messages = self._receive_batch()
        if not messages:
            return 0
        event = {"Records": [sqs_record(m, self.queue_arn, self.region) for m in messages]}
        invocation = self.invoke(self.queue.consumer, event)
        ids = [m["MessageId"] for m in messages]
        failed = failed_message_ids(invocation, ids)
        done = [m for m in messages if m["MessageId"] not in failed]
        self._delete(done)
        if failed:
            log.info("%s: %d of %d messages left for redelivery", self.queue.name, len(failed), len(messages))
        return len(messages)

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.queue.max_batching_window_seconds
        while len(batch) < self.queue.batch_size:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(MAX_RECEIVE, self.queue.batch_size - len(batch)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            received = answer.get("Messages", [])
            batch.extend(received)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                break
            if not received:
                self._stop.wait(min(self.idle_seconds, remaining))
        return batch

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), MAX_RECEIVE):
            chunk = messages[start:start + MAX_RECEIVE]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            answer = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for failure in answer.get("Failed", []):
                log.warning("%s: could not delete a message: %s", self.queue.name, failure.get("Message"))
