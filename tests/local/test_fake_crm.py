"""The CRM connector against the local fake CRM: they speak one protocol, with the address in the body."""

from __future__ import annotations

import httpx
import pytest
from interlock.connectors.crm import HttpCrm
from interlock.errors import CrmUnavailable
from interlock.local.fakes import FakeCrm
from interlock.local.http_types import Request


def served_by(fake: FakeCrm, seen: list[httpx.Request]) -> httpx.MockTransport:
    """An httpx transport that hands each request to the fake, as the local gateway does under /_local/crm."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        query = {key: request.url.params.get_list(key) for key in request.url.params}
        local = Request(request.method, request.url.path, query, list(request.headers.items()), request.content)
        answer = fake.handle(local, request.url.path.removeprefix("/_local/crm"))
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    return httpx.MockTransport(handle)


def test_the_connector_finds_a_seeded_account_without_the_address_in_any_url() -> None:
    seen: list[httpx.Request] = []
    crm = HttpCrm("http://127.0.0.1:8000/_local/crm", transport=served_by(FakeCrm(), seen))

    account = crm.find_account("Grace@Example.com")
    nobody = crm.find_account("nobody@example.com")

    assert account is not None and (account.account_id, account.plan) == ("acc_grace", "pro")
    assert nobody is None
    assert [str(r.url) for r in seen] == ["http://127.0.0.1:8000/_local/crm/accounts/search"] * 2
    assert all("example.com" not in str(r.url) for r in seen)


def test_the_fake_answers_an_outage_with_503_and_a_search_without_an_address_with_400() -> None:
    fake = FakeCrm()
    crm = HttpCrm("http://127.0.0.1:8000/_local/crm", transport=served_by(fake, []))
    fake.outage.enabled = True

    with pytest.raises(CrmUnavailable) as down:
        crm.find_account("ada@example.com")

    fake.outage.enabled = False
    assert down.value.details == {"status": 503}
    assert fake.handle(Request("POST", "/accounts/search", body=b'{"name": "x"}'), "/accounts/search").status == 400
    assert fake.handle(Request("GET", "/accounts/search"), "/accounts/search").status == 405
