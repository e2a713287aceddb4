"""The small interfaces the ingest service talks to, and their AWS adapters."""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from interlock import aws
from interlock.models import Envelope
from interlock.webhooks.base import SourceSecrets


class WebhookSecrets(Protocol):
    def get(self, source: str) -> SourceSecrets:
        """Every secret currently valid for ``source`` (several during a rotation); empty if none."""


class EventQueue(Protocol):
    def send(self, envelope: Envelope) -> None: ...


def parse_secret(text: str) -> SourceSecrets:
    """A source's secret value: whitespace-separated signing secrets (several during a rotation), or a JSON
    object ``{"signing": [...], "<extra>": "..."}`` for a provider that needs more (WhatsApp's
    ``verify_token``)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            return SourceSecrets(signing=())
        signing = data.get("signing", [])
        signing = [signing] if isinstance(signing, str) else signing
        extras = {k: str(v) for k, v in data.items() if k != "signing" and isinstance(v, str | int)}
        return SourceSecrets(signing=tuple(str(s) for s in signing if s), extras=extras)
    return SourceSecrets(signing=tuple(s for s in re.split(r"[\s,]+", stripped) if s))


class SecretsManagerWebhookSecrets:
    """Secrets Manager secret ``<prefix><source>`` holding the source's secrets (:func:`parse_secret`).

    Read through Powertools Parameters, cached for ``max_age`` seconds per warm container.
    """

    def __init__(self, prefix: str, max_age: int = 300) -> None:
        self.prefix = prefix
        self.max_age = max_age

    def get(self, source: str) -> SourceSecrets:
        from aws_lambda_powertools.utilities import parameters

        try:
            value = parameters.get_secret(f"{self.prefix}{source}", max_age=self.max_age)
        except parameters.exceptions.GetParameterError as exc:
            if _secret_not_found(exc):
                return SourceSecrets(signing=())
            raise  # throttled, denied, unreachable: our outage, not "no such source"
        return parse_secret(value.decode() if isinstance(value, bytes) else str(value))


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
