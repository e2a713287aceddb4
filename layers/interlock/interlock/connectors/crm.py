"""The CRM: account context for triage, and HubSpot's CRM v3 objects for the sales-ops lead workflow.

One connector, one base URL, one ``httpx.Client`` reused by every call
(:class:`interlock.connectors.http.SharedClient`).

**Account lookup** (triage). ``POST {base}/accounts/search`` with JSON ``{"email": "<email>"}`` answers 200 with the
account, 404 when there is none; anything else (5xx, a timeout, a refused connection) means the CRM is unavailable
and is retried.

**HubSpot CRM v3** (the lead workflow), with the private app's token as a bearer token when one is configured:

* ``POST /crm/v3/objects/contacts/search`` and ``/companies/search`` with ``filterGroups`` (``email EQ``,
  ``domain EQ``): ``{"total", "results": [{"id", "properties"}]}``;
* ``GET /crm/v3/objects/contacts/{id}?properties=...``: the contact, 404 when there is none;
* ``POST /crm/v3/objects/contacts`` (``{"properties", "associations"}``): 201; **409** ``CONFLICT`` "Contact
  already exists. Existing ID: <id>" when the address is taken, read here as "exists" (the search index lags
  writes by seconds, so a search that found nothing does not prove there is nothing);
  ``PATCH /crm/v3/objects/contacts/{id}``: 200;
* ``PUT /crm/v4/objects/contacts/{id}/associations/default/companies/{company_id}``: the default association;
* ``POST /crm/v3/objects/deals`` and ``/tasks`` with ``associations`` (HubSpot-defined types: deal to contact 3,
  deal to company 5, task to contact 204, task to company 192, contact to company 279).

Writes carry an ``Idempotency-Key`` (the ledger's key for the effect). HubSpot itself ignores the header; the
ledger (``ctx.once``) is what makes a repeated step write once, and the local fake honours the header as well.

429 and 5xx are :class:`~interlock.errors.CrmUnavailable` (retried); other 4xx are
:class:`~interlock.errors.CrmRejected` (another try cannot help). The address is in the body, never in the URL: URLs
end up in access logs, proxies, traces and exception messages. The errors raised here name what happened (a status,
an exception's class, the fields that did not validate), never a URL, a body, a token or a value from either.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from interlock.aws import once_per_process
from interlock.connectors.http import SharedClient, TokenSource, bearer, no_token, read_model
from interlock.errors import CrmRejected, CrmUnavailable

if TYPE_CHECKING:
    import httpx

# HubSpot-defined association types (associationCategory HUBSPOT_DEFINED).
DEAL_TO_CONTACT = 3
DEAL_TO_COMPANY = 5
TASK_TO_CONTACT = 204
TASK_TO_COMPANY = 192
CONTACT_TO_COMPANY = 279

# What the lead workflow reads of a contact and a company. requested_discount_pct and plan_interest are custom
# contact properties a portal creates for the lead form (docs: workflows/sales_lead/README.md).
CONTACT_PROPERTIES = ("email", "firstname", "lastname", "company", "website", "message", "hubspot_owner_id",
                      "requested_discount_pct", "plan_interest")
COMPANY_PROPERTIES = ("name", "domain", "hubspot_owner_id", "industry", "numberofemployees", "country")

_EXISTING_ID = re.compile(r"Existing ID:\s*([0-9]+)")
_OBJECT_ID = re.compile(r"[0-9]{1,30}")


class Account(BaseModel):
    model_config = ConfigDict(extra="ignore")

    account_id: str
    name: str
    plan: str | None = None
    tier: str | None = None
    open_tickets: int | None = None
    lifetime_value: float | None = None


class CrmObject(BaseModel):
    """A HubSpot CRM object as v3 returns it: its id and its properties (every value a string or null)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=40)
    properties: dict[str, str | None] = Field(default_factory=dict)

    def prop(self, name: str) -> str | None:
        value = self.properties.get(name)
        return value if value not in (None, "") else None


class _Search(BaseModel):
    model_config = ConfigDict(extra="ignore")

    total: int = 0
    results: list[CrmObject] = Field(default_factory=list)


class _Created(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=40)


class ContactWrite(BaseModel):
    contact_id: str
    created: bool  # False: the address belonged to a contact already (409), which was updated instead


class Crm(Protocol):
    def find_account(self, email: str) -> Account | None: ...


class LeadCrm(Protocol):
    """What the lead workflow asks of the CRM (HubSpot's CRM v3 objects)."""

    def find_contact_by_email(self, email: str) -> CrmObject | None: ...
    def get_contact(self, contact_id: str) -> CrmObject | None: ...
    def find_company_by_domain(self, domain: str) -> CrmObject | None: ...
    def create_contact(self, properties: dict[str, str], company_id: str | None,
                       idempotency_key: str) -> ContactWrite: ...
    def update_contact(self, contact_id: str, properties: dict[str, str]) -> str: ...
    def associate_contact_with_company(self, contact_id: str, company_id: str) -> None: ...
    def create_deal(self, properties: dict[str, str], contact_id: str, company_id: str | None,
                    idempotency_key: str) -> str: ...
    def create_task(self, properties: dict[str, str], contact_id: str | None, company_id: str | None,
                    idempotency_key: str) -> str: ...


def _assoc(object_id: str, type_id: int) -> dict[str, Any]:
    return {"to": {"id": object_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                "associationTypeId": type_id}]}


def _read(response: httpx.Response, model: type[Any], what: str, step: str) -> Any:
    return read_model(response, model, CrmUnavailable, f"CRM answered with an unreadable {what}", step)


def _object_id(value: str, step: str) -> str:
    """A HubSpot object id (digits) for a URL path; anything else is refused before it reaches one."""
    if not _OBJECT_ID.fullmatch(value):
        raise CrmRejected("not a CRM object id", step=step)
    return quote(value, safe="")


class HttpCrm:
    def __init__(self, base_url: str, timeout_seconds: float = 3.0, transport: httpx.BaseTransport | None = None,
                 token: TokenSource = no_token) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.transport = transport
        self.token = token
        self._http = SharedClient(timeout_seconds, transport)

    # -- account lookup (triage) ------------------------------------------------------------------------------

    def find_account(self, email: str) -> Account | None:
        response = self._call("POST", "/accounts/search", step="fetch_account", json={"email": email}, auth=False)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise CrmUnavailable(f"CRM answered {response.status_code}", step="fetch_account",
                                 status=response.status_code)
        account: Account = _read(response, Account, "account", "fetch_account")
        return account

    # -- HubSpot CRM v3 (the lead workflow) ----------------------------------------------------------------

    def find_contact_by_email(self, email: str) -> CrmObject | None:
        return self._search("contacts", "email", email.strip().lower(), CONTACT_PROPERTIES, step="dedupe")

    def find_company_by_domain(self, domain: str) -> CrmObject | None:
        return self._search("companies", "domain", domain.strip().lower(), COMPANY_PROPERTIES, step="dedupe")

    def get_contact(self, contact_id: str) -> CrmObject | None:
        path = f"/crm/v3/objects/contacts/{_object_id(contact_id, 'fetch_contact')}"
        response = self._call("GET", path, step="fetch_contact", params={"properties": ",".join(CONTACT_PROPERTIES)})
        if response.status_code == 404:
            return None
        self._check(response, "fetch_contact")
        contact: CrmObject = _read(response, CrmObject, "contact", "fetch_contact")
        return contact

    def create_contact(self, properties: dict[str, str], company_id: str | None,
                       idempotency_key: str) -> ContactWrite:
        body: dict[str, Any] = {"properties": properties}
        if company_id:
            body["associations"] = [_assoc(company_id, CONTACT_TO_COMPANY)]
        response = self._call("POST", "/crm/v3/objects/contacts", step="write_crm", json=body,
                              key=idempotency_key)
        if response.status_code == 409:
            existing = self._existing_id(response)
            if existing is not None:
                return ContactWrite(contact_id=existing, created=False)
        self._check(response, "write_crm")
        created: _Created = _read(response, _Created, "new contact", "write_crm")
        return ContactWrite(contact_id=created.id, created=True)

    def update_contact(self, contact_id: str, properties: dict[str, str]) -> str:
        path = f"/crm/v3/objects/contacts/{_object_id(contact_id, 'write_crm')}"
        response = self._call("PATCH", path, step="write_crm", json={"properties": properties})
        self._check(response, "write_crm")
        return contact_id

    def associate_contact_with_company(self, contact_id: str, company_id: str) -> None:
        path = (f"/crm/v4/objects/contacts/{_object_id(contact_id, 'write_crm')}/associations/default/companies/"
                f"{_object_id(company_id, 'write_crm')}")
        self._check(self._call("PUT", path, step="write_crm"), "write_crm")

    def create_deal(self, properties: dict[str, str], contact_id: str, company_id: str | None,
                    idempotency_key: str) -> str:
        associations = [_assoc(contact_id, DEAL_TO_CONTACT)]
        if company_id:
            associations.append(_assoc(company_id, DEAL_TO_COMPANY))
        return self._create("deals", properties, associations, idempotency_key, step="write_crm")

    def create_task(self, properties: dict[str, str], contact_id: str | None, company_id: str | None,
                    idempotency_key: str) -> str:
        associations = []
        if contact_id:
            associations.append(_assoc(contact_id, TASK_TO_CONTACT))
        if company_id:
            associations.append(_assoc(company_id, TASK_TO_COMPANY))
        return self._create("tasks", properties, associations, idempotency_key, step="create_fallback_task")

    # -- the calls ---------------------------------------------------------------------------------------

    def _search(self, objects: str, prop: str, value: str, properties: tuple[str, ...],
                step: str) -> CrmObject | None:
        body = {"filterGroups": [{"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}],
                "properties": list(properties), "limit": 1}
        response = self._call("POST", f"/crm/v3/objects/{objects}/search", step=step, json=body)
        self._check(response, step)
        found: _Search = _read(response, _Search, f"{objects} search", step)
        return found.results[0] if found.results else None

    def _create(self, objects: str, properties: dict[str, str], associations: list[dict[str, Any]],
                idempotency_key: str, step: str) -> str:
        response = self._call("POST", f"/crm/v3/objects/{objects}", step=step,
                              json={"properties": properties, "associations": associations}, key=idempotency_key)
        self._check(response, step)
        created: _Created = _read(response, _Created, f"new {objects[:-1]}", step)
        return created.id

    def _call(self, method: str, path: str, *, step: str, json: Any = None, params: dict[str, str] | None = None,
              key: str | None = None, auth: bool = True) -> httpx.Response:
        import httpx

        headers = bearer(self.token()) if auth else {}
        if key:
            headers["Idempotency-Key"] = key
        try:
            return self._http.get().request(method, f"{self.base_url}{path}", json=json, params=params,
                                            headers=headers)
        except httpx.HTTPError as exc:  # not chained: an exception's text may quote the request (its URL, its body)
            raise CrmUnavailable(f"CRM request failed: {type(exc).__name__}", step=step) from None

    @staticmethod
    def _check(response: httpx.Response, step: str) -> None:
        status = response.status_code
        if status in (200, 201, 204):
            return
        if status == 429 or status >= 500:
            raise CrmUnavailable(f"CRM answered {status}", step=step, status=status)
        raise CrmRejected(f"CRM refused the request ({status})", step=step, status=status)

    @staticmethod
    def _existing_id(response: httpx.Response) -> str | None:
        try:
            message = response.json().get("message", "")
        except (ValueError, AttributeError):
            return None
        match = _EXISTING_ID.search(message) if isinstance(message, str) else None
        return match.group(1) if match else None


@once_per_process
def from_settings() -> HttpCrm | None:
    """The process's CRM connector (one client for every call), or None when ``crm_base_url`` is not set."""
    from interlock.connectors.http import token_source
    from interlock.settings import CrmSettings, CrmTokenSettings, load

    settings = load(CrmSettings)
    if not settings.crm_base_url:
        return None
    auth = load(CrmTokenSettings)
    return HttpCrm(settings.crm_base_url, settings.crm_timeout_seconds,
                   token=token_source(auth.crm_token_secret, "", auth.crm_token_cache_seconds,
                                      reason="crm_token_unreadable"))
