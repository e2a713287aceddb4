"""``InterlockStack``: the whole deployment, composed of one construct per capability.

Everything is driven by ``interlock.topology.TOPOLOGY``: no route, queue, function, secret or state
machine is named here. The order of construction is the order of dependencies: resources first, then the
functions with their literal settings, then what is built from the functions (event sources, state
machines, the execution watches on those state machines, the API), then the functions' ``Ref`` settings
and grants, and last the monitoring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct
from interlock.topology import TOPOLOGY, Topology, build

from infra.build_layer import LAYER_DIR
from infra.constructs.ai import AiKeySecret
from infra.constructs.api import PublicApi
from infra.constructs.email import ApprovalEmail
from infra.constructs.functions import LambdaFunctions, WiringTargets
from infra.constructs.monitoring import Monitoring
from infra.constructs.queues import WorkQueues
from infra.constructs.secrets import WebhookSecrets
from infra.constructs.storage import TimelineStorage
from infra.constructs.triggers import Schedules, StatusPipes, WorkflowTables
from infra.constructs.uploads import UploadBuckets
from infra.constructs.watchdog import ExecutionWatches
from infra.constructs.workflows import Workflows
from infra.context import check_context, check_deployable, check_settings, deployment_setting
from infra.naming import construct_id


class InterlockStack(Stack):
    def __init__(self, scope: Construct, construct_id_: str, *, topology: Topology = TOPOLOGY,
                 layer_dir: Path = LAYER_DIR, **kwargs: Any) -> None:
        kwargs.setdefault(
            "description",
            "Interlock: event-driven AI workflow automation (API Gateway, Lambda, SQS, Step Functions, DynamoDB)",
        )
        super().__init__(scope, construct_id_, **kwargs)
        check_context(self)
        check_settings(self)
        check_deployable(self)
        # Further webhook sources are configuration: declared before anything is built from the topology.
        topology = topology.with_extra_webhook_sources(deployment_setting(self, "extra_webhook_sources"))
        extra_workflows = deployment_setting(self, "extra_workflows")
        if extra_workflows:  # further workflow packages are configuration too
            topology = build(extra_workflows).with_extra_webhook_sources(
                deployment_setting(self, "extra_webhook_sources"))
        self.topology = topology
        topology.check_budgets()  # an automatic path that could outlast Express's five minutes is refused

        self.storage = TimelineStorage(self, "Storage", spec=topology.table)
        self.queues = WorkQueues(self, "Queues", specs=topology.queues)
        self.buckets = UploadBuckets(self, "Buckets", specs=topology.buckets)
        # The workflows' own tables, and the triggers that are not webhooks, into the ingest queue.
        self.workflow_tables = WorkflowTables(self, "WorkflowTables", specs=topology.workflow_tables)
        self.schedules = Schedules(self, "Schedules", specs=topology.schedules, queues=self.queues)
        self.status_pipes = StatusPipes(self, "StatusChanges", specs=topology.status_pipes,
                                        tables=self.workflow_tables.by_name, queues=self.queues)
        self.secrets = WebhookSecrets(self, "WebhookSecrets", topology=topology)
        self.ai_key = AiKeySecret(self, "AiKey")
        self.email = ApprovalEmail(
            self,
            "Email",
            sender_email=deployment_setting(self, "sender_email"),
            approver_email=deployment_setting(self, "approver_email"),
        )
        self.functions = LambdaFunctions(self, "Functions", topology=topology, layer_dir=layer_dir)
        for wq in self.queues:
            consumer = topology.function(wq.spec.consumer)
            wq.connect_consumer(self.functions[consumer.name].function, consumer.timeout_seconds,
                                consumer.reserved_concurrency)
        self.workflows = Workflows(self, "Workflows", specs=topology.state_machines, functions=self.functions)
        self.watches = ExecutionWatches(self, "ExecutionWatches", specs=topology.execution_watches,
                                        functions=self.functions, state_machines=self.workflows.state_machines,
                                        log_groups={wf.spec.name: wf.log_group for wf in self.workflows})
        self.api = PublicApi(self, "Api", routes=topology.routes, functions=self.functions)
        self.functions.wire(
            WiringTargets(
                table=self.storage.table,
                queues=self.queues,
                state_machines=self.workflows.state_machines,
                api_url=self.api.url,
                secrets=self.secrets,
                email=self.email,
                ai_key=self.ai_key,
                buckets=self.buckets.by_name,
                workflow_tables=self.workflow_tables.by_name,
                workflow_table_indexes={t.name: tuple(index for index, _, _ in t.indexes)
                                        for t in topology.workflow_tables},
            )
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            topology=topology,
            queues=self.queues,
            functions=self.functions,
            workflows=self.workflows,
            watches=self.watches,
            api=self.api.api,
            alarm_email=deployment_setting(self, "alarm_email").strip(),
        )
        self._outputs()

    def _outputs(self) -> None:
        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL: POST <ApiUrl>/webhooks/<source>")
        CfnOutput(self, "TableName", value=self.storage.table.table_name)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn,
                  description="Subscribe to receive the alarms")
        CfnOutput(self, "DashboardName", value=self.monitoring.dashboard.dashboard_name)
        for wq in self.queues:
            CfnOutput(self, f"{construct_id(wq.spec.name)}QueueUrl", value=wq.queue.queue_url)
            CfnOutput(self, f"{construct_id(wq.spec.name)}DlqArn", value=wq.dlq.queue_arn,
                      description=f"Redrive source for {wq.spec.name} (docs/deploy.md)")
        for watch in self.watches:
            CfnOutput(self, f"{construct_id(watch.spec.name)}DlqUrl", value=watch.dlq.queue_url,
                      description=f"Events of the {watch.spec.name} watch that could not be handled (docs/deploy.md)")
        for name, sm in self.workflows.state_machines.items():
            CfnOutput(self, f"{construct_id(name)}StateMachineArn", value=sm.state_machine_arn)
        for source, secret in self.secrets.by_source.items():
            CfnOutput(self, f"{construct_id(source)}WebhookSecretName", value=secret.secret_name,
                      description=f"Put the {source} webhook secret here (docs/deploy.md, Set the webhook secrets)")
        for bucket in self.buckets:
            CfnOutput(self, f"{construct_id(bucket.spec.name)}BucketName", value=bucket.bucket.bucket_name,
                      description=f"The {bucket.spec.name} bucket: objects under {bucket.spec.prefix}, kept "
                                  f"{bucket.retention_days} days (docs/deploy.md, Uploads)")
        for name, table in self.workflow_tables.by_name.items():
            CfnOutput(self, f"{construct_id(name)}WorkflowTableName", value=table.table_name,
                      description=f"The workflow table {name}")
        CfnOutput(self, "AiApiKeySecretName", value=self.ai_key.secret.secret_name,
                  description="Put the AI provider's API key here; without one, decisions are made offline "
                              "(docs/deploy.md, AI decisions)")
