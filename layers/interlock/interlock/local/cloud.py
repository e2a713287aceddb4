"""The AWS half of the embedded local cloud: moto, with every resource of the topology created in it.

Creates what the CDK stack creates (table with TTL, each queue with its DLQ and redrive policy, one
Secrets Manager secret per webhook source unless the source was deliberately given none, the SES sender
identity, each state machine from its ASL file with the function ARNs substituted, each execution
watch's DLQ), then sets the process environment the handlers read and routes Step Functions' Lambda
invocations to the local runtime.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from interlock.local import env as local_env
from interlock.local import get_logger, persistence
from interlock.local.functions import ACCOUNT_ID, REGION, LocalLambda, cold_start_reset
from interlock.local.secrets import render as render_secret
from interlock.topology import (
    APP_NAME,
    Bucket,
    ExecutionWatch,
    Queue,
    StateMachine,
    StateMachineType,
    Table,
    Topology,
    WorkflowTable,
)
from interlock.webhooks.base import SourceSecrets

log = get_logger(__name__)

STATES_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/{APP_NAME}-states"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def resource_name(name: str) -> str:
    """Physical names follow the deployed stack: ``interlock-<logical name>``."""
    return f"{APP_NAME}-{name}"


def workflow_table_name(name: str) -> str:
    """A workflow table's physical name here (``interlock-table-<name>``: never the timeline table's)."""
    return resource_name(f"table-{name}")


def state_machine_arn(name: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    """The ARN moto gives the state machine of topology name ``name`` (built from the name, as on AWS)."""
    return f"arn:aws:states:{region}:{account}:stateMachine:{resource_name(name)}"


def render_definition(state_machine: StateMachine, functions: LocalLambda) -> str:
    """The ASL text with every ``${Placeholder}`` replaced; an unknown placeholder is an error."""
    text = state_machine.definition_path.read_text()
    arns = {key: functions.arn(fn) for key, fn in state_machine.function_substitutions.items()}
    arns.update({key: state_machine_arn(name) for key, name in state_machine.state_machine_substitutions.items()})
    unknown = sorted({m for m in _PLACEHOLDER.findall(text) if m not in arns})
    if unknown:
        raise ValueError(f"{state_machine.definition_file} uses placeholders the topology does not "
                         f"substitute: {', '.join(unknown)}")
    rendered = _PLACEHOLDER.sub(lambda m: arns[m.group(1)], text)
    json.loads(rendered)  # fail here, not at StartExecution, if the file is not JSON
    return rendered


class EnvironmentPatch:
    """Sets and unsets environment variables, and puts every one back as it was on :meth:`restore`."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def apply(self, values: Mapping[str, str | None]) -> None:
        for key, value in values.items():
            self._saved.setdefault(key, os.environ.get(key))
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def restore(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()



def timeline_table_request(table: Table, name: str) -> dict[str, Any]:
    """``CreateTable``'s arguments for the timeline table ``table`` named ``name``, its indexes included, as the
    stack declares it (infra/constructs/storage.py)."""
    keys = dict.fromkeys([table.partition_key, table.sort_key,
                          *(k for i in table.indexes for k in (i.partition_key, i.sort_key))])
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": table.partition_key, "KeyType": "HASH"},
                      {"AttributeName": table.sort_key, "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"} for key in keys],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {"IndexName": index.name,
             "KeySchema": [{"AttributeName": index.partition_key, "KeyType": "HASH"},
                           {"AttributeName": index.sort_key, "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.projection)}}
            for index in table.indexes
        ],
    }

class LocalCloud:
    """moto, populated from the topology. ``start`` returns the resolved :class:`~env.Deployed` values."""

    def __init__(
        self,
        topology: Topology,
        functions: LocalLambda,
        api_url: str,
        webhook_secrets: Mapping[str, SourceSecrets],
        environ: Mapping[str, str] | None = None,
        state: persistence.LocalState | None = None,
    ) -> None:
        self.topology = topology
        self.state = state  # the saved local state to restore at start and keep saved; None: nothing kept
        self.functions = functions
        self.api_url = api_url
        self.webhook_secrets = dict(webhook_secrets)
        self.environ = dict(os.environ if environ is None else environ)
        self.region = REGION
        self.deployed: local_env.Deployed | None = None
        self.webhook_sources = ""  # name=scheme,... of the sources the ingest accepts, once started
        self.queue_arns: dict[str, str] = {}
        self.watch_dlq_urls: dict[str, str] = {}  # execution watch name -> its DLQ's URL
        self.stream_arns: dict[str, str] = {}  # watched workflow table (declared name) -> its stream's ARN
        self._mock: Any = None
        self._env = EnvironmentPatch()
        self._uninstalls: list[Callable[[], None]] = []  # the patches of moto installed, undone in reverse
        self.queue_urls_by_name: dict[str, str] = {}  # physical queue name -> URL, DLQs included
        self.restored: dict[str, int] = {}  # what start put back from the saved state
        self._clients: dict[str, Any] = {}

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> local_env.Deployed:
        # Before anything starts: an enabled_sources setting naming an undeclared source stops it here, and so do
        # settings the functions would refuse together (an approval link shorter than the wait for it).
        local_env.check_settings(self.api_url, self.environ)
        self.topology.check_budgets()  # an automatic path that could outlast Express's five minutes stops here
        self.webhook_sources = self.topology.enabled_sources(
            local_env.setting("enabled_sources", self.api_url, self.environ))
        from moto import mock_aws

        from interlock.local import (
            dynamodb_lock,
            moto_direct,
            moto_dynamodb_json,
            moto_jsonpath,
            moto_memory,
            moto_sqs,
            sfn_bridge,
        )

        # Before the mock starts: moto swaps in its own fake credentials and puts back what it found
        # when it stops, so the two patches nest and the developer's values come back last, from ours.
        self._env.apply(local_env.process_environment(self.environ, self.region))
        try:
            self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
            self._mock.start()
            self._uninstalls.append(moto_memory.install())
            self._uninstalls.append(moto_jsonpath.install())
            self._uninstalls.append(moto_dynamodb_json.install())
            self._uninstalls.append(moto_direct.install())
            self._uninstalls.append(moto_sqs.install())
            on_change = self.state.mark_dirty if self.state is not None else None
            self._uninstalls.append(dynamodb_lock.install(on_change))
            if on_change is not None:
                self._uninstalls.append(persistence.install_sqs_hook(on_change))
                self._uninstalls.append(persistence.install_dynamodb_hook())
            cold_start_reset()
            self.deployed = self._create_resources()
            self._restore()
            self._env.apply(local_env.merged_environment(self.topology, self.deployed, self.environ))
            self._uninstalls.append(sfn_bridge.install(self.functions, on_change))
        except BaseException:
            self.stop()
            raise
        return self.deployed

    def stop(self) -> None:
        """Stop running executions, then the mock; the environment is restored last."""
        try:
            if self._mock is not None and self.deployed is not None:
                self._stop_executions()
        finally:
            while self._uninstalls:
                self._uninstalls.pop()()
            if self._mock is not None:
                self._mock.stop()
                self._mock = None
            self.deployed = None
            self._clients.clear()
            self._env.restore()

    # -- the saved local state ------------------------------------------------------------------------------

    def _table_names(self) -> list[str]:
        return [resource_name(self.topology.table.name),
                *(workflow_table_name(t.name) for t in self.topology.workflow_tables)]

    def _restore(self) -> None:
        """Put the saved items and messages back (before anything polls or serves)."""
        saved = self.state.saved if self.state is not None else None
        if saved is None:
            return
        ttl = {resource_name(self.topology.table.name): self.topology.table.ttl_attribute}  # workflow tables: none
        self.restored["items"] = persistence.restore_tables(saved.tables, ttl)
        saved.tables.clear()  # put back: moto holds them now (10,000 runs' items are some 40 MB as parsed JSON)
        self.restored["messages"] = persistence.restore_queues(self.client("sqs"), self.queue_urls_by_name,
                                                              saved.queues)

    def resume_executions(self) -> int:
        """Resume the executions the saved state says were running (once the functions can be invoked)."""
        saved = self.state.saved if self.state is not None else None
        if saved is None or not saved.executions:
            return 0
        self.restored["executions"] = persistence.resume_executions(self.client("stepfunctions"), saved.executions)
        return self.restored["executions"]

    def capture(self) -> persistence.Snapshot:
        """Everything the local state keeps, now."""
        from datetime import UTC, datetime

        assert self.deployed is not None
        return persistence.Snapshot(
            saved_at=datetime.now(UTC),
            queues=persistence.capture_queues(sorted(self.queue_urls_by_name)),
            executions=persistence.capture_executions(list(self.deployed.state_machine_arns.values())),
        ).with_table_texts(persistence.capture_table_texts(self._table_names()))

    # -- clients --------------------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client on the mock (cached: creating one costs tens of milliseconds)."""
        import boto3

        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    # -- resources ------------------------------------------------------------------------------------------

    def _create_resources(self) -> local_env.Deployed:
        table_name = self._create_table()
        workflow_tables = {t.name: self._create_workflow_table(t) for t in self.topology.workflow_tables}
        queue_urls = {queue.name: self._create_queue(queue) for queue in self.topology.queues}
        self._create_secrets()
        self._verify_sender()
        machines = {sm.name: self._create_state_machine(sm) for sm in self.topology.state_machines}
        self.watch_dlq_urls = {watch.name: self._create_watch_dlq(watch) for watch in self.topology.execution_watches}
        buckets = {bucket.name: self._create_bucket(bucket) for bucket in self.topology.buckets}
        return local_env.Deployed(
            table_name=table_name,
            api_url=self.api_url,
            secret_prefix=self.topology.secret_prefix,
            webhook_sources=self.webhook_sources,
            queue_urls=queue_urls,
            dlq_urls={queue.name: self.queue_urls_by_name[resource_name(queue.dlq_name)]
                      for queue in self.topology.queues},
            state_machine_arns=machines,
            function_arns={fn.name: self.functions.arn(fn.name) for fn in self.topology.functions},
            workflow_arns={sm.workflow: machines[sm.name] for sm in self.topology.state_machines
                           if sm.type is StateMachineType.EXPRESS},
            bucket_names=buckets,
            workflow_tables=workflow_tables,
        )

    def _create_table(self) -> str:
        table = self.topology.table
        name = resource_name(table.name)
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(**timeline_table_request(table, name))
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )
        return name

    def _create_workflow_table(self, table: WorkflowTable) -> str:
        """A workflow's own table, as the stack creates it: on demand, its stream on (new and old images) when a
        status change watches it (``interlock.local.streams`` reads it)."""
        name = workflow_table_name(table.name)
        keys = [(table.partition_key, "HASH"), *([(table.sort_key, "RANGE")] if table.sort_key else [])]
        extra: dict[str, Any] = {}
        if table.stream:
            extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        attributes = dict.fromkeys(key for key, _ in keys)
        if table.indexes:
            extra["GlobalSecondaryIndexes"] = [
                {"IndexName": index, "Projection": {"ProjectionType": "ALL"},
                 "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"},
                               *([{"AttributeName": sk, "KeyType": "RANGE"}] if sk else [])]}
                for index, pk, sk in table.indexes]
            attributes.update(dict.fromkeys(a for _, pk, sk in table.indexes for a in (pk, sk) if a))
        answer = self.client("dynamodb").create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in keys],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in attributes],
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )
        if table.stream:
            self.stream_arns[table.name] = str(answer["TableDescription"]["LatestStreamArn"])
        return name

    def _create_queue(self, queue: Queue) -> str:
        sqs = self.client("sqs")
        dlq_url = sqs.create_queue(
            QueueName=resource_name(queue.dlq_name),
            Attributes={"MessageRetentionPeriod": str(queue.dlq_retention_days * 86400)},
        )["QueueUrl"]
        dlq_arn = self._queue_arn(dlq_url)
        self.queue_urls_by_name[resource_name(queue.dlq_name)] = str(dlq_url)
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
        url = sqs.create_queue(
            QueueName=resource_name(queue.name),
            Attributes={
                "VisibilityTimeout": str(queue.visibility_timeout_seconds),
                "MessageRetentionPeriod": str(queue.retention_days * 86400),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        self.queue_arns[queue.name] = self._queue_arn(url)
        self.queue_arns[queue.dlq_name] = dlq_arn
        self.queue_urls_by_name[resource_name(queue.name)] = str(url)
        return str(url)

    def _queue_arn(self, url: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def _create_bucket(self, bucket: Bucket) -> str:
        """The bucket, private as on AWS; the lifecycle expiry is the reader's age check here (moto keeps the rule
        but never applies it)."""
        name = resource_name(bucket.name)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        blocked = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict.fromkeys(blocked, True))
        days = int(local_env.setting(bucket.retention_setting, self.api_url, self.environ))
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [{
            "ID": "expire", "Status": "Enabled", "Filter": {"Prefix": bucket.prefix},
            "Expiration": {"Days": days}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
        return name

    def _create_watch_dlq(self, watch: ExecutionWatch) -> str:
        url = str(self.client("sqs").create_queue(
            QueueName=resource_name(watch.dlq_name),
            Attributes={"MessageRetentionPeriod": str(watch.dlq_retention_days * 86400)},
        )["QueueUrl"])
        self.queue_arns[watch.dlq_name] = self._queue_arn(url)
        self.queue_urls_by_name[resource_name(watch.dlq_name)] = url
        return url

    def dlq_url(self, queue: str) -> str:
        name = resource_name(self.topology.queue(queue).dlq_name)
        return str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])

    def _create_secrets(self) -> None:
        secretsmanager = self.client("secretsmanager")
        for source in self.topology.webhook_sources:
            value = self.webhook_secrets.get(source.name)
            if not value:
                continue  # no secret: the ingest finds none and answers 404, as on AWS
            secretsmanager.create_secret(Name=self.topology.secret_name(source.name),
                                         SecretString=render_secret(value, source.scheme))

    def _verify_sender(self) -> None:
        sender = local_env.setting("sender_email", self.api_url, self.environ)
        self.client("ses").verify_email_identity(EmailAddress=sender)

    def _create_state_machine(self, state_machine: StateMachine) -> str:
        answer = self.client("stepfunctions").create_state_machine(
            name=resource_name(state_machine.name),
            definition=render_definition(state_machine, self.functions),
            roleArn=STATES_ROLE_ARN,
            type=state_machine.type.value,
        )
        return str(answer["stateMachineArn"])

    def _stop_executions(self) -> None:
        """End waiting executions so their threads stop before the mock (and its fake AWS) goes away."""
        assert self.deployed is not None
        sfn = self.client("stepfunctions")
        for arn in self.deployed.state_machine_arns.values():
            try:
                running = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
                for execution in running:
                    sfn.stop_execution(executionArn=execution["executionArn"], error="LocalRuntimeStopped",
                                       cause="the local runtime was stopped")
            except Exception:  # a best effort on the way out must not hide why we are stopping
                log.debug("could not stop the executions of %s", arn, exc_info=True)
