"""At every log level, the AWS SDK's records hold no webhook secret and no approval email (its token)."""

from __future__ import annotations

import base64
import secrets

import boto3
from interlock.approvals import SesMailer
from interlock.ingest.ports import SecretsManagerWebhookSecrets
from leak_check import everything_at_debug

from integration.support import REGION

SENDER = "interlock@example.com"
APPROVER = "approver@example.com"


def test_given_every_logger_at_debug_when_a_webhook_secret_is_read_then_no_record_holds_it(aws, caplog):
    # Given a source's secret in Secrets Manager
    value = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name="interlock/webhooks/form",
                                                                    SecretString=value)

    # When the ingest reads it with the root logger, every logger and Powertools' at DEBUG
    with everything_at_debug(caplog) as logs:
        read = SecretsManagerWebhookSecrets("interlock/webhooks/", max_age=0).get("form")

    # Then it was read, and is in no log record
    assert read.signing == (value,)
    assert logs.leaks([value]) == []
    assert any(r.name.startswith("botocore") for r in caplog.records)  # the SDK's records were there, emptied


def test_given_every_logger_at_debug_when_an_approval_email_is_sent_then_no_record_holds_its_token(aws, caplog):
    # Given a verified sender and an approval email carrying a link with a fresh token
    ses = boto3.client("ses", region_name=REGION)
    ses.verify_email_identity(EmailAddress=SENDER)
    token = secrets.token_urlsafe(32)
    link = f"https://api.example.com/approvals/{token}"

    # When it is sent through SES with everything at DEBUG
    with everything_at_debug(caplog) as logs:
        message_id = SesMailer().send(SENDER, APPROVER, "Approval needed", f"Review and decide here: {link}\n",
                                      f"<p><a href=\"{link}\">Review and decide</a></p>")

    # Then it was sent, and the token is in no record, not even inside the base64 of the raw message
    assert message_id
    assert logs.leaks([token]) == []
    assert any(r.name.startswith("botocore") for r in caplog.records)

