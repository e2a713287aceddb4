"""The moto half: resources from the topology, the environment, and Step Functions -> Lambda."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import pytest
from interlock.ingest.ports import parse_secret
from interlock.local.cloud import LocalCloud, render_definition
from interlock.local.env import Deployed, EnvironmentConflict, merged_environment
from interlock.local.functions import LocalLambda
from interlock.topology import (
    Function,
    InvalidPublicBaseUrl,
    Ref,
    RefKind,
    StateMachine,
    Topology,
    UnknownWebhookSource,
)

from .support import API_URL, SECRETS


def _wait_for(sfn: Any, execution_arn: str, status: str | None = None, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if (status and described["status"] == status) or (not status and described["status"] != "RUNNING"):
            return described
        time.sleep(0.05)
    raise AssertionError(f"{execution_arn} is still {described['status']}")


def _wait_for_token(timeout: float = 10) -> str:
    """The token the approval handler saw (its module is imported by the runtime on first invoke)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        module = sys.modules.get("lt_approval")
        if module is not None and module.TOKENS:
            return str(module.TOKENS[-1])
        time.sleep(0.05)
    raise AssertionError("the waitForTaskToken task was never invoked")


def test_every_resource_of_the_topology_exists(cloud: LocalCloud) -> None:
    sqs = cloud.client("sqs")
    queue_url = cloud.deployed.queue_urls["work"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    table = cloud.client("dynamodb").describe_time_to_live(TableName="interlock-timeline")

    assert queue_url.endswith("/interlock-work")
    assert attributes["VisibilityTimeout"] == "0"
    assert redrive == {"deadLetterTargetArn": cloud.queue_arns["work-dlq"], "maxReceiveCount": 2}
    assert table["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    secrets = cloud.client("secretsmanager")
    secret = secrets.get_secret_value(SecretId="interlock/webhooks/form")
    assert tuple(secret["SecretString"].split()) == SECRETS["form"].signing
    assert "me@example.com" in cloud.client("ses").list_identities()["Identities"]
    machines = cloud.client("stepfunctions").list_state_machines()["stateMachines"]
    assert {m["name"] for m in machines} == {"interlock-flow", "interlock-catch"}


def test_each_source_gets_its_secret_as_secrets_manager_holds_it_on_aws_and_one_without_none(
    cloud: LocalCloud,
) -> None:
    secrets = cloud.client("secretsmanager")
    chat = secrets.get_secret_value(SecretId="interlock/webhooks/chat")["SecretString"]

    # WhatsApp's secret is the JSON the ingest parses into a signing secret and a verify token
    assert parse_secret(chat) == SECRETS["chat"]
    # a source deliberately given no secret has none, so the ingest answers 404 for it, as on AWS
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.get_secret_value(SecretId="interlock/webhooks/gh")


def test_the_ingest_accepts_the_topology_sources_unless_the_setting_narrows_them(
    topology: Topology, functions: LocalLambda,
) -> None:
    everything = LocalCloud(topology, functions, API_URL, SECRETS)
    everything.start()
    try:
        assert os.environ["LT_SOURCES"] == "form=standard-webhooks,chat=whatsapp,gh=github"
    finally:
        everything.stop()
    narrowed = LocalCloud(topology, functions, API_URL, SECRETS, environ={"INTERLOCK_ENABLED_SOURCES": "chat"})
    narrowed.start()
    try:
        assert os.environ["LT_SOURCES"] == "chat=whatsapp"
    finally:
        narrowed.stop()
    undeclared = LocalCloud(topology, functions, API_URL, SECRETS, environ={"INTERLOCK_ENABLED_SOURCES": "form,x"})
    with pytest.raises(UnknownWebhookSource, match="'x'"):
        undeclared.start()


def test_the_handlers_environment_is_resolved_from_refs(cloud: LocalCloud) -> None:
    assert os.environ["LT_QUEUE_URL"] == cloud.deployed.queue_urls["work"]
    assert os.environ["LT_STATE_MACHINE_ARN"].endswith(":stateMachine:interlock-flow")
    assert os.environ["LT_SENDER"] == "me@example.com"
    assert os.environ["LT_API_URL"] == API_URL
    assert os.environ["INTERLOCK_TABLE_NAME"] == "interlock-timeline"
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert os.environ["POWERTOOLS_METRICS_DISABLED"] == "true"


def test_stopping_puts_the_environment_back(topology: Topology, functions: LocalLambda, monkeypatch) -> None:
    monkeypatch.setenv("LT_VALUE", "mine")
    monkeypatch.setenv("AWS_PROFILE", "someone")
    local = LocalCloud(topology, functions, API_URL, SECRETS)
    local.start()
    assert os.environ["LT_VALUE"] == "plain" and "AWS_PROFILE" not in os.environ
    local.stop()

    assert os.environ["LT_VALUE"] == "mine"
    assert os.environ["AWS_PROFILE"] == "someone"
    assert "LT_QUEUE_URL" not in os.environ


def test_a_handlers_error_type_reaches_the_state_machines_catch(cloud: LocalCloud) -> None:
    # Given a state machine whose first task raises PartnerDown, caught into a waitForTaskToken task
    sfn = cloud.client("stepfunctions")
    arn = cloud.deployed.state_machine_arns["catch"]

    # When it runs, and the approval task's token is sent back
    execution = sfn.start_execution(stateMachineArn=arn, name="run-1", input=json.dumps({"id": "run-1"}))
    token = _wait_for_token()
    sfn.send_task_success(taskToken=token, output=json.dumps({"decision": "approved"}))
    described = _wait_for(sfn, execution["executionArn"])

    # Then the Catch matched the error by its class name, with the runtime's error document as Cause
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["error"]["Error"] == "PartnerDown"
    cause = json.loads(output["error"]["Cause"])
    assert cause["errorType"] == "PartnerDown"
    assert json.loads(cause["errorMessage"]) == {"reason": "partner_down"}
    assert output["approval"] == {"decision": "approved"}


def test_an_unsubstituted_placeholder_is_an_error(tmp_path, functions: LocalLambda) -> None:
    definition = tmp_path / "bad.asl.json"
    definition.write_text('{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${Nope}", "End": true}}}')

    with pytest.raises(ValueError, match="Nope"):
        render_definition(StateMachine("bad", str(definition), {}), functions)


def test_two_functions_wanting_different_values_for_one_variable_is_a_conflict(topology: Topology) -> None:
    clashing = Topology(
        table=topology.table, queues=topology.queues, routes=(), state_machines=(), webhook_sources=(),
        functions=(
            Function("a", "m", "", env={"SHARED": Ref(RefKind.API_URL)}),
            Function("b", "m", "", env={"SHARED": "something else"}),
        ),
    )
    deployed = Deployed(table_name="t", api_url=API_URL, secret_prefix="p/")

    with pytest.raises(EnvironmentConflict, match="SHARED"):
        merged_environment(clashing, deployed, {})


def test_the_public_url_is_the_runtimes_own_unless_the_setting_gives_one(topology: Topology) -> None:
    # A tunnel in front of the laptop: approval links and HubSpot's signed URL follow it
    public = Topology(table=topology.table, queues=(), routes=(), state_machines=(), webhook_sources=(),
                      functions=(Function("a", "m", "", env={"INTERLOCK_PUBLIC_BASE_URL": Ref(RefKind.API_URL)}),))
    deployed = Deployed(table_name="t", api_url=API_URL, secret_prefix="p/")

    assert merged_environment(public, deployed, {})["INTERLOCK_PUBLIC_BASE_URL"] == API_URL
    tunnel = {"INTERLOCK_PUBLIC_BASE_URL": "https://laptop.tunnel.example"}
    assert merged_environment(public, deployed, tunnel)["INTERLOCK_PUBLIC_BASE_URL"] == "https://laptop.tunnel.example"
    with pytest.raises(InvalidPublicBaseUrl):
        merged_environment(public, deployed, {"INTERLOCK_PUBLIC_BASE_URL": "laptop.tunnel.example"})


def test_given_a_transaction_that_fails_when_another_thread_writes_meanwhile_then_that_write_survives(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto rolls a failed transaction back by restoring a copy of the table taken before it: a write from
    another thread made in between would be lost. The local cloud serialises DynamoDB calls so it is not."""
    import copy
    import threading
    import types

    from moto.dynamodb import models

    assert cloud.deployed is not None
    ddb, table = cloud.client("dynamodb"), cloud.deployed.table_name
    ddb.put_item(TableName=table, Item={"pk": {"S": "EXISTS"}, "sk": {"S": "x"}})
    in_transaction = threading.Event()

    def backup_then_wait(value: Any, memo: Any = None) -> Any:
        backup = copy.deepcopy(value, memo)
        in_transaction.set()
        time.sleep(0.3)  # the table is backed up: a window in which another thread writes, if it can
        return backup

    monkeypatch.setattr(models, "copy", types.SimpleNamespace(deepcopy=backup_then_wait, copy=copy.copy))
    cancelled: list[str] = []

    def conditional_put_that_fails() -> None:
        try:
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "EXISTS"}, "sk": {"S": "x"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}}])
        except ddb.exceptions.TransactionCanceledException:
            cancelled.append("cancelled")

    failing = threading.Thread(target=conditional_put_that_fails)
    failing.start()
    assert in_transaction.wait(5)

    ddb.put_item(TableName=table, Item={"pk": {"S": "WRITTEN-MEANWHILE"}, "sk": {"S": "x"}})
    failing.join(5)

    assert cancelled == ["cancelled"]
    assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "WRITTEN-MEANWHILE"}, "sk": {"S": "x"}},
                                  ConsistentRead=True)
