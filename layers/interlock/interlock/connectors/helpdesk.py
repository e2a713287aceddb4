"""Sending the reply through the helpdesk.

Protocol: ``POST {base}/replies`` with JSON ``{run_id, to, subject, body}`` and an ``Idempotency-Key``
(the run id, so a retried send is recorded once) answers 200/201 ``{"reply_id"}``; 5xx and transport
errors are retried, other 4xx fail the run. Its errors name a status or an exception's class, never the
request (the customer's address, the reply): they are logged and recorded on the run's timeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpx

from interlock.errors import HelpdeskRejected, HelpdeskUnavailable


class Helpdesk(Protocol):
    def send_reply(self, run_id: str, to: str, subject: str, body: str) -> str: ...


class HttpHelpdesk:
    def __init__(self, base_url: str, timeout_seconds: float = 5.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.transport = transport

    def send_reply(self, run_id: str, to: str, subject: str, body: str) -> str:
        import httpx  # loaded by the one step that calls out, not by every function importing the models

        timeout = httpx.Timeout(self.timeout_seconds, connect=min(self.timeout_seconds, 2.0))
        try:
            with httpx.Client(timeout=timeout, transport=self.transport) as client:
                response = client.post(
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
