"""Fakes of the external systems, as real HTTP endpoints under ``/_local/`` on the local gateway.

They speak the protocols the connectors speak (``interlock.connectors``), so the connectors run unchanged: the CRM
answers ``POST /accounts/search {"email"}`` with 200 or 404 (and, for a person trying it in a browser, ``GET
/accounts?email=``) and HubSpot's CRM v3 objects (contacts, companies, deals, tasks: search, read, create, update,
associate) under ``/crm/v3/`` and ``/crm/v4/``; the helpdesk takes ``POST /replies`` and ``POST /tasks`` with an
``Idempotency-Key`` (and lists them at ``GET /replies`` and ``GET /tasks``); the enrichment service answers ``GET
/v2/companies/find?domain=`` (Clearbit's shape); Slack takes ``POST /api/chat.postMessage`` (the Web API's shape:
HTTP 200 with ``ok: false`` and an error code for what Slack refuses) and lists what it was sent at ``GET
/_local/slack/messages``; the ERP answers its vendor master, purchase orders, ledger and customers' sales orders
(``interlock.connectors.erp``; ``GET /_local/erp/ledger-entries`` lists the ledger).
Each has an outage switch (``POST /_local/<system>/outage {"enabled": true}``) that makes it answer 503, which is
how the retried and partial paths of a run are shown and tested without mocking anything; Slack also has a rate-limit
switch (``POST /_local/slack/ratelimit``: 429 with ``Retry-After``).

Bad input gets a 4xx (or, from Slack, its ``ok: false`` answer), never a 5xx.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

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
    ``{"error": "not_found"}``; and HubSpot's CRM v3 objects under ``/crm/`` (:class:`FakeHubSpotObjects`)."""

    def __init__(self, accounts: tuple[dict[str, Any], ...] = SEED_ACCOUNTS, token: str | None = None) -> None:
        self.accounts = {a["email"].lower(): dict(a) for a in accounts}
        self.outage = _Outage()
        self.hubspot = FakeHubSpotObjects(token=token)

    def handle(self, request: Request, path: str) -> Response:
        if path == "/outage":
            return self.outage.handle(request)
        if self.outage.enabled:
            return self.outage.unavailable()
        if path.startswith("/crm/"):
            return self.hubspot.handle(request, path)
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


# -- HubSpot's CRM v3 objects (the lead workflow) -------------------------------------------------------------

# Owners (HubSpot owner ids) match the lead workflow's ownership policy (workflows/sales_lead/policies/).
SEED_COMPANIES: tuple[dict[str, Any], ...] = (
    {"id": "9001", "properties": {"name": "Globex Corporation", "domain": "globex.example",
                                  "hubspot_owner_id": "7001", "industry": "MANUFACTURING", "country": "US"}},
    {"id": "9002", "properties": {"name": "Initech", "domain": "initech.example", "hubspot_owner_id": "7102",
                                  "country": "GB"}},
    {"id": "9003", "properties": {"name": "Analytical Engines", "domain": "analytical.example"}},
)
SEED_CONTACTS: tuple[dict[str, Any], ...] = (
    # an existing contact: a lead from this address updates it
    {"id": "5001", "properties": {"email": "ada@analytical.example", "firstname": "Ada", "lastname": "Lovelace",
                                  "company": "Analytical Engines", "website": "analytical.example"},
     "companies": ["9003"]},
    # the contacts the bundled HubSpot contact.creation batch names (HubSpot created them, then told us)
    {"id": "95001234501", "properties": {
        "email": "hedy@initech.example", "firstname": "Hedy", "lastname": "Lamarr", "company": "Initech",
        "website": "initech.example", "plan_interest": "business",
        "message": "We would like a demo of the approvals for our finance team."}},
    {"id": "95001234502", "properties": {
        "email": "sam.taylor@gmail.com", "firstname": "Sam", "lastname": "Taylor", "company": "Taylor Consulting",
        "message": "Looking for something small for a team of three."}},
)

# What each object type may be written with (HubSpot refuses a property a portal does not have with a 400).
# interlock_* and requested_discount_pct / plan_interest are custom properties the lead workflow's README lists.
WRITABLE_PROPERTIES: dict[str, frozenset[str]] = {
    "contacts": frozenset({"email", "firstname", "lastname", "company", "website", "message", "hubspot_owner_id",
                           "requested_discount_pct", "plan_interest", "lifecyclestage", "hs_lead_status",
                           "interlock_lead_score", "interlock_lead_partial"}),
    "deals": frozenset({"dealname", "amount", "pipeline", "dealstage", "hubspot_owner_id", "description",
                        "closedate", "interlock_discount_pct", "interlock_discount_status"}),
    "tasks": frozenset({"hs_timestamp", "hs_task_subject", "hs_task_body", "hs_task_status", "hs_task_priority",
                        "hs_task_type", "hubspot_owner_id"}),
}
SEARCHABLE = frozenset({"contacts", "companies"})
# (from, to) -> the HubSpot-defined association type id a create may use
ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279, ("deals", "contacts"): 3, ("deals", "companies"): 5,
    ("tasks", "contacts"): 204, ("tasks", "companies"): 192,
}
_OBJECT_TYPES = ("contacts", "companies", "deals", "tasks")
_OBJECT_PATH = re.compile(r"^/crm/v3/objects/(?P<type>[a-z]+)(?:/(?P<rest>[^/]+))?$")
_ASSOCIATE_PATH = re.compile(r"^/crm/v4/objects/contacts/(?P<id>[0-9]+)/associations/default/companies/"
                             r"(?P<company>[0-9]+)$")


def _hubspot_error(status: int, category: str, message: str) -> Response:
    return json_response(status, {"status": "error", "message": message, "category": category,
                                  "correlationId": str(uuid.uuid4())})


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeHubSpotObjects:
    """HubSpot's CRM v3 objects, in memory: contacts and companies (seeded), deals and tasks (created by runs).

    ``POST /crm/v3/objects/{contacts|companies}/search`` (filterGroups of ``EQ`` filters), ``GET
    /crm/v3/objects/{type}`` (every object, newest last: what a test or a person looks at) and ``/{type}/{id}``,
    ``POST /crm/v3/objects/{contacts|deals|tasks}`` (409 ``CONFLICT`` for a contact whose address is taken, with
    HubSpot's "Existing ID" message), ``PATCH /crm/v3/objects/contacts/{id}``, ``PUT
    /crm/v4/objects/contacts/{id}/associations/default/companies/{id}``. A create's ``Idempotency-Key`` is honoured
    (the same key and body answer the first object again). With a ``token``, every call needs ``Authorization:
    Bearer <token>``; without one, a call may come without the header, but not with a malformed one.
    """

    def __init__(self, token: str | None = None, contacts: tuple[dict[str, Any], ...] = SEED_CONTACTS,
                 companies: tuple[dict[str, Any], ...] = SEED_COMPANIES) -> None:
        self.token = token
        self._lock = threading.Lock()
        self._ids = itertools.count(100001)
        self.objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in _OBJECT_TYPES}
        self._by_key: dict[tuple[str, str], tuple[str, Any]] = {}
        for company in companies:
            self.objects["companies"][company["id"]] = self._stored(company["id"], company["properties"])
        for contact in contacts:
            stored = self._stored(contact["id"], contact["properties"])
            stored["associations"]["companies"] = list(contact.get("companies", []))
            self.objects["contacts"][contact["id"]] = stored

    @staticmethod
    def _stored(object_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        at = _now_iso()
        return {"id": object_id, "properties": dict(properties), "createdAt": at, "updatedAt": at,
                "archived": False, "associations": {}}

    def listing(self, object_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [self._public(o) for o in self.objects[object_type].values()]

    @staticmethod
    def _public(stored: dict[str, Any], properties: list[str] | None = None) -> dict[str, Any]:
        props = stored["properties"]
        if properties is not None:
            props = {name: props.get(name) for name in properties}
        return {"id": stored["id"], "properties": {**props, "hs_object_id": stored["id"]},
                "createdAt": stored["createdAt"], "updatedAt": stored["updatedAt"], "archived": False,
                "associations": {k: list(v) for k, v in stored["associations"].items()}}

    # -- routing ---------------------------------------------------------------------------------------------

    def handle(self, request: Request, path: str) -> Response:
        refused = self._unauthorised(request)
        if refused is not None:
            return refused
        associate = _ASSOCIATE_PATH.match(path)
        if associate:
            if request.method != "PUT":
                return _method_not_allowed("PUT")
            return self._associate(associate["id"], associate["company"])
        match = _OBJECT_PATH.match(path)
        if not match or match["type"] not in _OBJECT_TYPES:
            return _hubspot_error(404, "OBJECT_NOT_FOUND", "unknown object type or path")
        object_type, rest = match["type"], match["rest"]
        if rest == "search":
            if request.method != "POST":
                return _method_not_allowed("POST")
            return self._search(object_type, request)
        if rest is None:
            if request.method == "GET":
                return json_response(200, {"results": self.listing(object_type)})
            if request.method == "POST":
                return self._create(object_type, request)
            return _method_not_allowed("GET, POST")
        if request.method == "GET":
            return self._read(object_type, rest, request)
        if request.method == "PATCH" and object_type == "contacts":
            return self._update(object_type, rest, request)
        return _method_not_allowed("GET, PATCH" if object_type == "contacts" else "GET")

    def _unauthorised(self, request: Request) -> Response | None:
        header = request.header("Authorization")
        if header is None and self.token is None:
            return None
        scheme, _, token = (header or "").partition(" ")
        if scheme != "Bearer" or not token.strip() or (self.token is not None and token != self.token):
            return _hubspot_error(401, "INVALID_AUTHENTICATION",
                                  "Authentication credentials not found or invalid")
        return None

    # -- reading ----------------------------------------------------------------------------------------------

    def _search(self, object_type: str, request: Request) -> Response:
        if object_type not in SEARCHABLE:
            return _hubspot_error(400, "VALIDATION_ERROR", f"this fake searches {', '.join(sorted(SEARCHABLE))}")
        body = _json_object(request)
        groups = body.get("filterGroups") if body is not None else None
        filters = _filters(groups)
        if filters is None:
            return _hubspot_error(400, "VALIDATION_ERROR",
                                  "filterGroups must be a non-empty list of {filters: [{propertyName, operator: "
                                  "EQ, value}]}")
        properties = body.get("properties") if body else None
        if properties is not None and not (isinstance(properties, list)
                                           and all(isinstance(p, str) for p in properties)):
            return _hubspot_error(400, "VALIDATION_ERROR", "properties must be a list of names")
        limit = body.get("limit", 10) if body else 10
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 200:
            return _hubspot_error(400, "VALIDATION_ERROR", "limit must be between 1 and 200")
        with self._lock:
            found = [o for o in self.objects[object_type].values()
                     if any(all(str(o["properties"].get(name) or "").lower() == value for name, value in group)
                            for group in filters)]
            results = [self._public(o, properties) for o in found]
        return json_response(200, {"total": len(results), "results": results[:limit]})

    def _read(self, object_type: str, object_id: str, request: Request) -> Response:
        names = request.query_value("properties")
        with self._lock:
            stored = self.objects[object_type].get(object_id)
            if stored is None:
                return _hubspot_error(404, "OBJECT_NOT_FOUND", "resource not found")
            return json_response(200, self._public(stored, names.split(",") if names else None))

    # -- writing ----------------------------------------------------------------------------------------------

    def _create(self, object_type: str, request: Request) -> Response:
        if object_type not in WRITABLE_PROPERTIES or object_type == "companies":
            return _method_not_allowed("GET")
        body = _json_object(request)
        if body is None:
            return _hubspot_error(400, "VALIDATION_ERROR", "the body must be a JSON object")
        properties, problem = _properties(object_type, body.get("properties"))
        if properties is None:
            return _hubspot_error(400, "VALIDATION_ERROR", problem)
        if object_type == "tasks" and not properties.get("hs_timestamp"):
            return _hubspot_error(400, "VALIDATION_ERROR", "a task needs hs_timestamp")
        key = request.header("Idempotency-Key")
        with self._lock:
            associations, problem = self._associations(object_type, body.get("associations", []))
            if associations is None:
                return _hubspot_error(400, "VALIDATION_ERROR", problem)
            if key:
                previous = self._by_key.get((object_type, key))
                if previous is not None:
                    if previous[1] != body:
                        return json_response(422, {"status": "error", "category": "IDEMPOTENCY_KEY_REUSED",
                                                   "message": "this Idempotency-Key was used for another object"})
                    return json_response(201, self._public(self.objects[object_type][previous[0]]),
                                         {"Idempotent-Replayed": "true"})
            email = (properties.get("email") or "").lower()
            if object_type == "contacts" and email:
                for existing in self.objects["contacts"].values():
                    if str(existing["properties"].get("email") or "").lower() == email:
                        return _hubspot_error(409, "CONFLICT", f"Contact already exists. Existing ID: {existing['id']}")
            object_id = str(next(self._ids))
            stored = self._stored(object_id, properties)
            stored["associations"] = associations
            self.objects[object_type][object_id] = stored
            if key:
                self._by_key[(object_type, key)] = (object_id, body)
            return json_response(201, self._public(stored))

    def _update(self, object_type: str, object_id: str, request: Request) -> Response:
        body = _json_object(request)
        if body is None:
            return _hubspot_error(400, "VALIDATION_ERROR", "the body must be a JSON object")
        properties, problem = _properties(object_type, body.get("properties"))
        if properties is None:
            return _hubspot_error(400, "VALIDATION_ERROR", problem)
        with self._lock:
            stored = self.objects[object_type].get(object_id)
            if stored is None:
                return _hubspot_error(404, "OBJECT_NOT_FOUND", "resource not found")
            stored["properties"].update(properties)
            stored["updatedAt"] = _now_iso()
            return json_response(200, self._public(stored))

    def _associate(self, contact_id: str, company_id: str) -> Response:
        with self._lock:
            contact = self.objects["contacts"].get(contact_id)
            if contact is None or company_id not in self.objects["companies"]:
                return _hubspot_error(404, "OBJECT_NOT_FOUND", "resource not found")
            linked = contact["associations"].setdefault("companies", [])
            if company_id not in linked:
                linked.append(company_id)
            return json_response(200, {"status": "COMPLETE", "results": [
                {"from": {"id": contact_id}, "to": {"id": company_id}, "associationTypeId": 279}]})

    def _associations(self, object_type: str, raw: Any) -> tuple[dict[str, list[str]] | None, str]:
        """``associations`` of a create, as ``{to_type: [ids]}``, checked against the objects and HubSpot's type ids."""
        if not isinstance(raw, list):
            return None, "associations must be a list"
        found: dict[str, list[str]] = {}
        for item in raw:
            to = item.get("to") if isinstance(item, dict) else None
            types = item.get("types") if isinstance(item, dict) else None
            target = str(to.get("id")) if isinstance(to, dict) and to.get("id") is not None else ""
            if not target or not isinstance(types, list) or len(types) != 1 or not isinstance(types[0], dict):
                return None, "each association needs to.id and one type"
            kind = types[0]
            to_type = next((t for (f, t), type_id in ASSOCIATION_TYPES.items()
                            if f == object_type and type_id == kind.get("associationTypeId")), None)
            if kind.get("associationCategory") != "HUBSPOT_DEFINED" or to_type is None:
                return None, "unknown association type"
            if target not in self.objects[to_type]:
                return None, f"no {to_type[:-1]} with the association's id"
            found.setdefault(to_type, []).append(target)
        return found, ""


def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _filters(groups: Any) -> list[list[tuple[str, str]]] | None:
    if not isinstance(groups, list) or not groups or len(groups) > 5:
        return None
    found = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or not filters:
            return None
        parsed = []
        for f in filters:
            if not isinstance(f, dict) or f.get("operator") != "EQ" or not isinstance(f.get("propertyName"), str) \
                    or not isinstance(f.get("value"), str | int | float):
                return None
            parsed.append((f["propertyName"], str(f["value"]).lower()))
        found.append(parsed)
    return found


def _properties(object_type: str, raw: Any) -> tuple[dict[str, str] | None, str]:
    if not isinstance(raw, dict):
        return None, "properties must be an object"
    unknown = sorted(set(raw) - WRITABLE_PROPERTIES[object_type])
    if unknown:
        return None, f"Property values were not valid: no {object_type[:-1]} property named {', '.join(unknown)}"
    if not all((isinstance(v, str | int | float) and not isinstance(v, bool)) or v is None for v in raw.values()):
        return None, "property values must be strings or numbers"
    return {k: ("" if v is None else str(v)) for k, v in raw.items()}, ""


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


HELPDESK_TEAMS = ("support", "billing", "engineering")


@dataclass
class _Task:
    task_id: str
    title: str
    body: str
    requester: str
    team: str
    idempotency_key: str
    created_at: str = field(default_factory=_now_iso)

    def view(self) -> dict[str, Any]:
        return dict(vars(self))

    def same_request(self, other: _Task) -> bool:
        return (self.title, self.body, self.requester, self.team) == (other.title, other.body, other.requester,
                                                                       other.team)


class FakeHelpdesk:
    """``POST /replies`` records a reply once per ``Idempotency-Key``; ``GET /replies`` lists them. ``POST /tasks``
    ``{"title", "body", "requester", "team"}`` opens a task for a team (``HELPDESK_TEAMS``); its ``Idempotency-Key``
    is required (400 without): the same key and body answer the first task's id again with ``Idempotent-Replayed:
    true``, the same key with another body is 422 ``idempotency_key_reused``; a title of 1 to 200 characters, a body
    of at most 10 000, a requester and a known team, or 400 ``invalid_task``. ``GET /tasks`` lists the tasks."""

    def __init__(self) -> None:
        self.outage = _Outage()
        self._replies: list[_Reply] = []
        self._by_key: dict[str, _Reply] = {}
        self._tasks: list[_Task] = []
        self._tasks_by_key: dict[str, _Task] = {}
        self._lock = threading.Lock()

    def replies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.view() for r in self._replies]

    def tasks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [t.view() for t in self._tasks]

    def handle(self, request: Request, path: str) -> Response:
        if path == "/outage":
            return self.outage.handle(request)
        if self.outage.enabled:
            return self.outage.unavailable()
        if path == "/tasks":
            if request.method == "GET":
                return json_response(200, {"tasks": self.tasks()})
            if request.method == "POST":
                return self._create_task(request)
            return _method_not_allowed("GET, POST")
        if path != "/replies":
            return _not_found()
        if request.method == "GET":
            return json_response(200, {"replies": self.replies()})
        if request.method == "POST":
            return self._create(request)
        return _method_not_allowed("GET, POST")

    def _create_task(self, request: Request) -> Response:
        key = (request.header("Idempotency-Key") or "").strip()
        if not key or len(key) > 200:
            return json_response(400, {"error": "invalid_request", "message": "an Idempotency-Key is required"})
        task, problem = _parse_task(_json_object(request), key)
        if task is None:
            return json_response(400, {"error": "invalid_task", "message": problem})
        with self._lock:
            previous = self._tasks_by_key.get(key)
            if previous is not None:
                if not previous.same_request(task):
                    return json_response(422, {"error": "idempotency_key_reused",
                                               "message": "this Idempotency-Key was used for another task"})
                return json_response(201, {"task_id": previous.task_id}, {"Idempotent-Replayed": "true"})
            self._tasks.append(task)
            self._tasks_by_key[key] = task
        return json_response(201, {"task_id": task.task_id})

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


def _parse_task(body: dict[str, Any] | None, key: str) -> tuple[_Task | None, str]:
    if body is None:
        return None, "the body must be a JSON object"
    title, text, requester, team = (body.get(f) for f in ("title", "body", "requester", "team"))
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        return None, "title must be a string of 1 to 200 characters"
    if not isinstance(text, str) or len(text) > 10_000:
        return None, "body must be a string of at most 10000 characters"
    if not isinstance(requester, str) or not requester.strip() or len(requester) > 320:
        return None, "requester is required"
    if team not in HELPDESK_TEAMS:
        return None, f"team must be one of {', '.join(HELPDESK_TEAMS)}"
    return _Task(task_id=f"task_{uuid.uuid4().hex[:16]}", title=title, body=text, requester=requester, team=team,
                 idempotency_key=key), ""


# -- company enrichment (Clearbit's Company API shape) -----------------------------------------------------

SEED_ENRICHMENT: tuple[dict[str, Any], ...] = (
    {"name": "Globex Corporation", "domain": "globex.example", "category": {"industry": "Manufacturing"},
     "metrics": {"employees": 4200}, "geo": {"country": "United States", "countryCode": "US"}},
    {"name": "Initech", "domain": "initech.example", "category": {"industry": "Software"},
     "metrics": {"employees": 350}, "geo": {"country": "United Kingdom", "countryCode": "GB"}},
    {"name": "Analytical Engines", "domain": "analytical.example", "category": {"industry": "Computing"},
     "metrics": {"employees": 40}, "geo": {"country": "United Kingdom", "countryCode": "GB"}},
    {"name": "Hooli", "domain": "hooli.example", "category": {"industry": "Internet"},
     "metrics": {"employees": 12000}, "geo": {"country": "United States", "countryCode": "US"}},
    {"name": "Pied Piper", "domain": "piedpiper.example", "category": {"industry": "Software"},
     "metrics": {"employees": 25}, "geo": {"country": "United States", "countryCode": "US"}},
    {"name": "Vandelay Industries", "domain": "vandelay.example", "category": {"industry": "Import/Export"},
     "metrics": {"employees": 800}, "geo": {"country": "Germany", "countryCode": "DE"}},
)
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class FakeEnrichment:
    """``GET /v2/companies/find?domain=``: the seeded company (200), 404 ``unknown_record`` for any other domain,
    422 for a missing or malformed domain. With a ``key``, every call needs ``Authorization: Bearer <key>``."""

    def __init__(self, companies: tuple[dict[str, Any], ...] = SEED_ENRICHMENT, key: str | None = None) -> None:
        self.companies = {c["domain"]: dict(c) for c in companies}
        self.key = key
        self.outage = _Outage()
        self.lookups: list[str] = []  # the domains asked for, in order

    def handle(self, request: Request, path: str) -> Response:
        if path == "/outage":
            return self.outage.handle(request)
        if self.outage.enabled:
            return self.outage.unavailable()
        if path != "/v2/companies/find":
            return _not_found()
        if request.method != "GET":
            return _method_not_allowed("GET")
        header = request.header("Authorization")
        if (self.key is not None and header != f"Bearer {self.key}") or \
                (header is not None and not header.startswith("Bearer ")):
            return json_response(401, {"error": {"type": "auth_required", "message": "API key required"}})
        domain = (request.query_value("domain") or "").strip().lower()
        if not _DOMAIN.match(domain):
            return json_response(422, {"error": {"type": "invalid_domain", "message": "a domain is required"}})
        self.lookups.append(domain)
        company = self.companies.get(domain)
        if company is None:
            return json_response(404, {"error": {"type": "unknown_record", "message": "Unknown domain"}})
        return json_response(200, company)


# -- Slack's Web API ---------------------------------------------------------------------------------------

FAKE_SLACK_TOKEN = "xoxb-interlock-local-fake"
# The conversations a message may go to: the lead workflow's owners (user ids post to their direct messages) and
# its sales channel (workflows/sales_lead/policies/ownership.json); the channel of the Slack sample's mention and a
# direct message with the app (the assistant answers there), and the assistant's support channel.
SEED_SLACK_CONVERSATIONS = frozenset({"U07MAYA01", "U07NOAH02", "U07LENA03", "U07OMAR04", "U07ZOE005",
                                      "U07KAI006", "C07SALES01", "C0LAN2Q65", "D07ADA0001", "C07SUPPORT"})
SLACK_TEXT_LIMIT = 40_000


@dataclass
class _SlackMessage:
    channel: str
    text: str
    ts: str
    body: dict[str, Any]

    def view(self) -> dict[str, Any]:
        return {"channel": self.channel, "text": self.text, "ts": self.ts, "body": self.body}


class FakeSlack:
    """``POST /api/chat.postMessage`` as Slack answers it: HTTP 200 ``{"ok": true, "channel", "ts", "message"}``, or
    HTTP 200 ``{"ok": false, "error"}``: ``not_authed`` (no token), ``invalid_auth`` (another token),
    ``invalid_json`` / ``channel_not_found`` / ``no_text`` / ``msg_too_long`` / ``invalid_blocks`` for a bad body.
    ``GET /messages`` lists what was posted. Switches: ``/outage`` (503), ``/ratelimit`` (429 with
    ``Retry-After: 1``)."""

    def __init__(self, token: str = FAKE_SLACK_TOKEN,
                 conversations: frozenset[str] = SEED_SLACK_CONVERSATIONS) -> None:
        self.token = token
        self.conversations = conversations
        self.outage = _Outage()
        self.rate_limit = _Outage()
        self._messages: list[_SlackMessage] = []
        self._lock = threading.Lock()

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m.view() for m in self._messages]

    def handle(self, request: Request, path: str) -> Response:
        controlled = _messaging_controls(self, request, path)
        if controlled is not None:
            return controlled
        if not path.startswith("/api/"):
            return _not_found()
        if path != "/api/chat.postMessage":
            return json_response(404, {"ok": False, "error": "unknown_method"})
        if request.method != "POST":
            return _method_not_allowed("POST")
        if self.rate_limit.enabled:
            return json_response(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
        return self._post(request)

    def _post(self, request: Request) -> Response:
        header = request.header("Authorization")
        if not header:
            return _slack_error("not_authed")
        if header != f"Bearer {self.token}":
            return _slack_error("invalid_auth")
        body = _json_object(request)
        if body is None:
            return _slack_error("invalid_json")
        channel, text = body.get("channel"), body.get("text")
        if not isinstance(channel, str) or not channel:
            return _slack_error("channel_not_found")
        if channel not in self.conversations:
            return _slack_error("channel_not_found")
        if not isinstance(text, str) or not text.strip():
            return _slack_error("no_text")
        if len(text) > SLACK_TEXT_LIMIT:
            return _slack_error("msg_too_long")
        blocks = body.get("blocks")
        if blocks is not None and not (isinstance(blocks, list) and 0 < len(blocks) <= 50
                                       and all(isinstance(b, dict) and isinstance(b.get("type"), str)
                                               for b in blocks)):
            return _slack_error("invalid_blocks")
        with self._lock:
            ts = f"{time.time():.6f}"
            while any(m.ts == ts for m in self._messages):  # a ts names one message in its channel
                ts = f"{float(ts) + 0.000001:.6f}"
            self._messages.append(_SlackMessage(channel=channel, text=text, ts=ts, body=body))
        return json_response(200, {"ok": True, "channel": channel, "ts": ts,
                                   "message": {"type": "message", "text": text, "ts": ts}})


class _MessagingFake(Protocol):
    outage: _Outage
    rate_limit: _Outage

    def messages(self) -> list[dict[str, Any]]: ...


def _messaging_controls(fake: _MessagingFake, request: Request, path: str) -> Response | None:
    """What a messaging fake answers before its API: its switches, ``GET /messages``, and an outage's 503."""
    if path == "/outage":
        return fake.outage.handle(request)
    if path == "/ratelimit":
        return fake.rate_limit.handle(request)
    if path == "/messages":
        if request.method != "GET":
            return _method_not_allowed("GET")
        return json_response(200, {"messages": fake.messages()})
    if fake.outage.enabled:
        return fake.outage.unavailable()
    return None


def _slack_error(code: str) -> Response:
    return json_response(200, {"ok": False, "error": code})


# -- the WhatsApp Cloud API (the Graph API's messages endpoint) ----------------------------------------------

FAKE_GRAPH_TOKEN = "local-graph-token"
_GRAPH_MESSAGES = re.compile(r"/(v[0-9]{1,3}\.[0-9]{1,2})/([0-9]{1,20})/messages")
_WA_ID = re.compile(r"\+?[0-9]{6,20}")


def _graph_error(status: int, code: int, message: str, kind: str = "OAuthException") -> Response:
    return json_response(status, {"error": {"message": message, "type": kind, "code": code,
                                            "fbtrace_id": "AfakeTrace"}})


def _graph_body_problem(body: dict[str, Any]) -> str | None:
    """What Meta's validation would refuse in a messages body (a code 100 error), or None."""
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if not isinstance(body.get("to"), str) or not _WA_ID.fullmatch(body["to"]):
        return "to is not a WhatsApp number"
    kind = body.get("type")
    value = body.get(kind) if isinstance(kind, str) else None
    if not isinstance(value, dict):
        return "type must be text, interactive or template, with its object"
    if kind == "text":
        text = value.get("body")
        return None if isinstance(text, str) and len(text.strip()) > 0 and len(text) <= 4096 else "text.body"
    if kind == "template":
        language = value.get("language")
        ok = isinstance(value.get("name"), str) and isinstance(language, dict) and isinstance(language.get("code"), str)
        return None if ok else "template.name and template.language.code"
    if kind == "interactive":
        buttons = (value.get("action") or {}).get("buttons") if isinstance(value.get("action"), dict) else None
        text = (value.get("body") or {}).get("text") if isinstance(value.get("body"), dict) else None
        if value.get("type") != "button" or not isinstance(text, str) or not 0 < len(text) <= 1024:
            return "interactive.type button with a body of 1 to 1024 characters"
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return "interactive.action.buttons: 1 to 3"
        for button in buttons:
            reply = button.get("reply") if isinstance(button, dict) else None
            if not (isinstance(reply, dict) and isinstance(reply.get("id"), str) and 0 < len(reply["id"]) <= 256
                    and isinstance(reply.get("title"), str) and 0 < len(reply["title"]) <= 20):
                return "a button's reply id (1-256) and title (1-20)"
        return None
    return f"type {str(kind)[:40]!r} is not supported here"


class FakeGraphApi:
    """The Graph API's ``POST /{version}/{phone-number-id}/messages`` as Meta answers it: ``200 {"messaging_product",
    "contacts", "messages": [{"id": "wamid..."}]}``; ``401`` code 190 without the right bearer token; ``400`` code 100
    for a body Meta's validation refuses. ``GET /messages`` lists what was sent, each with its phone number id.
    Switches: ``/outage`` (503), ``/ratelimit`` (``400`` code 130429, Meta's throughput limit)."""

    def __init__(self, token: str = FAKE_GRAPH_TOKEN) -> None:
        self.token = token
        self.outage = _Outage()
        self.rate_limit = _Outage()
        self._sent: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._sent]

    def handle(self, request: Request, path: str) -> Response:
        controlled = _messaging_controls(self, request, path)
        if controlled is not None:
            return controlled
        match = _GRAPH_MESSAGES.fullmatch(path)
        if match is None:
            return _graph_error(400, 100, "Unsupported post request", "GraphMethodException")
        if request.method != "POST":
            return _method_not_allowed("POST")
        if request.header("Authorization") != f"Bearer {self.token}":
            return _graph_error(401, 190, "Invalid OAuth access token")
        if self.rate_limit.enabled:
            return _graph_error(400, 130429, "Rate limit hit", "OAuthException")
        body = _json_object(request)
        problem = "the body is not a JSON object" if body is None else _graph_body_problem(body)
        if body is None or problem:
            return _graph_error(400, 100, f"(#100) Invalid parameter: {problem}")
        wamid = "wamid." + secrets.token_urlsafe(24)
        with self._lock:
            self._sent.append({"id": wamid, "version": match.group(1), "phone_number_id": match.group(2),
                               "to": body["to"], "type": body["type"], "body": body})
        return json_response(200, {"messaging_product": "whatsapp",
                                   "contacts": [{"input": body["to"], "wa_id": body["to"].lstrip("+")}],
                                   "messages": [{"id": wamid}]})


# -- the ERP (vendor master, purchase orders, the accounts-payable ledger) ------------------------------------

# The vendors and POs the invoice intake workflow's samples name (workflows/invoice_intake/samples/). IBANs are the
# standard published examples, each passing its mod-97 check.
SEED_VENDORS: tuple[dict[str, Any], ...] = (
    {"vendor_id": "V-1001", "name": "Acme Office Supplies GmbH", "tax_id": "DE123456789", "currency": "EUR",
     "bank": {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"}},
    {"vendor_id": "V-1002", "name": "Northwind Logistics Ltd", "tax_id": "GB123456789", "currency": "GBP",
     "bank": {"iban": "GB82WEST12345698765432", "bic": "WESTGB2L"}},
    {"vendor_id": "V-1003", "name": "Globex Industrial B.V.", "tax_id": "NL123456789B01", "currency": "EUR",
     "bank": {"iban": "NL91ABNA0417164300", "bic": "ABNANL2A"}},
)
SEED_PURCHASE_ORDERS: tuple[dict[str, Any], ...] = (
    {"number": "PO-4500", "vendor_id": "V-1001", "status": "open", "currency": "EUR", "amount": "480.00",
     "invoiced": "0.00"},
    {"number": "PO-4501", "vendor_id": "V-1002", "status": "open", "currency": "GBP", "amount": "2000.00",
     "invoiced": "1200.00"},
    {"number": "PO-4502", "vendor_id": "V-1003", "status": "open", "currency": "EUR", "amount": "48400.00",
     "invoiced": "0.00"},
    {"number": "PO-4503", "vendor_id": "V-1001", "status": "open", "currency": "EUR", "amount": "595.00",
     "invoiced": "0.00"},
    {"number": "PO-4504", "vendor_id": "V-1002", "status": "open", "currency": "GBP", "amount": "300.00",
     "invoiced": "0.00"},
    # a spare open PO of Acme's, for an invoice of your own (or a test's) that is not one of the samples
    {"number": "PO-4505", "vendor_id": "V-1001", "status": "open", "currency": "EUR", "amount": "595.00",
     "invoiced": "0.00"},
    {"number": "PO-4400", "vendor_id": "V-1001", "status": "closed", "currency": "EUR", "amount": "310.00",
     "invoiced": "310.00"},
)
# Customers' orders (not purchase orders), for a customer asking where theirs is: two of one customer's (a UK mobile
# from Ofcom's drama range, as WhatsApp's wa_id writes it) and one of another's (a US 555-01xx number).
SEED_SALES_ORDERS: tuple[dict[str, Any], ...] = (
    {"number": "SO-10042", "status": "shipped", "placed_on": "2026-11-25", "shipped_on": "2026-11-28",
     "carrier": "DHL", "tracking_number": "JD014600003828", "items": 2, "customer_phone": "447700900123"},
    {"number": "SO-10043", "status": "processing", "placed_on": "2026-11-30", "shipped_on": None, "carrier": None,
     "tracking_number": None, "items": 1, "customer_phone": "447700900123"},
    {"number": "SO-20001", "status": "delivered", "placed_on": "2026-11-10", "shipped_on": "2026-11-12",
     "carrier": "UPS", "tracking_number": "1Z999AA10123456784", "items": 3, "customer_phone": "14155550100"},
)
# An invoice already recorded: the duplicate sample names it again.
SEED_LEDGER: tuple[dict[str, Any], ...] = (
    {"entry_id": "LE-000001", "vendor_id": "V-1001", "invoice_number": "ACME-2025-0990", "currency": "EUR",
     "total": "310.00", "subtotal": "260.50", "tax": "49.50", "po_number": "PO-4400", "issue_date": "2025-01-10",
     "due_date": "2025-02-09", "status": "posted", "run_id": None, "approved_by": []},
)
_ERP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DECIMAL = re.compile(r"^-?[0-9]{1,15}(\.[0-9]{1,4})?$")
_LEDGER_TEXT = ("vendor_id", "invoice_number", "currency", "total", "run_id")
_LEDGER_OPTIONAL = ("subtotal", "tax", "po_number", "issue_date", "due_date")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _invoice_number_key(value: str) -> str:
    return "".join(value.split()).upper()


class FakeErp:
    """The ERP's vendor master, purchase orders, ledger and sales orders, in memory (interlock.connectors.erp's
    protocol): ``GET /vendors/{id}``, ``POST /vendors/search {"tax_id"}``, ``GET /purchase-orders/{number}``, ``GET
    /sales-orders/{number}`` (a customer's order, the number matched whatever its case; 404 for one there is not),
    ``POST
    /ledger-entries/search {"vendor_id", "invoice_number"}``, ``POST /ledger-entries`` (an ``Idempotency-Key`` is
    required: the same key and body answer the first entry with ``Idempotent-Replayed: true``, the same key with
    another body is 409; a vendor's invoice number is recorded once, whatever the key), ``GET /ledger-entries``
    (every entry, for a person or a test), ``POST /payments`` (an ``Idempotency-Key`` is required, as for an entry;
    one payment per ledger entry, of its amount and currency, to the vendor master's bank account), ``GET
    /payments`` and ``/outage``. Recording an entry adds its total to the PO's invoiced amount. With a ``token``,
    every call needs ``Authorization: Bearer <token>``."""

    def __init__(self, vendors: tuple[dict[str, Any], ...] = SEED_VENDORS,
                 purchase_orders: tuple[dict[str, Any], ...] = SEED_PURCHASE_ORDERS,
                 ledger: tuple[dict[str, Any], ...] = SEED_LEDGER,
                 sales_orders: tuple[dict[str, Any], ...] = SEED_SALES_ORDERS, token: str | None = None) -> None:
        self.vendors = {v["vendor_id"]: dict(v) for v in vendors}
        self.purchase_orders = {p["number"]: dict(p) for p in purchase_orders}
        self.sales_orders = {o["number"].upper(): dict(o) for o in sales_orders}
        self.entries: list[dict[str, Any]] = [dict(e) for e in ledger]
        self._by_key: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._ids = itertools.count(len(self.entries) + 1)
        self.payments: list[dict[str, Any]] = []
        self._payments_by_key: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.token = token
        self.outage = _Outage()
        self._lock = threading.Lock()

    def ledger(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self.entries]

    def scheduled_payments(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self.payments]

    def handle(self, request: Request, path: str) -> Response:
        if path == "/outage":
            return self.outage.handle(request)
        if self.outage.enabled:
            return self.outage.unavailable()
        header = request.header("Authorization")
        if (self.token is not None and header != f"Bearer {self.token}") or \
                (header is not None and (not header.startswith("Bearer ") or not header[7:].strip())):
            return json_response(401, {"error": "unauthorized", "message": "a bearer token is required"})
        parts = path.strip("/").split("/")
        if parts[0] == "vendors" and len(parts) == 2:
            if parts[1] == "search":
                return self._post(request, lambda body: self._vendor_search(body))
            return self._get(request, lambda: self.vendors.get(parts[1]), parts[1])
        if parts[0] == "purchase-orders" and len(parts) == 2:
            return self._get(request, lambda: self.purchase_orders.get(parts[1]), parts[1])
        if parts[0] == "sales-orders" and len(parts) == 2:
            return self._get(request, lambda: self.sales_orders.get(parts[1].upper()), parts[1])
        if parts == ["ledger-entries", "search"]:
            return self._post(request, lambda body: self._ledger_search(body))
        if parts == ["ledger-entries"]:
            if request.method == "GET":
                return json_response(200, {"results": self.ledger()})
            if request.method == "POST":
                return self._create(request)
            return _method_not_allowed("GET, POST")
        if parts == ["payments"]:
            if request.method == "GET":
                return json_response(200, {"results": self.scheduled_payments()})
            if request.method == "POST":
                return self._pay(request)
            return _method_not_allowed("GET, POST")
        return _not_found()

    def _pay(self, request: Request) -> Response:
        body = _json_object(request)
        key = (request.header("Idempotency-Key") or "").strip()
        if not key or len(key) > 200:
            return json_response(400, {"error": "invalid_request", "message": "an Idempotency-Key is required"})
        if body is None:
            return json_response(400, {"error": "invalid_request", "message": "the body must be a JSON object"})
        fields = ("entry_id", "vendor_id", "amount", "currency", "pay_on")
        if any(not isinstance(body.get(f), str) or not body[f].strip() or len(body[f]) > 64 for f in fields):
            return json_response(400, {"error": "invalid_payment", "message": f"required strings: {', '.join(fields)}"})
        if not _DECIMAL.match(body["amount"]) or not _ISO_DATE.match(body["pay_on"]):
            return json_response(400, {"error": "invalid_payment", "message": "amount is a decimal string, pay_on "
                                                                              "a date (YYYY-MM-DD)"})
        from decimal import Decimal

        with self._lock:
            previous = self._payments_by_key.get(key)
            if previous is not None:
                if previous[1] != body:
                    return json_response(409, {"error": "idempotency_key_reused",
                                               "message": "this Idempotency-Key was used for another payment"})
                return json_response(200, dict(previous[0]), {"Idempotent-Replayed": "true"})
            entry = next((e for e in self.entries if e.get("entry_id") == body["entry_id"]), None)
            if entry is None or entry["vendor_id"] != body["vendor_id"]:
                return json_response(400, {"error": "invalid_payment",
                                           "message": "no such ledger entry of this vendor"})
            if Decimal(entry["total"]) != Decimal(body["amount"]) or entry["currency"] != body["currency"]:
                return json_response(400, {"error": "invalid_payment",
                                           "message": "a payment is of its entry's total, in its currency"})
            if any(p["entry_id"] == body["entry_id"] for p in self.payments):
                return json_response(409, {"error": "payment_exists",
                                           "message": "this ledger entry has a payment already"})
            bank = (self.vendors.get(body["vendor_id"]) or {}).get("bank") or {}
            payment = {"payment_id": f"PAY-{len(self.payments) + 1:06d}", **{f: body[f] for f in fields},
                       "status": "scheduled", "to_iban": bank.get("iban")}
            self.payments.append(payment)
            self._payments_by_key[key] = (payment, body)
        return json_response(201, dict(payment))

    @staticmethod
    def _get(request: Request, find: Any, identifier: str) -> Response:
        if request.method != "GET":
            return _method_not_allowed("GET")
        if not _ERP_ID.match(identifier):
            return json_response(400, {"error": "invalid_request", "message": "not an identifier"})
        found = find()
        return json_response(200, found) if found is not None else json_response(404, {"error": "not_found"})

    @staticmethod
    def _post(request: Request, answer: Any) -> Response:
        if request.method != "POST":
            return _method_not_allowed("POST")
        body = _json_object(request)
        if body is None:
            return json_response(400, {"error": "invalid_request", "message": "the body must be a JSON object"})
        result: Response = answer(body)
        return result

    def _vendor_search(self, body: dict[str, Any]) -> Response:
        tax_id = body.get("tax_id")
        if not isinstance(tax_id, str) or not tax_id.strip() or len(tax_id) > 32:
            return json_response(400, {"error": "invalid_request", "message": "tax_id is required"})
        wanted = "".join(tax_id.split()).upper()
        return json_response(200, {"results": [v for v in self.vendors.values()
                                               if "".join(str(v.get("tax_id") or "").split()).upper() == wanted]})

    def _ledger_search(self, body: dict[str, Any]) -> Response:
        vendor_id, number = body.get("vendor_id"), body.get("invoice_number")
        if not isinstance(vendor_id, str) or not isinstance(number, str) or not vendor_id or not number.strip() \
                or len(number) > 64:
            return json_response(400, {"error": "invalid_request", "message": "vendor_id and invoice_number"})
        key = _invoice_number_key(number)
        with self._lock:
            found = [dict(e) for e in self.entries
                     if e["vendor_id"] == vendor_id and _invoice_number_key(e["invoice_number"]) == key]
        return json_response(200, {"results": found})

    def _create(self, request: Request) -> Response:
        body = _json_object(request)
        key = (request.header("Idempotency-Key") or "").strip()
        if not key or len(key) > 200:
            return json_response(400, {"error": "invalid_request", "message": "an Idempotency-Key is required"})
        if body is None:
            return json_response(400, {"error": "invalid_request", "message": "the body must be a JSON object"})
        entry, problem = self._entry(body)
        if entry is None:
            return json_response(400, {"error": "invalid_entry", "message": problem})
        with self._lock:
            previous = self._by_key.get(key)
            if previous is not None:
                if previous[1] != body:
                    return json_response(409, {"error": "idempotency_key_reused",
                                               "message": "this Idempotency-Key was used for another entry"})
                return json_response(200, dict(previous[0]), {"Idempotent-Replayed": "true"})
            number = _invoice_number_key(entry["invoice_number"])
            if any(e["vendor_id"] == entry["vendor_id"] and _invoice_number_key(e["invoice_number"]) == number
                   for e in self.entries):
                return json_response(409, {"error": "duplicate_invoice",
                                           "message": "this vendor's invoice number is recorded already"})
            entry["entry_id"] = f"LE-{next(self._ids):06d}"
            entry["status"] = "posted"
            self.entries.append(entry)
            self._by_key[key] = (entry, body)
            po = self.purchase_orders.get(entry.get("po_number") or "")
            if po is not None:
                from decimal import Decimal

                po["invoiced"] = str(Decimal(po["invoiced"]) + Decimal(entry["total"]))
        return json_response(201, dict(entry))

    def _entry(self, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        missing = [f for f in _LEDGER_TEXT if not isinstance(body.get(f), str) or not body[f].strip()]
        if missing:
            return None, f"missing or empty: {', '.join(missing)}"
        wrong = [f for f in _LEDGER_OPTIONAL if body.get(f) is not None and not isinstance(body[f], str)]
        if wrong or any(len(str(body.get(f) or "")) > 64 for f in (*_LEDGER_TEXT, *_LEDGER_OPTIONAL)):
            return None, "fields must be strings of at most 64 characters"
        if body["vendor_id"] not in self.vendors:
            return None, "no vendor with this vendor_id"
        amounts = [body[f] for f in ("total", "subtotal", "tax") if body.get(f) is not None]
        if not all(_DECIMAL.match(a) for a in amounts):
            return None, "amounts must be decimal strings"
        approved_by = body.get("approved_by", [])
        if not isinstance(approved_by, list) or not all(isinstance(a, str) for a in approved_by) or \
                len(approved_by) > 10:
            return None, "approved_by must be a list of strings"
        entry = {f: body[f] for f in _LEDGER_TEXT}
        entry.update({f: body.get(f) for f in _LEDGER_OPTIONAL})
        entry["approved_by"] = list(approved_by)
        return entry, ""


class LocalFakes:
    """Everything mounted under ``/_local/``: ``/_local/crm/...``, ``/_local/helpdesk/...``,
    ``/_local/enrichment/...``, ``/_local/slack/...``, ``/_local/erp/...`` and ``/_local/graph/...`` (WhatsApp's
    Graph API)."""

    def __init__(self) -> None:
        self.crm = FakeCrm()
        self.helpdesk = FakeHelpdesk()
        self.enrichment = FakeEnrichment()
        self.slack = FakeSlack()
        self.erp = FakeErp()
        self.graph = FakeGraphApi()

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
        if system == "enrichment":
            return self.enrichment.handle(request, sub)
        if system == "slack":
            return self.slack.handle(request, sub)
        if system == "erp":
            return self.erp.handle(request, sub)
        if system == "graph":
            return self.graph.handle(request, sub)
        return _not_found()


def _not_found() -> Response:
    return json_response(404, {"message": "Not Found"})


def _method_not_allowed(allow: str) -> Response:
    return json_response(405, {"message": "Method Not Allowed"}, {"Allow": allow})
