"""Step Functions: each workflow's two state machines, from the ASL files of its package.

A workflow's automatic path is an EXPRESS machine; its wait, a STANDARD one (docs/workflows.md). The ASL names
its workers with ``${Worker_<job>}`` and the other machine with ``${StateMachine_<kind>}``; the topology maps
each, and the machine gets the workers' ARNs and the other machine's ARN (built from its name: the two machines
start each other, so neither can reference the other's resource) as ``DefinitionSubstitutions``. Its role may
invoke exactly those workers and start exactly that machine. Executions are logged at level ERROR, without
execution data: a Standard execution's history is kept by Step Functions itself, and an Express execution's
errors are what the watchdog's subscription filter reads; approval task tokens and ticket contents never reach
the logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from interlock.topology import StateMachine, StateMachineType

from infra.constructs.functions import LOG_RETENTION, LambdaFunctions
from infra.nag import acknowledge
from infra.naming import construct_id, physical_name

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class DefinitionError(ValueError):
    pass


def read_definition(spec: StateMachine) -> str:
    """The ASL text of ``spec``, checked against its substitutions: every placeholder mapped, none extra."""
    text = spec.definition_path.read_text(encoding="utf-8")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"{spec.definition_path} is not valid JSON: {exc}") from exc
    used = set(PLACEHOLDER.findall(text))
    mapped = set(spec.function_substitutions) | set(spec.state_machine_substitutions)
    if used != mapped:
        raise DefinitionError(
            f"state machine {spec.name!r}: placeholders in {spec.definition_file} without a function: "
            f"{sorted(used - mapped)}; substitutions the ASL does not use: {sorted(mapped - used)}"
        )
    return text


def state_machine_arn(scope: Construct, name: str) -> str:
    """The ARN of the topology state machine ``name``, from its physical name (no reference to the resource)."""
    return Stack.of(scope).format_arn(service="states", resource="stateMachine",
                                      resource_name=physical_name(scope, name),
                                      arn_format=ArnFormat.COLON_RESOURCE_NAME)


class Workflow(Construct):
    def __init__(self, scope: Construct, cid: str, *, spec: StateMachine, functions: LambdaFunctions) -> None:
        super().__init__(scope, cid)
        self.spec = spec
        name = physical_name(self, spec.name)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        steps = {placeholder: functions[fn].function for placeholder, fn in spec.function_substitutions.items()}
        others = {placeholder: state_machine_arn(self, other)
                  for placeholder, other in spec.state_machine_substitutions.items()}
        express = spec.type is StateMachineType.EXPRESS
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.EXPRESS if express else sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(read_definition(spec)),
            definition_substitutions={**{placeholder: fn.function_arn for placeholder, fn in steps.items()}, **others},
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ERROR, include_execution_data=False),
            tracing_enabled=True,
        )
        # Both task forms in the ASL (a function ARN as Resource, and lambda:invoke.waitForTaskToken with
        # FunctionName) call lambda:InvokeFunction on the unqualified function ARN, and nothing else.
        arns = {fn.node.path: fn.function_arn for fn in steps.values()}
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[arns[k] for k in sorted(arns)])
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-SF1",
            "Logged at ERROR, not ALL: a Standard execution's full history is kept by Step Functions itself (ALL "
            "would pay to log it twice), and an Express execution's ERROR records are what the watchdog's "
            "subscription filter reads; each step's outcome is on the run's timeline. See docs/cost.md.",
        )
        if others:
            # states:startExecution (request-response): the hand-over to the wait, and the wait's resumption.
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[others[k] for k in sorted(others)])
            )
        acknowledge(
            self.state_machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs delivery (logs:CreateLogDelivery, logs:PutResourcePolicy, ...) and X-Ray "
            "(xray:PutTraceSegments, ...) support no resource-level permissions; the Lambda invoke "
            "statement names each worker, the StartExecution statement the workflow's other machine.",
        )


class Workflows(Construct):
    def __init__(self, scope: Construct, cid: str, *, specs: tuple[StateMachine, ...],
                 functions: LambdaFunctions) -> None:
        super().__init__(scope, cid)
        self.by_name: dict[str, Workflow] = {
            spec.name: Workflow(self, construct_id(spec.name), spec=spec, functions=functions) for spec in specs
        }

    @property
    def state_machines(self) -> dict[str, sfn.StateMachine]:
        return {name: wf.state_machine for name, wf in self.by_name.items()}

    def __iter__(self) -> Iterator[Workflow]:
        return iter(self.by_name.values())
