"""Sending the reply through the helpdesk.

Protocol: ``POST {base}/replies`` with JSON ``{run_id, to, subject, body}`` and an ``Idempotency-Key``
(the run id, so a retried send is recorded once) answers 200/201 ``{"reply_id"}``; 5xx and transport
errors are retried, other 4xx fail the run. Its errors name a status or an exception's class, never the
request (the customer's address, the reply): they are logged and recorded on the run's timeline. One
``httpx.Client`` per connector, reused by every call (:class:`interlock.connectors.http.SharedClient`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpx

from interlock.aws import once_per_process
from interlock.connectors.http import SharedClient
from interlock.errors import HelpdeskRejected, HelpdeskUnavailable


class Helpdesk(Protocol):
    def send_reply(self, run_id: str, to: str, subject: str, body: str) -> str: ...


class HttpHelpdesk:
    def __init__(self, base_url: str, timeout_seconds: float = 5.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.transport = transport
        self._http = SharedClient(timeout_seconds, transport)

    def send_reply(self, run_id: str, to: str, subject: str, body: str) -> str:
        import httpx  # loaded by the one step that calls out, not by every function importing the models

        try:
            response = self._http.get().post(
                f"{self.base_url}/replies",
                json={"run_id": run_id, "to": to, "subject": subject, "body": body},
                headers={"Idempotency-Key": run_id},
            )
        except httpx.HTTPError as exc:  # not chained: an exception's text may quote the request (the reply in it)
            raise HelpdeskUnavailable(f"helpdesk request failed: {type(exc).__name__}", step="send_reply") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise HelpdeskUnavailable(f"helpdesk answered {response.status_code}", step="send_reply")
        if response.status_code not in (200, 201):
            raise HelpdeskRejected(f"helpdesk refused the reply ({response.status_code})", step="send_reply",
                                   status=response.status_code)
        try:
            return str(response.json()["reply_id"])
        except (ValueError, KeyError, TypeError):
            raise HelpdeskRejected("helpdesk accepted the reply but returned no reply_id", step="send_reply",
                                   status=response.status_code) from None


@once_per_process
def from_settings() -> HttpHelpdesk | None:
    """The process's helpdesk connector (one client for every call), or None when ``helpdesk_base_url`` is not set."""
    from interlock.settings import HelpdeskSettings, load

    settings = load(HelpdeskSettings)
    if not settings.helpdesk_base_url:
        return None
    return HttpHelpdesk(settings.helpdesk_base_url, settings.helpdesk_timeout_seconds)
