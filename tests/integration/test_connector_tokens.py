"""A connector's token read from Secrets Manager (moto): stored as text or JSON, unreadable is a retried error."""

from __future__ import annotations

import boto3
import pytest
from interlock.connectors.http import secret_token
from interlock.errors import TransientError
from interlock.ingest.ports import secrets_provider

from integration.support import REGION


def test_a_token_stored_in_a_secret_is_read_and_cached(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name="interlock/connectors/slack", SecretString='{"token": "xoxb-stored"}')
    read = secret_token("interlock/connectors/slack", 300, reason="slack_token_unreadable")

    first = read()
    client.put_secret_value(SecretId="interlock/connectors/slack", SecretString="xoxb-rotated")

    assert first == "xoxb-stored"
    assert read() == "xoxb-stored"  # within max_age: the cached value
    secrets_provider().clear_cache()  # as max_age running out does
    assert read() == "xoxb-rotated"
    secrets_provider().clear_cache()


def test_a_secret_that_cannot_be_read_is_a_transient_error_naming_the_secret_not_the_token(aws: None) -> None:
    with pytest.raises(TransientError) as raised:
        secret_token("interlock/connectors/missing", 0, reason="crm_token_unreadable")()

    assert raised.value.reason == "crm_token_unreadable" and raised.value.retryable
    assert "interlock/connectors/missing" in raised.value.message and "arn:" not in str(raised.value)
