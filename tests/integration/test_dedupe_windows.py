"""Each source's dedupe record lives as long as its provider keeps retrying: one genuinely signed delivery per
source through the real ingest handler (API Gateway REST events), against moto DynamoDB, SQS and Secrets
Manager, then the dedupe record read back from the table.

The minimums are the issue's, written out here rather than read from the source classes, so that shrinking a
window in the code fails this test: Stripe >= 3 days, WhatsApp >= 7, HubSpot, Slack, GitHub and form (Standard
Webhooks) >= 1. No window is longer than 30 days.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from interlock.topology import TOPOLOGY
from interlock.webhooks.standard import signed_headers

from integration.test_http_webhook import TICKET, body_of
from integration.test_source_hubspot import BASE_URL
from integration.test_source_hubspot import BODY as HUBSPOT_BATCH
from integration.test_source_hubspot import SECRET as HUBSPOT_SECRET
from integration.test_source_hubspot import signed as hubspot_signed
from integration.test_sources_slack_whatsapp import (
    APP_SECRET,
    BATCH,
    MENTION,
    SLACK_SECRET,
    VERIFY_TOKEN,
    answer,
    call,
    slack_headers,
    wa_headers,
)
from integration.test_sources_stripe_github import GITHUB, STRIPE, Provider

DAY = 24 * 3600
CEILING = 30 * DAY  # anything longer is a mistake (a window in ms, or no expiry at all), not caution

Send = Callable[[], tuple[bytes, dict[str, str]]]  # the same event, signed afresh at each call
PutSecret = Callable[..., None]


# -- one event per provider, its secret stored ---------------------------------------------------------------


def _form(put_secret: PutSecret, new_whsec: Callable[[], str]) -> Send:
    secret = new_whsec()
    put_secret("form", secret)
    body, msg_id = body_of(TICKET), "msg_" + secrets.token_hex(8)
    return lambda: (body, signed_headers(secret, msg_id, int(time.time()), body))


def _provider(provider: Provider) -> Callable[[PutSecret, Callable[[], str]], Send]:
    def prepare(put_secret: PutSecret, new_whsec: Callable[[], str]) -> Send:
        secret, event_id = provider.new_secret(), provider.new_event_id()
        put_secret(provider.name, secret)
        body = provider.body(event_id)
        return lambda: (body, provider.sign(secret, body, event_id, int(time.time())))

    return prepare


def _slack(put_secret: PutSecret, new_whsec: Callable[[], str]) -> Send:
    put_secret("slack", SLACK_SECRET)
    body = body_of(MENTION)
    return lambda: (body, slack_headers(body))


def _whatsapp(put_secret: PutSecret, new_whsec: Callable[[], str]) -> Send:
    put_secret("whatsapp", json.dumps({"signing": [APP_SECRET], "verify_token": VERIFY_TOKEN}))
    body = body_of(BATCH)  # a text message and a delivery status: two events, two dedupe records
    return lambda: (body, wa_headers(body))


def _hubspot(put_secret: PutSecret, new_whsec: Callable[[], str]) -> Send:
    put_secret("hubspot", HUBSPOT_SECRET)
    return lambda: (HUBSPOT_BATCH, hubspot_signed(HUBSPOT_BATCH))  # two events, two dedupe records


SOURCES = [
    pytest.param("form", 1, _form, id="form"),
    pytest.param("stripe", 3, _provider(STRIPE), id="stripe"),
    pytest.param("slack", 1, _slack, id="slack"),
    pytest.param("whatsapp", 7, _whatsapp, id="whatsapp"),
    pytest.param("hubspot", 1, _hubspot, id="hubspot"),
    pytest.param("github", 1, _provider(GITHUB), id="github"),
]


@pytest.fixture
def every_source(cloud, monkeypatch):
    monkeypatch.setenv("INTERLOCK_ENABLED_SOURCES", "form,stripe,slack,whatsapp,hubspot,github")
    monkeypatch.setenv("INTERLOCK_PUBLIC_BASE_URL", BASE_URL)  # HubSpot signs the URL it calls
    return cloud


def post(lambda_context, source: str, send: Send) -> list[dict[str, Any]]:
    """POST one signed delivery; the per-event answers (a batch answers ``{"events": [...]}``)."""
    body, headers = send()
    status, result = answer(call(lambda_context, source, body=body, headers=headers))
    assert 200 <= status < 300, result
    return result.get("events", [result])


def dedupe_items(cloud) -> dict[str, dict[str, Any]]:
    """Every dedupe record in the table, by its ``<source>:<event id>`` key."""
    table = TOPOLOGY.table
    found = {}
    for item in cloud.items():
        partition = item[table.partition_key]["S"]
        if partition.startswith("DEDUPE#"):
            assert item[table.sort_key]["S"] == "#DEDUPE"
            found[partition.removeprefix("DEDUPE#")] = item
    return found


# -- tests ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "minimum_days", "prepare"), SOURCES)
def test_given_a_signed_delivery_when_accepted_then_its_dedupe_record_expires_no_sooner_than_the_providers_retries(
    every_source, put_secret, new_whsec, lambda_context, source, minimum_days, prepare
):
    send = prepare(put_secret, new_whsec)
    before = int(time.time())

    accepted = post(lambda_context, source, send)

    after = time.time()
    assert accepted and not any(event["duplicate"] for event in accepted)
    records = dedupe_items(every_source)
    assert set(records) == {f"{source}:{event['event_id']}" for event in accepted}
    for key, item in records.items():
        expires_at = int(item[TOPOLOGY.table.ttl_attribute]["N"])  # the attribute the table's TTL reads, a Number
        assert expires_at >= before + minimum_days * DAY, f"{key} expires after {(expires_at - before) / DAY:.2f} days"
        assert expires_at <= after + CEILING, f"{key} expires after {(expires_at - before) / DAY:.2f} days"


@pytest.mark.parametrize(("source", "minimum_days", "prepare"), SOURCES)
def test_given_an_accepted_event_when_the_provider_sends_it_again_within_its_window_then_it_is_a_duplicate(
    every_source, put_secret, new_whsec, lambda_context, source, minimum_days, prepare
):
    send = prepare(put_secret, new_whsec)
    first = post(lambda_context, source, send)
    queued = every_source.queue_depth()

    again = post(lambda_context, source, send)  # signed afresh, as a provider's retry is

    assert [(e["run_id"], e["event_id"], e["duplicate"]) for e in again] == [
        (e["run_id"], e["event_id"], True) for e in first]
    assert every_source.queue_depth() == queued == len(first)
    assert set(dedupe_items(every_source)) == {f"{source}:{e['event_id']}" for e in first}

