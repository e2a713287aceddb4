"""The lead workflow's connectors over real HTTP to the local gateway's fakes: every method and query passes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from interlock.connectors.crm import HttpCrm
from interlock.connectors.enrichment import HttpEnrichment
from interlock.connectors.slack import HttpSlack
from interlock.local.fakes import FAKE_SLACK_TOKEN
from interlock.local.gateway import Gateway
from interlock.topology import Topology

from .test_gateway import FakeFunctions


@pytest.fixture
def gateway(topology: Topology) -> Iterator[Gateway]:
    served = Gateway(topology, port=0)
    served.start(FakeFunctions().invoke)
    yield served
    served.stop()


def test_the_crm_connector_writes_through_the_gateway_and_the_writes_are_listed(gateway: Gateway) -> None:
    crm = HttpCrm(f"{gateway.url}/_local/crm")

    ada = crm.find_contact_by_email("ada@analytical.example")
    crm.update_contact("5001", {"interlock_lead_score": "61"})
    crm.associate_contact_with_company("5001", "9001")
    name, key = {"dealname": "Analytical Engines - new business"}, "run-1:write_crm:deal"
    deal = crm.create_deal(name, "5001", "9003", key)
    again = crm.create_deal(name, "5001", "9003", key)  # a repeat with its idempotency key
    contact = httpx.get(f"{gateway.url}/_local/crm/crm/v3/objects/contacts/5001").json()  # every property

    assert ada is not None and contact["properties"]["interlock_lead_score"] == "61"
    assert contact["associations"]["companies"] == ["9003", "9001"]
    assert deal == again
    listed = httpx.get(f"{gateway.url}/_local/crm/crm/v3/objects/deals").json()["results"]
    assert [d["id"] for d in listed] == [deal]


def test_the_enrichment_and_slack_connectors_through_the_gateway(gateway: Gateway) -> None:
    enrichment = HttpEnrichment(f"{gateway.url}/_local/enrichment")
    slack = HttpSlack(f"{gateway.url}/_local/slack", token=lambda: FAKE_SLACK_TOKEN)

    found = enrichment.find_company("initech.example")
    posted = slack.post_message("U07OMAR04", "New lead for you: Hedy Lamarr at Initech.")

    assert found is not None and (found.employees, found.country_code) == (350, "GB")
    assert enrichment.find_company("nowhere.example") is None
    messages = httpx.get(f"{gateway.url}/_local/slack/messages").json()["messages"]
    assert [(m["channel"], m["ts"]) for m in messages] == [("U07OMAR04", posted.ts)]
