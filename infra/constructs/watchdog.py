"""Execution watches: EventBridge rules on Step Functions' execution status changes, each feeding a function.

For each topology :class:`~interlock.topology.ExecutionWatch`, a rule on the default event bus matching
``source: aws.states``, ``detail-type: Step Functions Execution Status Change`` and the watch's statuses of
its state machines (by ARN), whose target is the watch's function, and one dead-letter queue that catches
what would otherwise be lost on either leg of the delivery:

* EventBridge could not invoke the function (throttled, denied, deleted): it retries with backoff for up
  to ``retry_attempts`` times or ``max_event_age_seconds``, then sends the event to the DLQ;
* the function was invoked (asynchronously) but failed: Lambda retries it ``async_retry_attempts`` times,
  then sends the invocation record to the same DLQ, as the function's on-failure destination. Lambda sends
  it with the function's role, so that role may send to this DLQ and to nothing else beyond its grants.

The DLQ's alarm is part of the monitoring (``infra/constructs/monitoring.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as logs_destinations
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from interlock.topology import ExecutionWatch

from infra.constructs.functions import LambdaFunctions
from infra.constructs.queues import dead_letter_queue
from infra.nag import acknowledge
from infra.naming import construct_id, physical_name

SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"
EXPRESS_ENDED_PATTERN = ('{ ($.type = "ExecutionFailed") || ($.type = "ExecutionTimedOut") || '
                         '($.type = "ExecutionAborted") }')


class ExecutionWatchRule(Construct):
    """One topology execution watch: its DLQ, its rule and the rule's target."""

    def __init__(self, scope: Construct, cid: str, *, spec: ExecutionWatch, functions: LambdaFunctions,
                 state_machines: Mapping[str, sfn.StateMachine],
                 log_groups: Mapping[str, logs.ILogGroup] | None = None) -> None:
        super().__init__(scope, cid)
        self.spec = spec
        log_groups = log_groups or {}
        missing = sorted((set(spec.state_machines) | set(spec.express_state_machines)) - set(state_machines))
        if missing:
            raise KeyError(f"execution watch {spec.name!r} watches state machines not in the topology: {missing}")
        target = functions[spec.function]
        self.dlq = dead_letter_queue(self, spec.dlq_name, spec.dlq_retention_days)
        acknowledge(
            self.dlq,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: of an EventBridge rule target and of a Lambda function's "
            "asynchronous invocations, which cdk-nag does not recognise as DLQ uses (it only looks for SQS "
            "redrive policies). Its depth raises an alarm.",
        )
        arns = [state_machines[name].state_machine_arn for name in spec.state_machines]
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=physical_name(self, spec.name),
            description=(f"{', '.join(spec.statuses)} executions of {', '.join(spec.state_machines)} "
                         f"-> {spec.function}")[:512],
            event_pattern=events.EventPattern(
                source=[SOURCE],
                detail_type=[DETAIL_TYPE],
                detail={"status": list(spec.statuses), "stateMachineArn": arns},
            ),
        )
        self.rule.add_target(targets.LambdaFunction(
            target.function,
            dead_letter_queue=self.dlq,
            retry_attempts=spec.retry_attempts,
            max_event_age=Duration.seconds(spec.max_event_age_seconds),
        ))
        target.function.configure_async_invoke(
            retry_attempts=spec.async_retry_attempts,
            on_failure=destinations.SqsDestination(self.dlq),
        )
        # Express executions send no status-change events: their log groups (level ERROR) hold the ending
        # records, which a subscription filter delivers to the same function (asynchronously: same retries, same DLQ).
        self.subscriptions = [
            logs.SubscriptionFilter(
                self,
                f"{construct_id(name)}Ended",
                log_group=log_groups[name],
                destination=logs_destinations.LambdaDestination(target.function),
                filter_pattern=logs.FilterPattern.literal(EXPRESS_ENDED_PATTERN),
            )
            for name in spec.express_state_machines
        ]


class ExecutionWatches(Construct):
    def __init__(self, scope: Construct, cid: str, *, specs: tuple[ExecutionWatch, ...], functions: LambdaFunctions,
                 state_machines: Mapping[str, sfn.StateMachine],
                 log_groups: Mapping[str, logs.ILogGroup] | None = None) -> None:
        super().__init__(scope, cid)
        fed = [spec.function for spec in specs]
        shared = sorted({f for f in fed if fed.count(f) > 1})
        if shared:
            # A function has one asynchronous-invocation configuration, so one on-failure destination.
            raise ValueError(f"functions fed by more than one execution watch: {shared}")
        self.by_name: dict[str, ExecutionWatchRule] = {
            spec.name: ExecutionWatchRule(self, construct_id(spec.name), spec=spec, functions=functions,
                                          state_machines=state_machines, log_groups=log_groups)
            for spec in specs
        }

    def __iter__(self) -> Iterator[ExecutionWatchRule]:
        return iter(self.by_name.values())
