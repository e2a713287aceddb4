"""moto's SQS as the local runtime patches it (interlock.local.moto_sqs): a receive no longer recounts the whole
queue for each message it hands out, and a message past its retention period is still not delivered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from interlock.local import moto_sqs
from moto import mock_aws
from moto.sqs.models import Queue


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        uninstall = moto_sqs.install()
        try:
            yield boto3.client("sqs", region_name="us-east-1")
        finally:
            uninstall()


def _attribute_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each computation of the queue's attributes as a whole (its message counts: a pass over every message)."""
    reads: list[int] = []
    original = Queue.approximate_number_of_messages.fget  # type: ignore[attr-defined]

    def counted(self: Queue) -> Any:
        reads.append(1)
        return original(self)

    monkeypatch.setattr(Queue, "approximate_number_of_messages", property(counted))
    return reads


def test_a_receive_does_not_compute_the_queues_attributes_per_message(
    sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqs.create_queue(QueueName="backlog")["QueueUrl"]
    for i in range(0, 300, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": f"m{i + j}"} for j in range(10)])
    reads = _attribute_reads(monkeypatch)

    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    assert len(received) == 10
    assert reads == []  # unpatched, one whole computation (over all 300 messages) per message received


def test_a_message_past_its_retention_period_is_not_delivered(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    assert "Messages" in sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)  # within its retention: delivered
    from moto.sqs import models

    now = time.time()
    monkeypatch.setattr(models, "unix_time", lambda *_: now + 61)

    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_a_send_does_not_compute_the_queues_attributes(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
    reads = _attribute_reads(monkeypatch)

    sqs.send_message(QueueUrl=url, MessageBody="ticket")

    assert reads == []
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1" and reads  # outside a send, the attributes are moto's


def test_a_fifo_queue_with_content_based_deduplication_still_drops_a_repeated_body(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="runs.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]

    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    sqs.send_message(QueueUrl=url, MessageBody="other", MessageGroupId="g")

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "2"
