"""The small interfaces the ingest service talks to, and their AWS adapters."""

from __future__ import annotations

import re
from typing import Any, Protocol

from interlock import aws
from interlock.models import Envelope


class WebhookSecrets(Protocol):
    def get(self, source: str) -> list[str]:
        """Every secret currently valid for ``source`` (several during a rotation); [] if none."""


class EventQueue(Protocol):
    def send(self, envelope: Envelope) -> None: ...


class SecretsManagerWebhookSecrets:
    """Secrets Manager secret ``<prefix><source>`` holding one or more whitespace-separated secrets.

    Read through Powertools Parameters, cached for ``max_age`` seconds per warm container.
    """

    def __init__(self, prefix: str, max_age: int = 300) -> None:
        self.prefix = prefix
        self.max_age = max_age

    def get(self, source: str) -> list[str]:
        from aws_lambda_powertools.utilities import parameters

        try:
            value = parameters.get_secret(f"{self.prefix}{source}", max_age=self.max_age)
        except parameters.exceptions.GetParameterError as exc:
            if _secret_not_found(exc):
                return []
            raise  # throttled, denied, unreachable: our outage, not "no such source"
        text = value.decode() if isinstance(value, bytes) else str(value)
        return [s for s in re.split(r"[\s,]+", text) if s]


def _secret_not_found(exc: BaseException) -> bool:
    """Powertools wraps the SDK error (as the context of its own); only a missing secret means "none"."""
    cause = exc.__cause__ or exc.__context__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code") == "ResourceNotFoundException"
    return "ResourceNotFoundException" in str(exc)


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
