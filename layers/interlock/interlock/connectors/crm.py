"""Account context from the CRM.

Protocol: ``POST {base}/accounts/search`` with JSON ``{"email": "<email>"}`` answers 200 with the account,
404 when there is none; anything else (5xx, a timeout, a refused connection) means the CRM is unavailable and
is retried.

The address is in the body, never in the URL: URLs end up in access logs, proxies, traces (the X-Ray SDK's
httpx subsegments record the full URL) and exception messages. The errors raised here name what happened
(a status, an exception's class, the fields that did not validate), never a URL, a body or a value from
either, because they are logged and recorded on the run's timeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

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
                response = client.post(f"{self.base_url}/accounts/search", json={"email": email})
        except httpx.HTTPError as exc:  # not chained: an exception's text may quote the request (its URL, its body)
            raise CrmUnavailable(f"CRM request failed: {type(exc).__name__}", step="fetch_account") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise CrmUnavailable(f"CRM answered {response.status_code}", step="fetch_account",
                                 status=response.status_code)
        try:
            return Account.model_validate(response.json())
        except ValidationError as exc:  # its text quotes the CRM's values (names, ...): only the fields are kept
            fields = sorted({".".join(str(part) for part in error["loc"]) or "the answer" for error in exc.errors()})
            raise CrmUnavailable(f"CRM answered with an unreadable account ({', '.join(fields)})",
                                 step="fetch_account") from None
        except ValueError:
            raise CrmUnavailable("CRM answered with an unreadable account (not JSON)", step="fetch_account") from None
