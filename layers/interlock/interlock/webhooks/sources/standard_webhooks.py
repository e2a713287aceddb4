"""Standard Webhooks senders (generic forms, internal tools, any Svix sender): the ``form`` source and
any further named sources configured with this scheme."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from interlock.settings import IngestSettings
from interlock.webhooks import standard
from interlock.webhooks.base import DAY, Delivery, PayloadError, SourceEvent, WebhookSource, read_json


class StandardPayload(BaseModel):
    """A Standard Webhooks payload: ``type`` names the event, ``data`` carries it."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1, max_length=200)
    timestamp: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


def validation_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
        )
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not UTF-8"
    return f"the body is not valid JSON: {exc}"


def json_body(delivery: Delivery) -> Any:
    return read_json(delivery.body)


class StandardWebhooksSource(WebhookSource):
    payload_version = "standard-webhooks.v1"
    dedupe_ttl_seconds = 7 * DAY

    def __init__(self, name: str, settings: IngestSettings) -> None:
        self.name = name
        self.tolerance_seconds = settings.timestamp_tolerance_seconds

    def verify(self, delivery: Delivery, secrets: Sequence[str], now: float) -> None:
        standard.verify(secrets, delivery.headers, delivery.body, now, self.tolerance_seconds)

    def events(self, delivery: Delivery) -> list[SourceEvent]:
        try:
            payload = StandardPayload.model_validate(json_body(delivery))
        except ValidationError as exc:
            raise PayloadError(validation_message(exc)) from exc
        msg_id = delivery.header("webhook-id") or delivery.header("svix-id")
        return [SourceEvent(event_id=msg_id, type=payload.type, payload=payload.model_dump(mode="json"))]


SOURCE_CLASS = StandardWebhooksSource


def sender_headers(secret: str, body: bytes, *, now: int, event_id: str, url: str = "") -> dict[str, str]:
    """The headers a Standard Webhooks sender holding ``secret`` sends with ``body``."""
    return standard.signed_headers(secret, event_id, now, body)
