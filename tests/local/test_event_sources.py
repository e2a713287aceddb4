"""The SQS event source mapping: Lambda's SQS event, partial batch failures, redelivery and the DLQ."""

from __future__ import annotations

import json
import time
from typing import Any

from interlock.local.cloud import LocalCloud
from interlock.local.event_sources import SqsEventSource, failed_message_ids
from interlock.local.functions import Invocation, LambdaError
from interlock.topology import Topology


class Consumer:
    """Fails every record whose body is "fail"; raises when told to."""

    def __init__(self, raise_error: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.raise_error = raise_error

    def __call__(self, function: str, event: dict[str, Any]) -> Invocation:
        self.events.append(event)
        if self.raise_error:
            return Invocation(function, "r", error=LambdaError("RuntimeError", "boom", "r"))
        failed = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"]
        return Invocation(function, "r", payload={"batchItemFailures": failed})


def _source(cloud: LocalCloud, topology: Topology, consumer: Consumer) -> SqsEventSource:
    queue = topology.queue("work")
    return SqsEventSource(queue, cloud.deployed.queue_urls["work"], cloud.queue_arns["work"], consumer,
                          cloud.client("sqs"), "us-east-1", idle_seconds=0.01)


def _bodies(cloud: LocalCloud, url: str) -> list[str]:
    answer = cloud.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [m["Body"] for m in answer.get("Messages", [])]


def test_the_event_is_lambdas_sqs_event(cloud: LocalCloud, topology: Topology) -> None:
    sqs = cloud.client("sqs")
    sqs.send_message(QueueUrl=cloud.deployed.queue_urls["work"], MessageBody=json.dumps({"n": 1}),
                     MessageAttributes={"source": {"DataType": "String", "StringValue": "form"}})
    consumer = Consumer()

    assert _source(cloud, topology, consumer).poll_once() == 1

    (record,) = consumer.events[0]["Records"]
    assert record["body"] == '{"n": 1}'
    assert record["messageId"] and record["receiptHandle"] and record["md5OfBody"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:interlock-work"
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} <= record["attributes"].keys()
    assert record["messageAttributes"] == {
        "source": {"stringValue": "form", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    }
    assert record["md5OfMessageAttributes"]


def test_a_failed_item_is_redelivered_then_lands_in_the_dlq_while_successes_are_deleted(
    cloud: LocalCloud, topology: Topology
) -> None:
    # Given a batch with one bad message, on a queue with maxReceiveCount 2 and no visibility delay
    url = cloud.deployed.queue_urls["work"]
    for body in ("ok-1", "fail", "ok-2"):
        cloud.client("sqs").send_message(QueueUrl=url, MessageBody=body)
    consumer = Consumer()
    source = _source(cloud, topology, consumer)

    # When the mapping polls until the queue is empty
    handled = [source.poll_once() for _ in range(4)]

    # Then the successes went once, the failure was delivered twice, then moved to the DLQ by SQS
    assert handled == [3, 1, 0, 0]
    delivered = [r["body"] for e in consumer.events for r in e["Records"]]
    assert sorted(delivered) == ["fail", "fail", "ok-1", "ok-2"]
    assert consumer.events[1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert _bodies(cloud, url) == []
    assert _bodies(cloud, cloud.dlq_url("work")) == ["fail"]


def test_when_the_consumer_fails_the_whole_batch_stays(cloud: LocalCloud, topology: Topology) -> None:
    url = cloud.deployed.queue_urls["work"]
    cloud.client("sqs").send_message(QueueUrl=url, MessageBody="ok")

    _source(cloud, topology, Consumer(raise_error=True)).poll_once()

    assert _bodies(cloud, url) == ["ok"]


def test_partial_batch_responses_follow_lambdas_rules() -> None:
    ids = ["a", "b"]

    def answer(payload: Any) -> set[str]:
        return failed_message_ids(Invocation("f", "r", payload=payload), ids)

    assert answer(None) == set()
    assert answer({}) == set()
    assert answer({"batchItemFailures": []}) == set()
    assert answer({"batchItemFailures": [{"itemIdentifier": "b"}]}) == {"b"}
    assert answer({"batchItemFailures": [{"itemIdentifier": "zzz"}]}) == {"a", "b"}
    assert answer({"batchItemFailures": [{"itemIdentifier": ""}]}) == {"a", "b"}
    assert answer({"batchItemFailures": [{"id": "a"}]}) == {"a", "b"}
    assert answer("not an object") == {"a", "b"}


def test_the_poller_thread_starts_and_stops_cleanly(cloud: LocalCloud, topology: Topology) -> None:
    consumer = Consumer()
    source = _source(cloud, topology, consumer)
    source.start()
    assert source.running
    cloud.client("sqs").send_message(QueueUrl=cloud.deployed.queue_urls["work"], MessageBody="ok")

    deadline = time.monotonic() + 5
    while not consumer.events and time.monotonic() < deadline:
        time.sleep(0.01)
    source.stop(timeout=2)

    assert consumer.events
    assert not source.running
