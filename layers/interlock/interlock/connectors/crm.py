"""Account context from the CRM.

Protocol: ``GET {base}/accounts?email=<email>`` answers 200 with the account, 404 when there is none;
anything else (5xx, a timeout, a refused connection) means the CRM is unavailable and is retried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import httpx

from interlock.errors import CrmUnavailable


class Account(BaseModel):
    model_config = ConfigDict(extra="ignore")

    account_id: str
    name: str
    plan: str | None = None
    tier: str | None = None
    open_tickets: int | None = None
    lifetime_value: float | None = None


class Crm(Protocol):
    def find_account(self, email: str) -> Account | None: ...


class HttpCrm:
    def __init__(self, base_url: str, timeout_seconds: float = 3.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.transport = transport

    def find_account(self, email: str) -> Account | None:
        import httpx  # loaded by the one step that calls out, not by every function importing the models

        timeout = httpx.Timeout(self.timeout_seconds, connect=min(self.timeout_seconds, 2.0))
        try:
            with httpx.Client(timeout=timeout, transport=self.transport) as client:
                response = client.get(f"{self.base_url}/accounts", params={"email": email})
        except httpx.HTTPError as exc:
            raise CrmUnavailable(f"CRM request failed: {type(exc).__name__}", step="fetch_account") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise CrmUnavailable(f"CRM answered {response.status_code}", step="fetch_account",
                                 status=response.status_code)
        try:
            return Account.model_validate(response.json())
        except ValueError as exc:
            raise CrmUnavailable("CRM answered with an unreadable account", step="fetch_account") from exc
