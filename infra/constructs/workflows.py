"""Step Functions: one STANDARD state machine per topology state machine, from its ASL file.

The ASL names its Lambda steps with ``${Placeholder}``s; the topology maps each to a function and the
state machine gets the functions' ARNs as ``DefinitionSubstitutions``. Its role may invoke exactly those
functions. Execution history is logged at level ALL *without execution data*: approval task tokens and
ticket contents never reach the logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from interlock.topology import StateMachine

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
    mapped = set(spec.function_substitutions)
    if used != mapped:
        raise DefinitionError(
            f"state machine {spec.name!r}: placeholders in {spec.definition_file} without a function: "
            f"{sorted(used - mapped)}; substitutions the ASL does not use: {sorted(mapped - used)}"
        )
    return text


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
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(read_definition(spec)),
            definition_substitutions={placeholder: fn.function_arn for placeholder, fn in steps.items()},
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
        )
        # Both task forms in the ASL (a function ARN as Resource, and lambda:invoke.waitForTaskToken with
        # FunctionName) call lambda:InvokeFunction on the unqualified function ARN, and nothing else.
        arns = {fn.node.path: fn.function_arn for fn in steps.values()}
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[arns[k] for k in sorted(arns)])
        )
        acknowledge(
            self.state_machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs delivery (logs:CreateLogDelivery, logs:PutResourcePolicy, ...) and X-Ray "
            "(xray:PutTraceSegments, ...) support no resource-level permissions; the Lambda invoke "
            "statement names each step function.",
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
