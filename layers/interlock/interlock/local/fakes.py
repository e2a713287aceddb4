"""Fakes of the external systems, as real HTTP endpoints under ``/_local/`` on the local gateway.

They speak the protocols the connectors speak (``interlock.connectors``), so the connectors run
unchanged: the CRM answers ``POST /accounts/search {"email"}`` with 200 or 404 (and, for a person trying it
in a browser, ``GET /accounts?email=``), the helpdesk takes
``POST /replies`` with an ``Idempotency-Key``. Each has an outage switch
(``POST /_local/<system>/outage {"enabled": true}``) that makes it answer 503, which is how the
retried and partial paths of a run are shown and tested without mocking anything.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from interlock.local.http_types import Request, Response, json_response

MOUNT = "/_local"

SEED_ACCOUNTS: tuple[dict[str, Any], ...] = (
    {"account_id": "acc_ada", "name": "Ada Lovelace", "email": "ada@example.com", "plan": "enterprise",
     "tier": "priority", "open_tickets": 2, "lifetime_value": 48200.0},
    {"account_id": "acc_grace", "name": "Grace Hopper", "email": "grace@example.com", "plan": "pro",
     "tier": "standard", "open_tickets": 0, "lifetime_value": 2388.0},
    {"account_id": "acc_linus", "name": "Linus Torvalds", "email": "linus@example.com", "plan": "free",
     "tier": "community", "open_tickets": 1, "lifetime_value": 0.0},
)


@dataclass
class _Outage:
    """The switch shared by every fake: while on, the system answers 503 to everything but the switch."""

    enabled: bool = False

    def handle(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
                return json_response(400, {"error": "invalid_request", "message": 'send {"enabled": true|false}'})
            self.enabled = body["enabled"]
        elif request.method != "GET":
            return _method_not_allowed("GET, POST")
        return json_response(200, {"enabled": self.enabled})

    def unavailable(self) -> Response:
        return json_response(503, {"error": "unavailable", "message": "simulated outage"}, {"Retry-After": "1"})


class FakeCrm:
    """``POST /accounts/search {"email": …}`` (or ``GET /accounts?email=``): the account, or 404
    ``{"error": "not_found"}``."""

    def __init__(self, accounts: tuple[dict[str, Any], ...] = SEED_ACCOUNTS) -> None:
        self.accounts = {a["email"].lower(): dict(a) for a in accounts}
        self.outage = _Outage()

    def handle(self, request: Request, path: str) -> Response:
        if path == "/outage":
            return self.outage.handle(request)
        if self.outage.enabled:
            return self.outage.unavailable()
        if path == "/accounts/search":  # what the connector calls: the address in the body, not the URL
            if request.method != "POST":
                return _method_not_allowed("POST")
            try:
                body = request.json()
            except ValueError:
                body = None
            email = str(body.get("email") or "") if isinstance(body, dict) else ""
            return self._lookup(email)
        if path != "/accounts":
            return _not_found()
        if request.method != "GET":
            return _method_not_allowed("GET")
        return self._lookup(request.query_value("email") or "")

    def _lookup(self, email: str) -> Response:
        email = email.strip().lower()
        if not email:
            return json_response(400, {"error": "invalid_request", "message": "the email parameter is required"})
        account = self.accounts.get(email)
        if account is None:
            return json_response(404, {"error": "not_found"})
        return json_response(200, account)


@dataclass
class _Reply:
    reply_id: str
    run_id: str | None
    to: str
    subject: str
    body: str
    idempotency_key: str | None
    created_at: float = field(default_factory=time.time)

    def view(self) -> dict[str, Any]:
        return dict(vars(self))

    def same_request(self, other: _Reply) -> bool:
        return (self.run_id, self.to, self.subject, self.body) == (other.run_id, other.to, other.subject,
                                                                   other.body)


class FakeHelpdesk:
    """``POST /replies`` records a reply once per ``Idempotency-Key``; ``GET /replies`` lists them."""

    def __init__(self) -> None:
        self.outage = _Outage()
        self._replies: list[_Reply] = []
        self._by_key: dict[str, _Reply] = {}
        self._lock = threading.Lock()

    def replies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.view() for r in self._replies]

    def handle(self, request: Request, path: str) -> Response:
        if path == "/outage":
            return self.outage.handle(request)
        if self.outage.enabled:
            return self.outage.unavailable()
        if path != "/replies":
            return _not_found()
        if request.method == "GET":
            return json_response(200, {"replies": self.replies()})
        if request.method == "POST":
            return self._create(request)
        return _method_not_allowed("GET, POST")

    def _create(self, request: Request) -> Response:
        reply, problem = _parse_reply(request)
        if reply is None:
            return json_response(400, {"error": "invalid_reply", "message": problem})
        with self._lock:
            key = reply.idempotency_key
            previous = self._by_key.get(key) if key else None
            if previous is not None:
                if not previous.same_request(reply):
                    return json_response(422, {"error": "idempotency_key_reused",
                                               "message": "this Idempotency-Key was used for another reply"})
                return json_response(201, {"reply_id": previous.reply_id}, {"Idempotent-Replayed": "true"})
            self._replies.append(reply)
            if key:
                self._by_key[key] = reply
        return json_response(201, {"reply_id": reply.reply_id})


def _parse_reply(request: Request) -> tuple[_Reply | None, str]:
    try:
        body = request.json()
    except ValueError:
        return None, "the body is not JSON"
    if not isinstance(body, dict):
        return None, "the body must be a JSON object"
    missing = [f for f in ("to", "subject", "body") if not isinstance(body.get(f), str) or not body[f].strip()]
    if missing:
        return None, f"missing or empty: {', '.join(missing)}"
    run_id = body.get("run_id")
    return _Reply(
        reply_id=f"rep_{uuid.uuid4().hex[:16]}",
        run_id=str(run_id) if run_id is not None else None,
        to=body["to"],
        subject=body["subject"],
        body=body["body"],
        idempotency_key=request.header("Idempotency-Key"),
    ), ""


class LocalFakes:
    """Everything mounted under ``/_local/``: ``/_local/crm/...`` and ``/_local/helpdesk/...``."""

    def __init__(self) -> None:
        self.crm = FakeCrm()
        self.helpdesk = FakeHelpdesk()

    def handles(self, path: str) -> bool:
        return path == MOUNT or path.startswith(MOUNT + "/")

    def handle(self, request: Request) -> Response:
        rest = request.path[len(MOUNT):]
        system, _, sub = rest.lstrip("/").partition("/")
        sub = "/" + sub.rstrip("/")
        if system == "crm":
            return self.crm.handle(request, sub)
        if system == "helpdesk":
            return self.helpdesk.handle(request, sub)
        return _not_found()


def _not_found() -> Response:
    return json_response(404, {"message": "Not Found"})


def _method_not_allowed(allow: str) -> Response:
    return json_response(405, {"message": "Method Not Allowed"}, {"Allow": allow})
