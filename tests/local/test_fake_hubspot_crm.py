"""The local fake CRM's HubSpot CRM v3 objects, on their own and with the CRM connector speaking to them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from interlock.connectors.crm import HttpCrm
from interlock.errors import CrmRejected, CrmUnavailable
from interlock.local.fakes import FakeCrm, LocalFakes
from interlock.local.http_types import Request

from .test_fake_crm import served_by


def call(fake: FakeCrm, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         query: dict[str, list[str]] | None = None) -> tuple[int, Any]:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    answer = fake.handle(Request(method, f"/_local/crm{path}", query or {}, list((headers or {}).items()), raw), path)
    return answer.status, json.loads(answer.body or b"null")


def crm(fake: FakeCrm, token: str | None = None) -> HttpCrm:
    return HttpCrm("http://127.0.0.1:8000/_local/crm", transport=served_by(fake, []), token=lambda: token)


def test_the_seeds_hold_a_known_company_with_an_owner_an_existing_contact_and_the_samples_contacts() -> None:
    connector = crm(FakeCrm())

    globex = connector.find_company_by_domain("GLOBEX.example")
    ada = connector.find_contact_by_email("ada@analytical.example")
    hedy = connector.get_contact("95001234501")

    assert globex is not None and (globex.id, globex.prop("hubspot_owner_id")) == ("9001", "7001")
    assert ada is not None and ada.id == "5001"
    assert hedy is not None and hedy.prop("email") == "hedy@initech.example"
    assert connector.find_contact_by_email("nobody@hooli.example") is None
    assert connector.find_company_by_domain("hooli.example") is None


def test_a_created_contact_is_found_after_and_a_second_create_for_its_address_is_a_conflict() -> None:
    fake = FakeCrm()
    connector = crm(fake)

    first = connector.create_contact({"email": "pat@hooli.example", "firstname": "Pat"}, None, "k1")
    second = connector.create_contact({"email": "PAT@hooli.example"}, None, "k2")
    status, conflict = call(fake, "POST", "/crm/v3/objects/contacts", {"properties": {"email": "pat@hooli.example"}})

    assert first.created and (second.contact_id, second.created) == (first.contact_id, False)
    assert (status, conflict["category"]) == (409, "CONFLICT")
    assert conflict["message"] == f"Contact already exists. Existing ID: {first.contact_id}"
    found = connector.find_contact_by_email("pat@hooli.example")
    assert found is not None and found.id == first.contact_id


def test_a_create_repeated_with_its_idempotency_key_answers_the_first_object_and_another_body_is_refused() -> None:
    fake = FakeCrm()
    deal = {"properties": {"dealname": "Hooli - new business"}, "associations": []}

    first = call(fake, "POST", "/crm/v3/objects/deals", deal, {"Idempotency-Key": "k"})
    again = call(fake, "POST", "/crm/v3/objects/deals", deal, {"Idempotency-Key": "k"})
    other = call(fake, "POST", "/crm/v3/objects/deals", {"properties": {"dealname": "x"}}, {"Idempotency-Key": "k"})

    assert first[0] == again[0] == 201 and first[1]["id"] == again[1]["id"]
    assert other[0] == 422
    assert len(fake.hubspot.listing("deals")) == 1


def test_deals_and_tasks_are_created_with_their_associations_and_listed() -> None:
    fake = FakeCrm()
    connector = crm(fake)

    deal_id = connector.create_deal({"dealname": "Globex - pro plan", "interlock_discount_pct": "10"}, "5001", "9001",
                                    "d")
    task_id = connector.create_task({"hs_timestamp": "2025-01-16T09:00:00.000Z", "hs_task_subject": "Research"},
                                    "5001", "9003", "t")
    connector.update_contact("5001", {"interlock_lead_score": "55"})
    connector.associate_contact_with_company("5001", "9001")

    status, deals = call(fake, "GET", "/crm/v3/objects/deals")
    assert status == 200 and [d["id"] for d in deals["results"]] == [deal_id]
    assert deals["results"][0]["associations"] == {"contacts": ["5001"], "companies": ["9001"]}
    assert fake.hubspot.objects["tasks"][task_id]["associations"] == {"contacts": ["5001"], "companies": ["9003"]}
    ada = call(fake, "GET", "/crm/v3/objects/contacts/5001")[1]
    assert ada["properties"]["interlock_lead_score"] == "55" and ada["associations"]["companies"] == ["9003", "9001"]


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/crm/v3/objects/contacts/search", b"not json", 400),
    ("POST", "/crm/v3/objects/contacts/search", {"filterGroups": []}, 400),
    ("POST", "/crm/v3/objects/contacts/search", {"filterGroups": [{"filters": [{"propertyName": "email",
                                                                                "operator": "LIKE", "value": "a"}]}]},
     400),
    ("POST", "/crm/v3/objects/contacts/search", {"filterGroups": [{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "a"}]}], "limit": 0}, 400),
    ("POST", "/crm/v3/objects/deals/search", {"filterGroups": [{"filters": [
        {"propertyName": "dealname", "operator": "EQ", "value": "a"}]}]}, 400),
    ("POST", "/crm/v3/objects/contacts", {"properties": {"shoe_size": "44"}}, 400),
    ("POST", "/crm/v3/objects/contacts", {"properties": {"email": ["a"]}}, 400),
    ("POST", "/crm/v3/objects/contacts", {"properties": {}, "associations": [{"to": {"id": "404"}, "types": [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]}, 400),
    ("POST", "/crm/v3/objects/deals", {"properties": {}, "associations": [{"to": {"id": "5001"}, "types": [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]}]}, 400),
    ("POST", "/crm/v3/objects/tasks", {"properties": {"hs_task_subject": "no timestamp"}}, 400),
    ("POST", "/crm/v3/objects/companies", {"properties": {"name": "x"}}, 405),
    ("PATCH", "/crm/v3/objects/contacts/404", {"properties": {"company": "x"}}, 404),
    ("PATCH", "/crm/v3/objects/contacts/5001", [1], 400),
    ("DELETE", "/crm/v3/objects/contacts/5001", None, 405),
    ("GET", "/crm/v3/objects/tickets", None, 404),
    ("GET", "/crm/v3/objects/contacts/404", None, 404),
    ("PUT", "/crm/v4/objects/contacts/5001/associations/default/companies/404", None, 404),
    ("GET", "/crm/v4/objects/contacts/5001/associations/default/companies/9001", None, 405),
])
def test_bad_input_gets_a_4xx(method: str, path: str, body: Any, status: int) -> None:
    assert call(FakeCrm(), method, path, body)[0] == status


def test_with_a_token_the_fake_requires_it_and_without_one_a_malformed_header_is_still_refused() -> None:
    strict = FakeCrm(token="pat-local")

    with pytest.raises(CrmRejected) as refused:
        crm(strict).find_contact_by_email("ada@analytical.example")

    assert refused.value.details == {"status": 401}
    assert crm(strict, token="pat-local").find_contact_by_email("ada@analytical.example") is not None
    assert call(FakeCrm(), "GET", "/crm/v3/objects/contacts", headers={"Authorization": "Basic x"})[0] == 401


def test_the_outage_switch_takes_the_hubspot_objects_down_with_the_accounts() -> None:
    fake = FakeCrm()
    fake.outage.enabled = True

    with pytest.raises(CrmUnavailable) as down:
        crm(fake).find_contact_by_email("ada@analytical.example")

    assert down.value.details == {"status": 503}


def test_the_gateway_mount_routes_the_crm_enrichment_and_slack_fakes() -> None:
    fakes = LocalFakes()

    def status(method: str, path: str, query: dict[str, list[str]] | None = None) -> int:
        return fakes.handle(Request(method, path, query or {})).status

    assert status("GET", "/_local/crm/crm/v3/objects/companies") == 200
    assert status("GET", "/_local/enrichment/v2/companies/find", {"domain": ["hooli.example"]}) == 200
    assert status("GET", "/_local/slack/messages") == 200
    assert status("GET", "/_local/nothing") == 404
    assert fakes.handle(Request("POST", "/_local/crm/accounts/search", body=b'{"email": "ada@example.com"}')).status \
        == 200
