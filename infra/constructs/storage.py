"""The run timeline table: run records, ordered timeline entries, dedupe keys and approval records."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct
from interlock.topology import Table


class TimelineStorage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, spec: Table) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        # No physical name: the table is retained when the stack goes, and a fixed name would block
        # the next deployment of a stack of the same name.
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=RemovalPolicy.RETAIN,
            # Every run's timeline: no delete (from the console, the API or a replacement) without first
            # turning this off.
            deletion_protection=True,
        )
        for index in spec.indexes:  # docs/operators.md, The index
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=dynamodb.Attribute(name=index.partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=index.sort_key, type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.INCLUDE,
                non_key_attributes=list(index.projection),
            )
