"""The triggers that are not webhooks, and the workflows' own tables, from the topology (docs/finance.md):

* :class:`WorkflowTables`: each table a workflow declares, made as the timeline table is (on demand, point-in-time
  recovery, encrypted at rest by DynamoDB, retained), its stream on (new and old images) when a status change
  watches it;
* :class:`Schedules`: one EventBridge Scheduler schedule per workflow schedule, its target the ingest queue with
  the fixed message Scheduler fills the scheduled time into, flexible time window off, a retry policy, and the
  queue's DLQ as its dead-letter queue; one role for them, which may send to those two queues and nothing else;
* :class:`StatusPipes`: one EventBridge Pipe per status change, from the table's stream through the status-change
  filter to the ingest queue, records it cannot deliver to the queue's DLQ; one role per pipe, reading its
  table's stream and sending to those two queues.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct
from interlock.topology import ScheduleTarget, StatusPipe, WorkflowTable

from infra.constructs.queues import WorkQueues
from infra.nag import acknowledge
from infra.naming import construct_id


class WorkflowTables(Construct):
    def __init__(self, scope: Construct, cid: str, *, specs: tuple[WorkflowTable, ...]) -> None:
        super().__init__(scope, cid)
        self.by_name: dict[str, dynamodb.Table] = {}
        for spec in specs:
            # No physical name, as the timeline table: retained when the stack goes, so a fixed name would block
            # the next deployment of a stack of the same name.
            self.by_name[spec.name] = dynamodb.Table(
                self,
                construct_id(spec.name),
                partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=(dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING)
                          if spec.sort_key else None),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True),
                stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES if spec.stream else None,
                removal_policy=RemovalPolicy.RETAIN,
                deletion_protection=True,  # a workflow's records of its own, as the timeline: no accidental delete
            )
            for index, partition_key, sort_key in spec.indexes:
                self.by_name[spec.name].add_global_secondary_index(
                    index_name=index,
                    partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
                    sort_key=(dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING)
                              if sort_key else None),
                    projection_type=dynamodb.ProjectionType.ALL,
                )

    def __getitem__(self, name: str) -> dynamodb.Table:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"no workflow table named {name!r} in the topology") from None


class Schedules(Construct):
    def __init__(self, scope: Construct, cid: str, *, specs: tuple[ScheduleTarget, ...], queues: WorkQueues) -> None:
        super().__init__(scope, cid)
        self.by_id: dict[str, scheduler.CfnSchedule] = {}
        if not specs:
            return
        account = Stack.of(self).account
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": account}}),
            description="Interlock schedules: send their message to the ingest queue (or its DLQ), nothing else",
        )
        for spec in specs:
            queue = queues[spec.queue]
            iam.Grant.add_to_principal(grantee=self.role, actions=["sqs:SendMessage"],
                                       resource_arns=[queue.queue.queue_arn, queue.dlq.queue_arn])
            self.by_id[spec.id] = scheduler.CfnSchedule(
                self,
                construct_id(f"{spec.workflow}_{spec.name}"),
                description=f"Interlock: workflow {spec.workflow}, schedule {spec.name}"[:512],
                schedule_expression=spec.expression,
                schedule_expression_timezone=spec.timezone,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                state="ENABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=queue.queue.queue_arn,
                    role_arn=self.role.role_arn,
                    input=spec.message,
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_event_age_in_seconds=spec.max_event_age_seconds,
                        maximum_retry_attempts=spec.retry_attempts),
                    dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=queue.dlq.queue_arn),
                ),
            )


class StatusPipes(Construct):
    def __init__(self, scope: Construct, cid: str, *, specs: tuple[StatusPipe, ...],
                 tables: Mapping[str, dynamodb.Table], queues: WorkQueues) -> None:
        super().__init__(scope, cid)
        self.by_id: dict[str, pipes.CfnPipe] = {}
        account = Stack.of(self).account
        for spec in specs:
            table = tables[spec.table]
            if table.table_stream_arn is None:
                raise ValueError(f"status change {spec.id!r} watches table {spec.table!r}, which has no stream")
            queue = queues[spec.queue]
            holder = Construct(self, construct_id(f"{spec.workflow}_{spec.name}"))
            role = iam.Role(
                holder,
                "Role",
                assumed_by=iam.ServicePrincipal("pipes.amazonaws.com", conditions={
                    "StringEquals": {"aws:SourceAccount": account}}),
                description=f"Interlock status change {spec.id}: read its table's stream, send to the ingest queue",
            )
            table.grant_stream_read(role)
            iam.Grant.add_to_principal(grantee=role, actions=["sqs:SendMessage"],
                                       resource_arns=[queue.queue.queue_arn, queue.dlq.queue_arn])
            acknowledge(
                role,
                "AwsSolutions-IAM5[Resource::*]",
                "dynamodb:ListStreams supports no resource-level permissions, so CDK's grantStreamRead grants it on "
                "'*'; reading a stream (DescribeStream, GetRecords, GetShardIterator) is granted on this table's "
                "stream alone.",
            )
            self.by_id[spec.id] = pipes.CfnPipe(
                holder,
                "Pipe",
                description=f"Interlock: workflow {spec.workflow}, status change {spec.name}"[:512],
                role_arn=role.role_arn,
                source=table.table_stream_arn,
                source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                    dynamo_db_stream_parameters=pipes.CfnPipe.PipeSourceDynamoDBStreamParametersProperty(
                        starting_position="LATEST",
                        batch_size=spec.batch_size,
                        maximum_retry_attempts=spec.retry_attempts,
                        maximum_record_age_in_seconds=spec.max_record_age_seconds,
                        on_partial_batch_item_failure="AUTOMATIC_BISECT",
                        dead_letter_config=pipes.CfnPipe.DeadLetterConfigProperty(arn=queue.dlq.queue_arn),
                    ),
                    filter_criteria=pipes.CfnPipe.FilterCriteriaProperty(
                        filters=[pipes.CfnPipe.FilterProperty(pattern=spec.pattern)]),
                ),
                target=queue.queue.queue_arn,
            )
            # The role's policy before the pipe: a pipe created first cannot read its source.
            self.by_id[spec.id].node.add_dependency(role)
