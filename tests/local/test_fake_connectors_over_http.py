"""The lead workflow's connectors over real HTTP to the local gateway's fakes: every method and query passes; and
the helpdesk's tasks, through the connector and straight at the fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from interlock.connectors.crm import HttpCrm
from interlock.connectors.enrichment import HttpEnrichment
from interlock.connectors.helpdesk import HttpHelpdesk
from interlock.connectors.slack import HttpSlack
from interlock.errors import HelpdeskRejected, HelpdeskUnavailable
from interlock.local.fakes import FAKE_SLACK_TOKEN, FakeHelpdesk
from interlock.local.gateway import Gateway
from interlock.topology import Topology

from .test_fake_enrichment_slack import transport
from .test_gateway import FakeFunctions

TASKS = "http://127.0.0.1:8000/_local/helpdesk/tasks"
TASK: dict[str, Any] = {"title": "Where is order SO-10042?", "body": "The customer asks where their order is.",
                        "requester": "447700900123", "team": "support"}


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


# -- the helpdesk's tasks -----------------------------------------------------------------------------------------


def test_the_helpdesk_connector_opens_a_task_once_per_key_through_the_gateway(gateway: Gateway) -> None:
    helpdesk = HttpHelpdesk(f"{gateway.url}/_local/helpdesk")
    fields = {k: TASK[k] for k in ("title", "body", "requester")}

    task_id = helpdesk.create_task("run-1:open_task", **fields, team="billing")
    again = helpdesk.create_task("run-1:open_task", **fields, team="billing")  # a retried step
    other = helpdesk.create_task("run-2:open_task", **fields)  # another run: another task, for support
    reply = helpdesk.send_reply("run-1", "ada@example.com", "Re: your order", "It is on its way.")

    assert task_id == again != other and task_id.startswith("task_")
    listed = httpx.get(f"{gateway.url}/_local/helpdesk/tasks").json()["tasks"]
    assert [(t["task_id"], t["team"], t["idempotency_key"]) for t in listed] == [
        (task_id, "billing", "run-1:open_task"), (other, "support", "run-2:open_task")]
    assert {"title", "body", "requester", "created_at"} <= listed[0].keys() and listed[0]["title"] == TASK["title"]
    replies = httpx.get(f"{gateway.url}/_local/helpdesk/replies").json()["replies"]
    assert [r["reply_id"] for r in replies] == [reply]  # the replies are where they were, and no task among them


def test_a_repeated_task_is_replayed_and_a_reused_key_with_another_body_is_422() -> None:
    fake = FakeHelpdesk()
    client = httpx.Client(transport=transport(fake.handle, "helpdesk"))

    first = client.post(TASKS, json=TASK, headers={"Idempotency-Key": "k1"})
    again = client.post(TASKS, json=TASK, headers={"Idempotency-Key": "k1"})
    reused = client.post(TASKS, json={**TASK, "body": "something else"}, headers={"Idempotency-Key": "k1"})

    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (reused.status_code, reused.json()["error"]) == (422, "idempotency_key_reused")
    assert [t["task_id"] for t in fake.tasks()] == [first.json()["task_id"]]
    assert client.get(TASKS).json() == {"tasks": fake.tasks()}


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": ""}, {"Idempotency-Key": "  "},
                                     {"Idempotency-Key": "k" * 201}], ids=["none", "empty", "blank", "too-long"])
def test_a_task_without_an_idempotency_key_is_400(headers: dict[str, str]) -> None:
    fake = FakeHelpdesk()

    answer = httpx.Client(transport=transport(fake.handle, "helpdesk")).post(TASKS, json=TASK, headers=headers)

    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    assert fake.tasks() == []


@pytest.mark.parametrize(
    "changes",
    [{"title": ""}, {"title": "   "}, {"title": "t" * 201}, {"title": 7}, {"body": "b" * 10_001}, {"body": None},
     {"requester": ""}, {"requester": None}, {"team": "sales"}, {"team": None}, {"team": "Support"}],
    ids=["no-title", "blank-title", "long-title", "number-title", "long-body", "no-body", "empty-requester",
         "no-requester", "unknown-team", "no-team", "team-case"],
)
def test_an_invalid_task_is_400_invalid_task_and_nothing_is_opened(changes: dict[str, Any]) -> None:
    fake = FakeHelpdesk()

    answer = httpx.Client(transport=transport(fake.handle, "helpdesk")).post(
        TASKS, json={**TASK, **changes}, headers={"Idempotency-Key": "k1"})

    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_task")
    assert fake.tasks() == []


def test_the_limits_of_a_task_are_inclusive_and_every_team_is_known() -> None:
    fake = FakeHelpdesk()
    client = httpx.Client(transport=transport(fake.handle, "helpdesk"))

    answers = [client.post(TASKS, json={**TASK, "title": "t" * 200, "body": "b" * 10_000, "team": team},
                           headers={"Idempotency-Key": f"k-{team}"}) for team in ("support", "billing", "engineering")]
    empty_body = client.post(TASKS, json={**TASK, "body": ""}, headers={"Idempotency-Key": "k-empty"})

    assert [a.status_code for a in [*answers, empty_body]] == [201, 201, 201, 201]
    assert [t["team"] for t in fake.tasks()] == ["support", "billing", "engineering", "support"]


def test_a_task_in_an_outage_is_unavailable_and_a_refused_one_is_rejected_through_the_connector() -> None:
    fake = FakeHelpdesk()
    helpdesk = HttpHelpdesk("http://127.0.0.1:8000/_local/helpdesk", transport=transport(fake.handle, "helpdesk"))
    fields = {k: TASK[k] for k in ("title", "body", "requester")}

    fake.outage.enabled = True
    with pytest.raises(HelpdeskUnavailable) as down:
        helpdesk.create_task("k1", **fields)
    fake.outage.enabled = False
    with pytest.raises(HelpdeskRejected) as refused:
        helpdesk.create_task("k1", **fields, team="sales")
    helpdesk.create_task("k1", **fields)
    with pytest.raises(HelpdeskRejected) as reused:
        helpdesk.create_task("k1", **{**fields, "title": "Another task"})

    assert down.value.retryable and down.value.step == "create_task"
    assert not refused.value.retryable and refused.value.details == {"status": 400}
    assert reused.value.details == {"status": 422} and len(fake.tasks()) == 1
    assert TASK["title"] not in str(reused.value) and TASK["requester"] not in str(refused.value)
