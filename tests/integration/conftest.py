"""Integration fixtures: moto's in-process AWS, the table from the topology, and fresh caches per test."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from integration.support import QUEUE_NAME, REGION, SECRET_PREFIX, TABLE_NAME, Cloud, create_table


def _clear_caches() -> None:
    from aws_lambda_powertools.utilities import parameters
    from interlock import aws, settings, wiring

    settings.load.cache_clear()
    for name in dir(wiring):
        factory = getattr(wiring, name)
        if hasattr(factory, "cache_clear") and getattr(factory, "__module__", "") == wiring.__name__:
            factory.cache_clear()
    aws.reset()
    parameters.clear_caches()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region, no endpoint override, no INTERLOCK_* leaking in; caches cleared."""
    for name in list(os.environ):
        if name.startswith(("INTERLOCK_", "AWS_")) or name == "POWERTOOLS_PARAMETERS_MAX_AGE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_DEV", "false")
    _clear_caches()
    yield
    _clear_caches()


_session: list[object] = []  # the boto3 default session these tests made (never one another suite left behind)


@pytest.fixture
def aws() -> Iterator[None]:
    import boto3
    from moto import mock_aws

    # Keep boto3's default session between tests: its loaded service models make every client after the
    # first cheap (moto would otherwise drop it, and each test would pay ~0.1 s for a new session). It is made
    # here, from this fake environment, so nothing configured elsewhere in the process carries over.
    if not _session or boto3.DEFAULT_SESSION is not _session[0]:
        boto3.setup_default_session()
        _session[:] = [boto3.DEFAULT_SESSION]
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        yield


@pytest.fixture
def cloud(aws: None, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    """The table (from the topology), the ingest queue with its DLQ, and the env vars the handlers read."""
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    create_table(dynamodb)
    dlq_url = sqs.create_queue(QueueName=f"{QUEUE_NAME}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=QUEUE_NAME,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
    )["QueueUrl"]
    monkeypatch.setenv("INTERLOCK_TABLE_NAME", TABLE_NAME)
    monkeypatch.setenv("INTERLOCK_INGEST_QUEUE_URL", queue_url)
    monkeypatch.setenv("INTERLOCK_SECRET_PREFIX", SECRET_PREFIX)
    return Cloud(dynamodb=dynamodb, sqs=sqs, queue_url=queue_url)


@pytest.fixture
def put_secret(aws: None):
    """Store ``interlock/webhooks/<source>`` in Secrets Manager holding whitespace-separated secrets."""
    import boto3

    client = boto3.client("secretsmanager", region_name=REGION)

    def put(source: str, *secrets: str, separator: str = " ") -> None:
        client.create_secret(Name=f"{SECRET_PREFIX}{source}", SecretString=separator.join(secrets))

    return put



@pytest.fixture
def fresh_import(monkeypatch: pytest.MonkeyPatch):
    """Import a handler module afresh (it reads settings at import, as on a cold start), and put back whatever
    was in ``sys.modules`` afterwards so no other test sees this test's settings."""
    import importlib
    import sys

    def load(name: str):
        if name in sys.modules:
            monkeypatch.delitem(sys.modules, name)
        else:
            monkeypatch.setitem(sys.modules, name, None)  # recorded as absent: removed again on undo
            del sys.modules[name]
        return importlib.import_module(name)

    return load


@pytest.fixture
def serialised_moto() -> Iterator[None]:
    """DynamoDB applies each conditional write atomically; moto in one process with several threads does so once its
    calls take turns, as the local runtime has them (interlock.local.dynamodb_lock). A test racing threads
    against moto uses this, or it tests moto's missing isolation instead of the code."""
    from interlock.local import dynamodb_lock

    uninstall = dynamodb_lock.install()
    yield
    uninstall()
