"""The CRM connector's HubSpot CRM v3 calls: the requests it makes, how it reads answers and maps failures."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from interlock.connectors import crm as crm_module
from interlock.connectors.crm import HttpCrm
from interlock.errors import CrmRejected, CrmUnavailable

TOKEN = "pat-na1-0000-secret-token"
BASE = "https://api.hubapi.example"


def connector(answer: Callable[[httpx.Request], httpx.Response],
              seen: list[httpx.Request] | None = None, token: str | None = TOKEN) -> HttpCrm:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return answer(request)

    return HttpCrm(BASE, transport=httpx.MockTransport(handle), token=lambda: token)


def body(request: httpx.Request) -> dict:
    return json.loads(request.content)


def test_a_contact_is_searched_by_address_in_the_body_with_the_bearer_token() -> None:
    seen: list[httpx.Request] = []
    found = {"total": 1, "results": [{"id": "5001", "properties": {"email": "ada@analytical.example",
                                                                   "hubspot_owner_id": "7001"}}]}
    crm = connector(lambda r: httpx.Response(200, json=found), seen)

    contact = crm.find_contact_by_email(" Ada@Analytical.example ")

    assert contact is not None and (contact.id, contact.prop("hubspot_owner_id")) == ("5001", "7001")
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/crm/v3/objects/contacts/search")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert body(request)["filterGroups"] == [{"filters": [{"propertyName": "email", "operator": "EQ",
                                                           "value": "ada@analytical.example"}]}]
    assert "email" in body(request)["properties"] and body(request)["limit"] == 1


def test_no_token_configured_sends_no_authorization_header() -> None:
    seen: list[httpx.Request] = []

    connector(lambda r: httpx.Response(200, json={"total": 0, "results": []}), seen, token=None) \
        .find_company_by_domain("globex.example")

    assert "Authorization" not in seen[0].headers
    assert body(seen[0])["filterGroups"][0]["filters"][0] == {"propertyName": "domain", "operator": "EQ",
                                                              "value": "globex.example"}


def test_an_empty_search_is_none_and_a_contact_that_is_not_there_is_none() -> None:
    assert connector(lambda r: httpx.Response(200, json={"total": 0, "results": []})).find_contact_by_email(
        "x@y.example") is None
    assert connector(lambda r: httpx.Response(404, json={"status": "error"})).get_contact("123") is None


def test_a_contact_is_read_by_id_with_the_properties_the_workflow_needs() -> None:
    seen: list[httpx.Request] = []
    crm = connector(lambda r: httpx.Response(200, json={"id": "42", "properties": {"email": "a@b.example"}}), seen)

    assert crm.get_contact("42") is not None

    assert seen[0].url.path == "/crm/v3/objects/contacts/42"
    assert seen[0].url.params["properties"].split(",") == list(crm_module.CONTACT_PROPERTIES)


@pytest.mark.parametrize("object_id", ["../companies", "1/2", "", "12a", "1" * 31])
def test_an_id_that_is_not_a_crm_id_never_reaches_a_url(object_id: str) -> None:
    seen: list[httpx.Request] = []

    with pytest.raises(CrmRejected):
        connector(lambda r: httpx.Response(200), seen).get_contact(object_id)

    assert seen == []


def test_a_contact_is_created_with_its_company_association_and_the_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    crm = connector(lambda r: httpx.Response(201, json={"id": "100001", "properties": {}}), seen)

    written = crm.create_contact({"email": "a@b.example"}, "9001", "run-1:write_crm:contact")

    assert (written.contact_id, written.created) == ("100001", True)
    assert body(seen[0]) == {"properties": {"email": "a@b.example"}, "associations": [
        {"to": {"id": "9001"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]}
    assert seen[0].headers["Idempotency-Key"] == "run-1:write_crm:contact"


def test_a_create_refused_as_a_conflict_names_the_existing_contact() -> None:
    conflict = {"status": "error", "message": "Contact already exists. Existing ID: 37765128953",
                "category": "CONFLICT"}

    written = connector(lambda r: httpx.Response(409, json=conflict)).create_contact({"email": "a@b.example"}, None,
                                                                                   "k")

    assert (written.contact_id, written.created) == ("37765128953", False)


def test_a_conflict_without_an_existing_id_is_refused() -> None:
    with pytest.raises(CrmRejected) as raised:
        connector(lambda r: httpx.Response(409, json={"message": "something else"})).create_contact({}, None, "k")

    assert raised.value.details == {"status": 409}


def test_updates_associations_deals_and_tasks_use_hubspots_paths_and_association_types() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201 if request.method == "POST" else 200, json={"id": "555", "properties": {}})

    crm = connector(answer, seen)
    crm.update_contact("5001", {"interlock_lead_score": "80"})
    crm.associate_contact_with_company("5001", "9003")
    deal = crm.create_deal({"dealname": "Hooli - new business"}, "5001", "9003", "k-deal")
    task = crm.create_task({"hs_timestamp": "2025-01-16T09:00:00.000Z"}, "5001", None, "k-task")

    assert (deal, task) == ("555", "555")
    assert [(r.method, r.url.path) for r in seen] == [
        ("PATCH", "/crm/v3/objects/contacts/5001"),
        ("PUT", "/crm/v4/objects/contacts/5001/associations/default/companies/9003"),
        ("POST", "/crm/v3/objects/deals"), ("POST", "/crm/v3/objects/tasks")]
    assert [a["types"][0]["associationTypeId"] for a in body(seen[2])["associations"]] == [3, 5]
    assert [a["types"][0]["associationTypeId"] for a in body(seen[3])["associations"]] == [204]
    assert seen[2].headers["Idempotency-Key"] == "k-deal"


@pytest.mark.parametrize(("status", "error"), [(429, CrmUnavailable), (500, CrmUnavailable), (503, CrmUnavailable),
                                               (400, CrmRejected), (401, CrmRejected), (403, CrmRejected)])
def test_failures_map_to_retried_or_refused_naming_the_status_only(status: int, error: type[Exception]) -> None:
    answer = httpx.Response(status, json={"message": "ada@analytical.example is bad", "token": TOKEN})

    with pytest.raises(error) as raised:
        connector(lambda r: answer).find_contact_by_email("ada@analytical.example")

    text = str(raised.value)
    assert str(status) in text and "ada@" not in text and TOKEN not in text and BASE not in text


def test_a_transport_failure_is_unavailable_without_the_request_in_the_text() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url} with {request.content!r}")

    with pytest.raises(CrmUnavailable) as raised:
        HttpCrm(BASE, transport=httpx.MockTransport(fail)).find_contact_by_email("ada@analytical.example")

    assert "ConnectError" in str(raised.value) and "ada@" not in str(raised.value) and BASE not in str(raised.value)


@pytest.mark.parametrize("answer", [httpx.Response(200, content=b"<html>"), httpx.Response(200, json={"results": 3}),
                                    httpx.Response(200, json={"results": [{"properties": {}}]})])
def test_an_unreadable_answer_is_unavailable_naming_only_fields(answer: httpx.Response) -> None:
    with pytest.raises(CrmUnavailable, match="unreadable contacts search"):
        connector(lambda r: answer).find_contact_by_email("a@b.example")


def test_one_http_client_serves_every_call_of_a_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[httpx.Client] = []
    real = httpx.Client.__init__

    def counting(self: httpx.Client, *args: object, **kwargs: object) -> None:
        created.append(self)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx.Client, "__init__", counting)
    crm = connector(lambda r: httpx.Response(200, json={"total": 0, "results": []}))
    for _ in range(5):
        crm.find_contact_by_email("a@b.example")
        crm.find_company_by_domain("b.example")

    assert len(created) == 1


def test_the_factory_builds_one_connector_per_process_and_none_without_a_base_url(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock.settings import load

    monkeypatch.setenv("INTERLOCK_TABLE_NAME", "t")
    monkeypatch.delenv("INTERLOCK_CRM_BASE_URL", raising=False)
    load.cache_clear()
    crm_module.from_settings.cache_clear()  # type: ignore[attr-defined]
    try:
        assert crm_module.from_settings() is None
        monkeypatch.setenv("INTERLOCK_CRM_BASE_URL", BASE)
        load.cache_clear()
        crm_module.from_settings.cache_clear()  # type: ignore[attr-defined]
        first = crm_module.from_settings()
        assert first is not None and first is crm_module.from_settings() and first.token() is None
    finally:
        load.cache_clear()
        crm_module.from_settings.cache_clear()  # type: ignore[attr-defined]
