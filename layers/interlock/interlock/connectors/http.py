"""What every HTTP connector shares: one ``httpx.Client`` per connector instance, and its bearer token.

A connector builds its client on first use and reuses it for every call after (its connection pool and TLS
context included): building one per call cost a TLS context per request, which is what made the local runtime
slow down under load. The factories (``from_settings()`` in each connector module) build a connector once per
process, so a warm Lambda function reuses the client across invocations, as the local runtime does across runs.
httpx's ``Client`` is safe to share between threads.

Tokens are read from a Secrets Manager secret at call time, cached for ``max_age`` seconds (a rotated token is
picked up without a redeploy), through the process's one Secrets Manager provider. A secret that cannot be read is
a transient error (the step is retried), never "no token". No token, URL or body ever reaches an error's text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from interlock.errors import StepError, TransientError

if TYPE_CHECKING:
    import httpx

CONNECT_TIMEOUT_CAP = 2.0  # seconds: a connection that takes longer than this is not coming


class SharedClient:
    """One lazily built ``httpx.Client`` with the connector's timeout (the connect part capped at 2 s)."""

    def __init__(self, timeout_seconds: float, transport: httpx.BaseTransport | None = None) -> None:
        self.timeout_seconds = timeout_seconds
        self.transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    import httpx  # loaded by the steps that call out, not by every module importing the models

                    timeout = httpx.Timeout(self.timeout_seconds,
                                            connect=min(self.timeout_seconds, CONNECT_TIMEOUT_CAP))
                    self._client = httpx.Client(timeout=timeout, transport=self.transport)
                client = self._client
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def parse_token(value: str | None) -> str | None:
    """A token stored as plain text, as a JSON string, or as JSON ``{"token": "..."}``; None when empty."""
    text = (value or "").strip()
    if text.startswith(('"', "{")):
        try:
            data: Any = json.loads(text)
        except ValueError:
            return None
        if isinstance(data, dict):
            data = data.get("token") or ""
        text = data.strip() if isinstance(data, str) else ""
    return text or None


TokenSource = Callable[[], "str | None"]


def no_token() -> str | None:
    return None


def secret_token(secret_name: str, max_age: int, *, reason: str, step: str = "") -> TokenSource:
    """A token source reading the Secrets Manager secret ``secret_name`` (cached ``max_age`` seconds)."""

    def read() -> str | None:
        from aws_lambda_powertools.utilities import parameters

        from interlock.ingest.ports import secrets_provider

        try:
            value = secrets_provider().get(secret_name, max_age=max_age)
        except parameters.exceptions.GetParameterError:
            # not chained: the SDK's text names the secret's ARN; the name is configuration, and is enough
            raise TransientError(f"the token secret {secret_name!r} could not be read", step=step,
                                 reason=reason) from None
        return parse_token(value.decode() if isinstance(value, bytes) else str(value))

    return read


def token_source(secret_name: str, plain: str, max_age: int, *, reason: str) -> TokenSource:
    """The secret when one is named, else the plain token (a laptop's), else none."""
    if secret_name:
        return secret_token(secret_name, max_age, reason=reason)
    token = plain.strip() or None
    return lambda: token


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def fields_of(exc: ValidationError) -> str:
    """The fields an answer failed to validate on, never their values (a name, an address)."""
    return ", ".join(sorted({".".join(str(part) for part in error["loc"]) or "the answer"
                             for error in exc.errors()}))



def read_model(response: httpx.Response, model: type[BaseModel], error: type[StepError], what: str,
               step: str) -> Any:
    """``response``'s JSON as ``model``, or ``error`` saying ``what`` and naming only the fields that did not
    validate (``CRM answered with an unreadable account (account_id)``)."""
    try:
        return model.model_validate(response.json())
    except ValidationError as exc:
        raise error(f"{what} ({fields_of(exc)})", step=step) from None
    except ValueError:
        raise error(f"{what} (not JSON)", step=step) from None
