"""The small interfaces the ingest service talks to, and their AWS adapters."""

from __future__ import annotations

import re
from typing import Any, Protocol

from interlock import aws
from interlock.models import Envelope
from interlock.webhooks.base import SecretFormatError, SourceSecrets, parse_secret

__all__ = ["EventQueue", "SecretFormatError", "SecretsManagerWebhookSecrets", "SqsEventQueue", "WebhookSecrets",
           "parse_secret"]


class WebhookSecrets(Protocol):
    def get(self, source: str, *, free_text: bool = False) -> SourceSecrets:
        """Every secret currently valid for ``source`` (several during a rotation); empty if none.
        ``free_text``: a plain-text value is one secret (:func:`parse_secret`)."""


class EventQueue(Protocol):
    def send(self, envelope: Envelope) -> None: ...


class SecretsManagerWebhookSecrets:
    """Secrets Manager secret ``<prefix><source>`` holding the source's secrets (:func:`parse_secret`).

    Read through Powertools Parameters, cached for ``max_age`` seconds per warm container.
    """

    def __init__(self, prefix: str, max_age: int = 300) -> None:
        self.prefix = prefix
        self.max_age = max_age

    def get(self, source: str, *, free_text: bool = False) -> SourceSecrets:
        from aws_lambda_powertools.utilities import parameters

        try:
            value = parameters.get_secret(f"{self.prefix}{source}", max_age=self.max_age)
        except parameters.exceptions.GetParameterError as exc:
            if _secret_gone(exc):
                return SourceSecrets(signing=())
            raise  # throttled, denied, unreachable: our outage, not "no such source"
        return parse_secret(value.decode() if isinstance(value, bytes) else str(value), free_text=free_text)


_SCHEDULED_FOR_DELETION = re.compile(r"marked (for )?delet")


def _secret_gone(exc: BaseException) -> bool:
    """Powertools wraps the SDK error (as the context of its own). Only a missing secret, or one scheduled for
    deletion (InvalidRequestException "... it was marked for deletion"; moto says "marked deleted"), means
    "none"."""
    cause = exc.__cause__ or exc.__context__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code, message = error.get("Code"), str(error.get("Message", ""))
    else:
        code, message = None, str(exc)
    if code == "ResourceNotFoundException" or (code is None and "ResourceNotFoundException" in message):
        return True
    return _SCHEDULED_FOR_DELETION.search(message) is not None and code in ("InvalidRequestException", None)


class SqsEventQueue:
    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, envelope: Envelope) -> None:
        client = self._client or aws.client("sqs")
        client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=envelope.model_dump_json(),
            MessageAttributes={
                "source": {"DataType": "String", "StringValue": envelope.source},
                "type": {"DataType": "String", "StringValue": envelope.type},
                "run_id": {"DataType": "String", "StringValue": envelope.run_id},
            },
        )
