"""SQS work queues, each with its dead-letter queue, fed to its consumer function by an event source."""

from __future__ import annotations

from collections.abc import Iterator

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from interlock.topology import Queue

from infra.naming import construct_id, physical_name


def dead_letter_queue(scope: Construct, name: str, retention_days: int) -> sqs.Queue:
    """A DLQ as every DLQ of the stack is: named from the topology, encrypted, SSL only, kept for days."""
    return sqs.Queue(
        scope,
        "DeadLetterQueue",
        queue_name=physical_name(scope, name),
        retention_period=Duration.days(retention_days),
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
    )


class WorkQueue(Construct):
    """One topology queue: the queue, its DLQ, and (once connected) its consumer's event source."""

    def __init__(self, scope: Construct, cid: str, *, spec: Queue) -> None:
        super().__init__(scope, cid)
        self.spec = spec
        self.dlq = dead_letter_queue(self, spec.dlq_name, spec.dlq_retention_days)
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=physical_name(self, spec.name),
            retention_period=Duration.days(spec.retention_days),
            visibility_timeout=Duration.seconds(spec.visibility_timeout_seconds),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=spec.max_receive_count, queue=self.dlq),
        )

    def connect_consumer(self, consumer: lambda_.Function, consumer_timeout_seconds: int,
                         consumer_reserved_concurrency: int | None = None) -> None:
        maximum = self.spec.maximum_concurrency
        if maximum is not None and not 2 <= maximum <= 1000:
            raise ValueError(f"queue {self.spec.name!r}: maximum_concurrency {maximum} is outside SQS event "
                             "sources' 2..1000")
        reserved = consumer_reserved_concurrency
        if maximum is not None and reserved is not None and reserved < maximum:
            # The event source would start invocations the reservation throttles: what the cap is there to avoid.
            raise ValueError(f"queue {self.spec.name!r}: its consumer {self.spec.consumer!r}'s reserved concurrency "
                             f"{consumer_reserved_concurrency} is below the queue's maximum_concurrency {maximum}")
        if self.spec.visibility_timeout_seconds < consumer_timeout_seconds:
            # Lambda refuses the mapping otherwise; say which topology values disagree.
            raise ValueError(
                f"queue {self.spec.name!r}: visibility timeout {self.spec.visibility_timeout_seconds}s is "
                f"shorter than its consumer {self.spec.consumer!r}'s timeout {consumer_timeout_seconds}s"
            )
        window = self.spec.max_batching_window_seconds
        consumer.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=self.spec.batch_size,
                max_batching_window=Duration.seconds(window) if window else None,
                report_batch_item_failures=True,
                max_concurrency=maximum,
            )
        )


class WorkQueues(Construct):
    def __init__(self, scope: Construct, cid: str, *, specs: tuple[Queue, ...]) -> None:
        super().__init__(scope, cid)
        self.by_name: dict[str, WorkQueue] = {
            spec.name: WorkQueue(self, construct_id(spec.name), spec=spec) for spec in specs
        }

    def __getitem__(self, name: str) -> WorkQueue:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"no queue named {name!r} in the topology") from None

    def __iter__(self) -> Iterator[WorkQueue]:
        return iter(self.by_name.values())
