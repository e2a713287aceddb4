"""Lambda: the shared layer, and one function with its own role and log group per topology function.

A function is created with its literal environment first. Values that only exist once other resources
exist (``Ref``) and the IAM grants are added by :meth:`LambdaFunctions.wire`, after the queues, the
state machines and the API have been created from the same functions. That order is what keeps the
template free of cycles: a state machine needs its steps' ARNs, the router needs the state machine's ARN
and the approval step needs the API's URL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from interlock.topology import (
    FUNCTIONS_DIR,
    METRICS_NAMESPACE,
    UNSET_WHEN_EMPTY,
    Access,
    Function,
    Grant,
    Ref,
    RefKind,
    StateMachineType,
    Topology,
    public_base_url,
)

from infra import build_layer
from infra.constructs.ai import AiKeySecret
from infra.constructs.email import ApprovalEmail
from infra.constructs.queues import WorkQueues
from infra.constructs.secrets import WebhookSecrets
from infra.constructs.uploads import TopologyBucket
from infra.context import deployment_setting, flag_setting
from infra.nag import acknowledge
from infra.naming import construct_id, physical_name

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
CODE_EXCLUDES = ["__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache", ".ruff_cache"]

# What interlock/timeline.py and approvals.py call, nothing more: no Batch* (never used), and DeleteItem only for
# TABLE_DELETE. TransactWriteItems is authorised per item, as the Put, Update or ConditionCheck it holds.
TABLE_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem")
TABLE_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem")
TABLE_DELETE_ACTIONS = ("dynamodb:DeleteItem",)
# A workflow's own table, and its indexes: read by key or query, write an item; no scan, no batch, no delete, as for
# the timeline table (tests/infra/test_trust.py).
WORKFLOW_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem", "dynamodb:PutItem",
                          "dynamodb:UpdateItem")
# A workflow table that declares it deletes (kit.DataTable.deletes: a conversation's handled inbox messages, deleted in
# the transaction that records their turn), the table itself only.
WORKFLOW_TABLE_DELETE_ACTIONS = ("dynamodb:DeleteItem",)
# A hand-off page's conversation table, read by key or query.
WORKFLOW_TABLE_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")
# The operator's lists of runs: a query on the timeline table's index of runs, nothing else of it.
RUNS_INDEX_ACTIONS = ("dynamodb:Query",)
# The operator's redrive of a DLQ (interlock/dead_letters.py): read its messages, make them visible again, delete
# the ones moved back or done with, and its depth.
DLQ_REDRIVE_ACTIONS = ("sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                       "sqs:GetQueueAttributes")
# An approval decision, approved or rejected, is a SendTaskSuccess with the decision (interlock/approvals.py).
TASK_RESPONSE_ACTIONS = ("states:SendTaskSuccess",)

if RUNTIME.name != f"python{build_layer.PYTHON_VERSION}":
    raise RuntimeError("the layer (infra/build_layer.py) and the functions must target the same runtime")


class LayerMissingError(RuntimeError):
    pass


@dataclass(frozen=True)
class WiringTargets:
    """What the topology's ``Ref`` values and grants point at, once it exists."""

    table: dynamodb.ITable
    queues: WorkQueues
    state_machines: Mapping[str, sfn.StateMachine]
    api_url: str
    secrets: WebhookSecrets
    email: ApprovalEmail
    ai_key: AiKeySecret
    buckets: Mapping[str, TopologyBucket] = field(default_factory=dict)
    # the workflows' own tables, by declared name (infra/constructs/triggers.py)
    workflow_tables: Mapping[str, dynamodb.ITable] = field(default_factory=dict)
    # each workflow table's index names: its workers may query those indexes, by name (no wildcard)
    workflow_table_indexes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class LambdaFunction(Construct):
    """One topology function: its log group, its own role, the function."""

    def __init__(self, scope: Construct, cid: str, *, spec: Function, layer: lambda_.ILayerVersion,
                 code: lambda_.Code, reserve: bool = True) -> None:
        super().__init__(scope, cid)
        self.spec = spec
        name = physical_name(self, spec.name)
        if len(name) > 64:
            raise ValueError(f"function name {name!r} is longer than Lambda's 64 characters: shorten the stack name")
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{name}",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Interlock {spec.name}: only what its topology grants allow",
        )
        # Write its own log group, instead of the managed AWSLambdaBasicExecutionRole (logs:* on every group).
        self.log_group.grant_write(self.role)
        environment = {
            "POWERTOOLS_SERVICE_NAME": spec.name,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        environment.update({k: v for k, v in spec.env.items() if isinstance(v, str) and is_set(k, v)})
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=name,
            description=spec.description[:256],
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=code,
            handler=spec.handler,
            layers=[layer],
            role=self.role,
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=spec.reserved_concurrency if reserve else None,
            log_group=self.log_group,
            # JSON, and Lambda's own START/END/REPORT lines (system logs at INFO) left out: they were most of a
            # run's log bytes (docs/cost.md). Errors and timeouts the runtime reports are WARN and stay.
            logging_format=lambda_.LoggingFormat.JSON,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            environment=environment,
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level "
            "permissions, so CDK grants them on '*'. Every other statement of this role names its resources.",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"Pinned to {RUNTIME.name}: the shared layer is built for exactly this runtime "
            "(infra/build_layer.py) and the functions are tested on it; moving runtimes is a deliberate change.",
        )

    def resolve(self, ref: Ref, targets: WiringTargets, topology: Topology,
                functions: Mapping[str, LambdaFunction]) -> str:
        match ref.kind:
            case RefKind.TABLE_NAME:
                return targets.table.table_name
            case RefKind.QUEUE_URL:
                return targets.queues[ref.name].queue.queue_url
            case RefKind.DLQ_URL:
                return targets.queues[ref.name].dlq.queue_url
            case RefKind.STATE_MACHINE_ARN:
                return _lookup(targets.state_machines, ref.name, "state machine").state_machine_arn
            case RefKind.STATE_MACHINE_ARNS:
                return Stack.of(self).to_json_string({
                    sm.workflow: _lookup(targets.state_machines, sm.name, "state machine").state_machine_arn
                    for sm in topology.state_machines if sm.type is StateMachineType.EXPRESS})
            case RefKind.FUNCTION_ARN:
                return _lookup(functions, ref.name, "function").function.function_arn
            case RefKind.API_URL:
                return public_base_url(deployment_setting(self, "public_base_url"), targets.api_url)
            case RefKind.SECRET_PREFIX:
                return topology.secret_prefix
            case RefKind.SETTING:
                return deployment_setting(self, ref.name)
            case RefKind.WEBHOOK_SOURCES:
                return topology.enabled_sources(deployment_setting(self, "enabled_sources"))
            case RefKind.AI_KEY_SECRET:
                return targets.ai_key.name
            case RefKind.BUCKET_NAME:
                return _lookup(targets.buckets, ref.name, "bucket").bucket.bucket_name
            case RefKind.WORKFLOW_TABLE_NAME:
                return _lookup(targets.workflow_tables, ref.name, "workflow table").table_name
        raise ValueError(f"function {self.spec.name!r}: no CDK resolution for {ref!r}")

    def apply(self, grant: Grant, targets: WiringTargets) -> None:
        table_arns = [targets.table.table_arn]
        match grant.access:
            case Access.TABLE_READ:
                iam.Grant.add_to_principal(grantee=self.role, actions=list(TABLE_READ_ACTIONS),
                                           resource_arns=table_arns)
            case Access.TABLE_WRITE:
                iam.Grant.add_to_principal(grantee=self.role, actions=list(TABLE_WRITE_ACTIONS),
                                           resource_arns=table_arns)
            case Access.TABLE_DELETE:
                iam.Grant.add_to_principal(grantee=self.role, actions=list(TABLE_DELETE_ACTIONS),
                                           resource_arns=table_arns)
            case Access.QUEUE_SEND:
                iam.Grant.add_to_principal(grantee=self.role, actions=["sqs:SendMessage"],
                                           resource_arns=[targets.queues[grant.target].queue.queue_arn])
            case Access.STATES_START:
                _lookup(targets.state_machines, grant.target, "state machine").grant_start_execution(self.role)
            case Access.STATES_CALLBACK:
                _lookup(targets.state_machines, grant.target, "state machine")  # it exists
                # By name, not by reference: a wait machine names the function that resumes it (the wait worker
                # resumes its own wait when the event came first), and a reference would make a cycle.
                arn = Stack.of(self).format_arn(service="states", resource="stateMachine",
                                                resource_name=physical_name(self, grant.target),
                                                arn_format=ArnFormat.COLON_RESOURCE_NAME)
                iam.Grant.add_to_principal(grantee=self.role, actions=list(TASK_RESPONSE_ACTIONS),
                                           resource_arns=[arn])
            case Access.SES_SEND:
                targets.email.grant_send(self.role)
            case Access.SECRETS_READ:
                targets.secrets.grant_read(self.role, grant.target)
            case Access.CONNECTOR_SECRET_READ:
                name = deployment_setting(self, grant.target).strip()
                if name:  # the connector's secret, when the deployment names one (its value: docs/deploy.md)
                    secretsmanager.Secret.from_secret_name_v2(self, f"Secret-{grant.target}", name).grant_read(
                        self.role)
            case Access.AI_KEY_READ:
                targets.ai_key.grant_read(self.role)
            case Access.BUCKET_PUT | Access.BUCKET_READ:
                _lookup(targets.buckets, grant.target, "bucket").grant(self.role, grant.access)
            case Access.RUNS_INDEX_READ:
                iam.Grant.add_to_principal(grantee=self.role, actions=list(RUNS_INDEX_ACTIONS),
                                           resource_arns=[f"{targets.table.table_arn}/index/{grant.target}"])
            case Access.DLQ_REDRIVE:
                iam.Grant.add_to_principal(grantee=self.role, actions=list(DLQ_REDRIVE_ACTIONS),
                                           resource_arns=[targets.queues[grant.target].dlq.queue_arn])
            case Access.WORKFLOW_TABLE_READ_WRITE:
                table = _lookup(targets.workflow_tables, grant.target, "workflow table")
                iam.Grant.add_to_principal(grantee=self.role, actions=list(WORKFLOW_TABLE_ACTIONS),
                                           resource_arns=[table.table_arn, *(
                                               f"{table.table_arn}/index/{index}"
                                               for index in targets.workflow_table_indexes.get(grant.target, ()))])
            case Access.WORKFLOW_TABLE_DELETE | Access.WORKFLOW_TABLE_READ:
                table = _lookup(targets.workflow_tables, grant.target, "workflow table")
                actions = (WORKFLOW_TABLE_DELETE_ACTIONS if grant.access is Access.WORKFLOW_TABLE_DELETE
                           else WORKFLOW_TABLE_READ_ACTIONS)
                iam.Grant.add_to_principal(grantee=self.role, actions=list(actions), resource_arns=[table.table_arn])
            case _:
                raise ValueError(f"function {self.spec.name!r}: no CDK realisation for grant {grant!r}")


def is_set(key: str, value: str) -> bool:
    """Whether ``key`` goes into the environment with ``value``: a variable of ``UNSET_WHEN_EMPTY`` is left out
    when empty (the openai SDK reads ``OPENAI_BASE_URL`` itself and takes an empty one for a URL)."""
    return bool(value) or key not in UNSET_WHEN_EMPTY


T = TypeVar("T")


def _lookup(items: Mapping[str, T], name: str, what: str) -> T:
    try:
        return items[name]
    except KeyError:
        raise KeyError(f"no {what} named {name!r} in the topology") from None


class LambdaFunctions(Construct):
    def __init__(self, scope: Construct, cid: str, *, topology: Topology, layer_dir: Path,
                 functions_dir: Path = FUNCTIONS_DIR) -> None:
        super().__init__(scope, cid)
        self.topology = topology
        if not (layer_dir / "python" / "interlock" / "__init__.py").is_file():
            raise LayerMissingError(
                f"the Lambda layer is not built: {layer_dir / 'python'} has no interlock package. "
                "Run `make layer` (python -m infra.build_layer) before synthesising the stack."
            )
        if not functions_dir.is_dir():
            raise FileNotFoundError(f"the functions directory {functions_dir} does not exist")
        self.layer = lambda_.LayerVersion(
            self,
            "SharedLayer",
            code=lambda_.Code.from_asset(str(layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="Interlock shared code (interlock package) and its runtime dependencies",
            # No function pins a published version, so a superseded layer version is not needed: without
            # this every deployment that changes the layer would leave one behind.
            removal_policy=RemovalPolicy.DESTROY,
        )
        code = lambda_.Code.from_asset(str(functions_dir), exclude=CODE_EXCLUDES)
        reserve = flag_setting(self, "reserved_concurrency")
        self.by_name: dict[str, LambdaFunction] = {
            spec.name: LambdaFunction(self, construct_id(spec.name), spec=spec, layer=self.layer, code=code,
                                      reserve=reserve)
            for spec in topology.functions
        }

    def __getitem__(self, name: str) -> LambdaFunction:
        return _lookup(self.by_name, name, "function")

    def __iter__(self) -> Iterator[LambdaFunction]:
        return iter(self.by_name.values())

    def wire(self, targets: WiringTargets) -> None:
        """Resolve every ``Ref`` in the functions' environments and apply every grant."""
        for fn in self:
            for key, value in fn.spec.env.items():
                if isinstance(value, Ref):
                    resolved = fn.resolve(value, targets, self.topology, self.by_name)
                    if is_set(key, resolved):
                        fn.function.add_environment(key, resolved)
            for grant in fn.spec.grants:
                fn.apply(grant, targets)
