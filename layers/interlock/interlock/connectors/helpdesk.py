"""Sending the reply through the helpdesk, and opening a task for a team there.

Protocol:

* ``POST {base}/replies`` with JSON ``{run_id, to, subject, body}`` and an ``Idempotency-Key`` (the run id, so a
  retried send is recorded once) answers 200/201 ``{"reply_id"}``;
* ``POST {base}/tasks`` with JSON ``{title, body, requester, team}`` (``team``: ``support``, ``billing`` or
  ``engineering``) and an ``Idempotency-Key`` (the caller's: one task per key, however often the step runs)
  answers 200/201 ``{"task_id"}``; the same key again answers the first task (``Idempotent-Replayed: true``).

429, 5xx and transport errors are :class:`HelpdeskUnavailable` (retried); other 4xx are :class:`HelpdeskRejected`
(they fail the run), as is a 200/201 without its id. Errors name a status or an exception's class, never the
request (the customer's address, the reply, the task's text): they are logged and recorded on the run's timeline.
One ``httpx.Client`` per connector, reused by every call (:class:`interlock.connectors.http.SharedClient`).
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
    def create_task(self, idempotency_key: str, title: str, body: str, requester: str,
                    team: str = "support") -> str: ...


class HttpHelpdesk:
    def __init__(self, base_url: str, timeout_seconds: float = 5.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.transport = transport
        self._http = SharedClient(timeout_seconds, transport)

    def send_reply(self, run_id: str, to: str, subject: str, body: str) -> str:
        response = self._post("/replies", {"run_id": run_id, "to": to, "subject": subject, "body": body}, run_id,
                              step="send_reply")
        return self._id_of(response, "reply_id", "the reply", step="send_reply")

    def create_task(self, idempotency_key: str, title: str, body: str, requester: str,
                    team: str = "support") -> str:
        """Open a task for ``team`` (once per ``idempotency_key``); the helpdesk's task id."""
        response = self._post("/tasks", {"title": title, "body": body, "requester": requester, "team": team},
                              idempotency_key, step="create_task")
        return self._id_of(response, "task_id", "the task", step="create_task")

    def _post(self, path: str, payload: dict[str, str], idempotency_key: str, *, step: str) -> httpx.Response:
        import httpx  # loaded by the steps that call out, not by every function importing the models

        try:
            response = self._http.get().post(f"{self.base_url}{path}", json=payload,
                                             headers={"Idempotency-Key": idempotency_key})
        except httpx.HTTPError as exc:  # not chained: an exception's text may quote the request (the text in it)
            raise HelpdeskUnavailable(f"helpdesk request failed: {type(exc).__name__}", step=step) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise HelpdeskUnavailable(f"helpdesk answered {response.status_code}", step=step)
        return response

    @staticmethod
    def _id_of(response: httpx.Response, field: str, what: str, *, step: str) -> str:
        if response.status_code not in (200, 201):
            raise HelpdeskRejected(f"helpdesk refused {what} ({response.status_code})", step=step,
                                   status=response.status_code)
        try:
            found = response.json()[field]
        except (ValueError, KeyError, TypeError):
            found = None
        # an id is a non-empty string or a number: never null, a bool or an object read as "None" or "True"
        if isinstance(found, bool) or not isinstance(found, str | int) or not str(found).strip():
            raise HelpdeskRejected(f"helpdesk accepted {what} but returned no {field}", step=step,
                                   status=response.status_code)
        return str(found)


@once_per_process
def from_settings() -> HttpHelpdesk | None:
    """The process's helpdesk connector (one client for every call), or None when ``helpdesk_base_url`` is not set."""
    from interlock.settings import HelpdeskSettings, load

    settings = load(HelpdeskSettings)
    if not settings.helpdesk_base_url:
        return None
    return HttpHelpdesk(settings.helpdesk_base_url, settings.helpdesk_timeout_seconds)
