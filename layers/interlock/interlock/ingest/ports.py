"""The small interfaces the ingest service talks to, and their AWS adapters."""

from __future__ import annotations

import re
import threading
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
    def send(self, envelope: Envelope, acceptance: str | None = None) -> None:
        """Queue the envelope; ``acceptance``, the token of the delivery that holds it, travels with it."""


class SecretsManagerWebhookSecrets:
    """Secrets Manager secret ``<prefix><source>`` holding the source's secrets (:func:`parse_secret`).

    Read through Powertools Parameters (the process's one :func:`secrets_provider`), cached for ``max_age``
    seconds per warm container.
    """

    def __init__(self, prefix: str, max_age: int = 300) -> None:
        self.prefix = prefix
        self.max_age = max_age

    def get(self, source: str, *, free_text: bool = False) -> SourceSecrets:
        from aws_lambda_powertools.utilities import parameters

        try:
            value = secrets_provider().get(f"{self.prefix}{source}", max_age=self.max_age)
        except parameters.exceptions.GetParameterError as exc:
            if _secret_gone(exc):
                return SourceSecrets(signing=())
            raise  # throttled, denied, unreachable: our outage, not "no such source"
        return parse_secret(value.decode() if isinstance(value, bytes) else str(value), free_text=free_text)


_provider_lock = threading.Lock()


def secrets_provider() -> Any:
    """The process's Powertools ``SecretsProvider`` (the one ``parameters.get_secret`` uses too), created once.

    Powertools creates it on first use without a lock, so every request of a burst reaching a fresh container
    built its own, each with a new boto3 session and Secrets Manager client: seconds of work per request while
    the first requests waited. Here it is created once, on the process's one client
    (:func:`interlock.aws.client`), and registered where Powertools looks for it (so ``clear_caches`` and the
    local runtime's cold-start reset still reach it).
    """
    from aws_lambda_powertools.utilities.parameters import SecretsProvider, base

    provider = base.DEFAULT_PROVIDERS.get("secrets")
    if provider is None:
        with _provider_lock:
            provider = base.DEFAULT_PROVIDERS.get("secrets")
            if provider is None:
                provider = SecretsProvider(boto3_client=aws.client("secretsmanager"))
                base.DEFAULT_PROVIDERS["secrets"] = provider
    return provider


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

    def send(self, envelope: Envelope, acceptance: str | None = None) -> None:
        client = self._client or aws.client("sqs")
        attributes = {
            "source": {"DataType": "String", "StringValue": envelope.source},
            "type": {"DataType": "String", "StringValue": envelope.type},
            "run_id": {"DataType": "String", "StringValue": envelope.run_id},
        }
        if acceptance:
            attributes["acceptance"] = {"DataType": "String", "StringValue": acceptance}
        client.send_message(QueueUrl=self.queue_url, MessageBody=envelope.model_dump_json(),
                            MessageAttributes=attributes)
