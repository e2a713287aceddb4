"""Alarms and the dashboard: an encrypted SNS alarm topic, DLQ and stuck-work alarms, and a CloudWatch
dashboard following a run from the API through the ingest queue and router to the workflows, the AI
decisions of their steps and the watchdog under them.

One escalation of an AI decision pages no one: it is a designed path (the run goes to a person, who is
emailed), not lost work, and every alarm here fires on a state that always needs an operator. Most decisions
of a function escalating, period after period, is such a state: a revoked or wrong API key (401 on every
call), a model name the endpoint does not know, or a provider that is down sends every run to a person,
and nothing else would say so. Each AI function has one alarm on its escalation rate, counted only over
periods with enough decisions for a rate to mean something and with a model call that failed: offline
decisions (no key stored) escalate most tickets by design, and never fail.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from interlock.topology import METRICS_NAMESPACE, Access, Topology

from infra.constructs.functions import LambdaFunction, LambdaFunctions
from infra.constructs.queues import WorkQueues
from infra.constructs.watchdog import ExecutionWatches
from infra.constructs.workflows import Workflows
from infra.naming import construct_id, physical_name

# The front door (the API and the functions behind its routes), each summed over FRONT_DOOR_PERIOD: any 5xx the
# API answers, any error or throttle of a function behind a route or of a queue consumer, any 503 of the ingest
# (a secret it could not read, an event it could not queue: answered 503 so the sender retries, so no DLQ ever
# sees them). FRONT_DOOR_PERIODS in a row: one provider's retry storm after a blip is over by then.
FRONT_DOOR_PERIOD = Duration.minutes(5)
FRONT_DOOR_PERIODS = 1
API_5XX_ALARM_COUNT = 5
# interlock/ingest/service.py counts each 503 it answers (dimension service = the ingest function's name).
WEBHOOK_UNAVAILABLE_METRIC = "WebhookUnavailable"
OLDEST_MESSAGE_ALARM_SECONDS = 15 * 60  # the router drains the ingest queue in seconds when healthy
PERIOD = Duration.minutes(1)
WIDTH = 8  # three widgets per dashboard row (24 columns)
# interlock/ai/runner.py: (metric, label), each a Sum, dimension service = the function's name
AI_OUTCOMES = (("AiDecisions", "decisions"), ("AiEscalations", "escalated"))
AI_ATTEMPTS = (("AiAttempts", "attempts"), ("AiAttemptsFailed", "failed attempts"), ("AiFallbacks", "fallbacks"))
AI_TOKENS = (("AiTokensIn", "tokens in"), ("AiTokensOut", "tokens out"))
AI_COST = "AiCostUsd"
# The AI escalation alarm: at least AI_ESCALATION_ALARM_PERCENT of a function's decisions escalated to a person
# in each of AI_ESCALATION_ALARM_PERIODS consecutive AI_ESCALATION_ALARM_PERIOD periods, counting only periods
# with at least AI_ESCALATION_ALARM_MIN_DECISIONS decisions and a failed model call. A broken key or model fails
# every call and escalates every decision (100%); a model that works should escalate only the tickets it is
# unsure of, well below half. Fifteen minutes in a row rules out a provider's brief outage or a burst of hard
# tickets, and the minimum keeps one escalated ticket at 3 a.m. (1 of 1, 100%) from paging anyone: a quiet period
# is 0%.
AI_ESCALATION_ALARM_PERCENT = 50
AI_ESCALATION_ALARM_PERIOD = Duration.minutes(5)
AI_ESCALATION_ALARM_PERIODS = 3
AI_ESCALATION_ALARM_MIN_DECISIONS = 5
# e: escalations, d: decisions, f: failed attempts, each a Sum over the period. The runner counts AiEscalations
# and AiAttemptsFailed only when there are some, so a period without has no datapoint: FILL makes it 0.
# f > 0 keeps offline decisions (no key stored, or ai_provider=offline) out: they never fail, and the keyword
# rules escalate most tickets by design (one keyword matched is under the default approval_min_confidence).
AI_ESCALATION_ALARM_EXPRESSION = (
    f"IF((d >= {AI_ESCALATION_ALARM_MIN_DECISIONS}) AND (FILL(f, 0) > 0), 100 * FILL(e, 0) / d, 0)"
)


class Monitoring(Construct):
    def __init__(self, scope: Construct, cid: str, *, topology: Topology, queues: WorkQueues,
                 functions: LambdaFunctions, workflows: Workflows, watches: ExecutionWatches,
                 api: apigw.RestApi, alarm_email: str = "") -> None:
        super().__init__(scope, cid)
        stack = Stack.of(self)
        # SNS encrypts with a customer key: CloudWatch cannot use the AWS-managed SNS key to publish. CloudWatch may
        # use it only for this account's alarms of this stack (no confused deputy: another account's alarm
        # cannot publish through it).
        self.key = kms.Key(
            self, "AlarmTopicKey", enable_key_rotation=True, description="Interlock alarm topic encryption"
        )
        self.key.grant(
            iam.PrincipalWithConditions(iam.ServicePrincipal("cloudwatch.amazonaws.com"), {
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": stack.format_arn(
                    service="cloudwatch", resource="alarm", resource_name=f"{stack.stack_name}-*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME)},
            }),
            "kms:Decrypt", "kms:GenerateDataKey*",
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="Interlock alarms", master_key=self.key, enforce_ssl=True
        )
        if alarm_email:
            # SNS mails a confirmation link first: nothing arrives until it is clicked.
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []
        self._front_door(topology, functions, api)

        for wq in queues:
            dlq_alarm = cw.Alarm(
                self,
                f"{construct_id(wq.spec.name)}DlqDepth",
                alarm_name=physical_name(self, f"{wq.spec.dlq_name}-not-empty"),
                alarm_description=(
                    f"Messages in the {wq.spec.dlq_name} DLQ: events that failed {wq.spec.max_receive_count} "
                    "times. Inspect them, fix the cause, then redrive (docs/deploy.md)."
                ),
                metric=wq.dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            age_alarm = cw.Alarm(
                self,
                f"{construct_id(wq.spec.name)}OldestMessage",
                alarm_name=physical_name(self, f"{wq.spec.name}-stuck"),
                alarm_description=(
                    f"The oldest message in {wq.spec.name} waited over {OLDEST_MESSAGE_ALARM_SECONDS}s: "
                    f"its consumer {wq.spec.consumer} is failing or throttled."
                ),
                metric=wq.queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                threshold=OLDEST_MESSAGE_ALARM_SECONDS,
                evaluation_periods=5,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            self.alarms += [dlq_alarm, age_alarm]

        for watch in watches:
            self.alarms.append(cw.Alarm(
                self,
                f"{construct_id(watch.spec.name)}DlqDepth",
                alarm_name=physical_name(self, f"{watch.spec.dlq_name}-not-empty"),
                alarm_description=(
                    f"Messages in the {watch.spec.dlq_name} DLQ: execution status events that {watch.spec.function} "
                    "could not record, so a run whose execution failed may still show 'processing'. Inspect them, "
                    "fix the cause, then replay them (docs/deploy.md)."
                ),
                metric=watch.dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ))

        for wf in workflows:
            self.alarms.append(cw.Alarm(
                self,
                f"{construct_id(wf.spec.name)}ExecutionsFailed",
                alarm_name=physical_name(self, f"{wf.spec.name}-executions-failed"),
                alarm_description=(
                    f"{wf.spec.name} executions failed: a run failed and its reason is on its timeline "
                    "(GET /runs/{run_id}). An execution that failed outside the workflow's own recording is "
                    "recorded there by the watchdog as execution_failed; its execution history shows why."
                ),
                metric=wf.state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ))

        for name in topology.granted(Access.AI_KEY_READ):
            self.alarms.append(cw.MathExpression(
                expression=AI_ESCALATION_ALARM_EXPRESSION,
                using_metrics={"e": _ai_metric("AiEscalations", name, "escalated", AI_ESCALATION_ALARM_PERIOD),
                               "d": _ai_metric("AiDecisions", name, "decisions", AI_ESCALATION_ALARM_PERIOD),
                               "f": _ai_metric("AiAttemptsFailed", name, "failed attempts",
                                               AI_ESCALATION_ALARM_PERIOD)},
                label=f"{name} escalated % (of >= {AI_ESCALATION_ALARM_MIN_DECISIONS} decisions, with a failed call)",
                period=AI_ESCALATION_ALARM_PERIOD,
            ).create_alarm(
                self,
                f"{construct_id(name)}AiEscalations",
                alarm_name=physical_name(self, f"{name}-ai-escalations"),
                alarm_description=(
                    f"At least {AI_ESCALATION_ALARM_PERCENT}% of {name}'s AI decisions escalated to a person, "
                    f"{AI_ESCALATION_ALARM_PERIODS} periods of {AI_ESCALATION_ALARM_PERIOD.to_minutes()} minutes in "
                    f"a row (each with at least {AI_ESCALATION_ALARM_MIN_DECISIONS} decisions and a failed model "
                    "call). Usually a revoked or wrong API key (401), a model the endpoint does not know (404) or a "
                    "rate limit (429): the 'decision attempt' log lines and the runs' decision_attempt entries say "
                    "which (docs/deploy.md)."
                ),
                threshold=AI_ESCALATION_ALARM_PERCENT,
                evaluation_periods=AI_ESCALATION_ALARM_PERIODS,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ))

        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=physical_name(self, "runs"),
            default_interval=Duration.hours(3),
        )
        self._dashboard(topology, queues, functions, workflows, watches, api)

    def _front_door(self, topology: Topology, functions: LambdaFunctions, api: apigw.RestApi) -> None:
        def alarm(cid: str, name: str, description: str, metric: cw.IMetric, threshold: int) -> None:
            self.alarms.append(cw.Alarm(
                self, cid, alarm_name=physical_name(self, name), alarm_description=description, metric=metric,
                threshold=threshold, evaluation_periods=FRONT_DOOR_PERIODS,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ))

        minutes = int(FRONT_DOOR_PERIOD.to_minutes())
        alarm("Api5xx", "api-5xx",
              f"The API answered at least {API_5XX_ALARM_COUNT} 5xx in {minutes} minutes: a function behind a route "
              "failed, timed out or was throttled, or the ingest could not read a secret or queue an event. The "
              "access logs' status and integrationStatus, and the function's logs, say which.",
              api.metric_server_error(period=FRONT_DOOR_PERIOD, statistic="Sum"), API_5XX_ALARM_COUNT)
        watched = sorted({r.function for r in topology.routes} | {q.consumer for q in topology.queues})
        for name in watched:
            fn = functions[name].function
            alarm(f"{construct_id(name)}Errors", f"{name}-errors",
                  f"{name} failed (an unhandled error or a timeout) in the last {minutes} minutes: see its logs.",
                  fn.metric_errors(period=FRONT_DOOR_PERIOD, statistic="Sum"), 1)
            alarm(f"{construct_id(name)}Throttles", f"{name}-throttles",
                  f"{name} was throttled in the last {minutes} minutes: its reserved concurrency or the account's "
                  "concurrency is used up (a burst, or a flood of requests; docs/deploy.md, Concurrency).",
                  fn.metric_throttles(period=FRONT_DOOR_PERIOD, statistic="Sum"), 1)
        for name in topology.granted(Access.SECRETS_READ):
            alarm(f"{construct_id(name)}Unavailable", f"{name}-unavailable",
                  f"{name} answered 503 in the last {minutes} minutes: it could not read a webhook secret (a "
                  "secret that is not valid JSON, a denied or throttled Secrets Manager) or could not queue an "
                  "event. The sender retries, so nothing reaches a DLQ: its logs ('could not read the webhook "
                  "secrets', 'could not queue the event') say why.",
                  cw.Metric(namespace=METRICS_NAMESPACE, metric_name=WEBHOOK_UNAVAILABLE_METRIC,
                            dimensions_map={"service": name}, period=FRONT_DOOR_PERIOD, statistic="Sum"), 1)

    def _dashboard(self, topology: Topology, queues: WorkQueues, functions: LambdaFunctions,
                   workflows: Workflows, watches: ExecutionWatches, api: apigw.RestApi) -> None:
        d = self.dashboard
        stack = Stack.of(self)
        d.add_widgets(cw.TextWidget(
            markdown=(
                f"# Interlock: {stack.stack_name}\n"
                "Webhook → API → ingest function → queue (DLQ) → router → workflow executions. "
                "A message in a DLQ or a failed execution raises an alarm; a run's reason is on its timeline "
                "(`GET /runs/{run_id}`)."
            ),
            width=24, height=2,
        ))
        d.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24, height=3))

        # Ingest: the API and the functions behind its routes.
        d.add_widgets(
            cw.GraphWidget(title="API requests and errors", width=WIDTH, left=[
                api.metric_count(period=PERIOD, statistic="Sum", label="requests"),
                api.metric_client_error(period=PERIOD, statistic="Sum", label="4xx"),
                api.metric_server_error(period=PERIOD, statistic="Sum", label="5xx"),
            ]),
            cw.GraphWidget(title="API latency (p50, p99)", width=WIDTH, left=[
                api.metric_latency(period=PERIOD, statistic="p50", label="p50"),
                api.metric_latency(period=PERIOD, statistic="p99", label="p99"),
            ]),
            cw.GraphWidget(title="API integration latency p99", width=WIDTH, left=[
                api.metric_integration_latency(period=PERIOD, statistic="p99", label="integration p99"),
            ]),
        )
        http_functions = sorted({r.function for r in topology.routes})
        queue_consumers = sorted({q.consumer for q in topology.queues})
        d.add_widgets(*self._function_row("HTTP functions", [functions[n] for n in http_functions]))

        # Queues and their consumers (the router).
        for wq in queues:
            d.add_widgets(
                cw.GraphWidget(title=f"Queue {wq.spec.name}: in and out", width=WIDTH, left=[
                    wq.queue.metric_number_of_messages_sent(period=PERIOD, statistic="Sum", label="sent"),
                    wq.queue.metric_number_of_messages_deleted(period=PERIOD, statistic="Sum", label="done"),
                    wq.queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum", label="waiting"),
                ]),
                cw.GraphWidget(title=f"Queue {wq.spec.name}: oldest message (s)", width=WIDTH, left=[
                    wq.queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum",
                                                                      label="age"),
                ]),
                cw.SingleValueWidget(title=f"DLQ {wq.spec.dlq_name}: messages", width=WIDTH, metrics=[
                    wq.dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum",
                                                                         label="in DLQ"),
                ]),
            )
        d.add_widgets(*self._function_row("Router", [functions[n] for n in queue_consumers]))

        # Workflows and their steps.
        for wf in workflows:
            sm = wf.state_machine
            d.add_widgets(
                cw.GraphWidget(title=f"Workflow {wf.spec.name}: executions", width=WIDTH, left=[
                    sm.metric_started(period=PERIOD, statistic="Sum", label="started"),
                    sm.metric_succeeded(period=PERIOD, statistic="Sum", label="succeeded"),
                    sm.metric_failed(period=PERIOD, statistic="Sum", label="failed"),
                    sm.metric_timed_out(period=PERIOD, statistic="Sum", label="timed out"),
                    sm.metric_aborted(period=PERIOD, statistic="Sum", label="aborted"),
                ]),
                cw.GraphWidget(title=f"Workflow {wf.spec.name}: duration (p50, p99)", width=WIDTH, left=[
                    sm.metric_time(period=Duration.minutes(5), statistic="p50", label="p50"),
                    sm.metric_time(period=Duration.minutes(5), statistic="p99", label="p99"),
                ]),
                cw.GraphWidget(title=f"Workflow {wf.spec.name}: throttled transitions", width=WIDTH, left=[
                    sm.metric_throttled(period=PERIOD, statistic="Sum", label="throttled"),
                ]),
            )
            steps = [functions[n] for n in sorted(set(wf.spec.functions()))]
            d.add_widgets(*self._function_row(f"{wf.spec.name} steps", steps))

        # AI decisions: the functions that may call a model (interlock/ai/runner.py's metrics).
        deciders = topology.granted(Access.AI_KEY_READ)
        if deciders:
            d.add_widgets(*self._ai_rows(deciders))

        # The watchdog: executions that stopped outside their workflow's Catch blocks.
        for watch in watches:
            fn = functions[watch.spec.function]
            rule = {"RuleName": watch.rule.rule_name}
            d.add_widgets(
                cw.GraphWidget(title=f"Watch {watch.spec.name}: events", width=WIDTH, left=[
                    cw.Metric(namespace="AWS/Events", metric_name="TriggeredRules", dimensions_map=rule,
                              period=PERIOD, statistic="Sum", label="matched"),
                    cw.Metric(namespace="AWS/Events", metric_name="FailedInvocations", dimensions_map=rule,
                              period=PERIOD, statistic="Sum", label="not delivered"),
                    fn.function.metric_errors(period=PERIOD, statistic="Sum", label=f"{fn.spec.name} errors"),
                ]),
                cw.GraphWidget(title=f"Watch {watch.spec.name}: runs ended by {fn.spec.name}", width=WIDTH, left=[
                    cw.Metric(namespace=METRICS_NAMESPACE, metric_name="ExecutionFailuresRecorded",
                              dimensions_map={"service": fn.spec.name}, period=PERIOD, statistic="Sum",
                              label="recorded"),
                ]),
                cw.SingleValueWidget(title=f"DLQ {watch.spec.dlq_name}: messages", width=WIDTH, metrics=[
                    watch.dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum",
                                                                            label="in DLQ"),
                ]),
            )

    @staticmethod
    def _ai_rows(services: list[str]) -> list[cw.IWidget]:
        metric = _ai_metric  # the alarm's inputs are the same metrics

        def each(pairs: tuple[tuple[str, str], ...]) -> list[cw.IMetric]:
            return [metric(name, s, f"{s} {label}") for s in services for name, label in pairs]

        rate_period = Duration.minutes(5)  # a rate over a few decisions, not over one minute's one or two
        escalation_rate = [
            cw.MathExpression(
                expression=f"100 * e{i} / d{i}",
                using_metrics={f"e{i}": metric("AiEscalations", s, "escalated", rate_period),
                               f"d{i}": metric("AiDecisions", s, "decisions", rate_period)},
                label=f"{s} escalated %", period=rate_period,
            )
            for i, s in enumerate(services)
        ]
        cost = [metric(AI_COST, s, s) for s in services]
        return [
            cw.GraphWidget(title="AI decisions and escalations to a person", width=WIDTH, left=each(AI_OUTCOMES)),
            cw.GraphWidget(title="AI attempts: failed, fallbacks to a simpler tier", width=WIDTH,
                           left=each(AI_ATTEMPTS)),
            cw.GraphWidget(title="AI escalation rate (%)", width=WIDTH, left=escalation_rate,
                           left_y_axis=cw.YAxisProps(min=0, max=100)),
            cw.GraphWidget(title="AI tokens", width=WIDTH, left=each(AI_TOKENS)),
            cw.GraphWidget(title="AI estimated cost (USD)", width=WIDTH, left=cost),
            cw.SingleValueWidget(title="AI estimated cost over the time range (USD)", width=WIDTH, metrics=cost,
                                 set_period_to_time_range=True),
        ]

    @staticmethod
    def _function_row(title: str, fns: list[LambdaFunction]) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(title=f"{title}: errors", width=WIDTH, left=[
                f.function.metric_errors(period=PERIOD, statistic="Sum", label=f.spec.name) for f in fns
            ]),
            cw.GraphWidget(title=f"{title}: throttles", width=WIDTH, left=[
                f.function.metric_throttles(period=PERIOD, statistic="Sum", label=f.spec.name) for f in fns
            ]),
            cw.GraphWidget(title=f"{title}: duration p99 (ms)", width=WIDTH, left=[
                f.function.metric_duration(period=PERIOD, statistic="p99", label=f.spec.name) for f in fns
            ]),
        ]


def _ai_metric(name: str, service: str, label: str, period: Duration = PERIOD) -> cw.Metric:
    """One of interlock/ai/runner.py's metrics of one function, summed over the period."""
    return cw.Metric(namespace=METRICS_NAMESPACE, metric_name=name, dimensions_map={"service": service},
                     period=period, statistic="Sum", label=label)
