"""The limits every webhook source's input is held to (docs/input-limits.md): a provider id too long for a
DynamoDB key, JSON nested deeper than anything a provider sends, and a lone surrogate that parses but can
never be written as UTF-8 are each a 400 with nothing recorded or queued, whichever source they reach."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from interlock.ingest.service import IngestService, RawRequest
from interlock.local.secrets import generate
from interlock.settings import IngestSettings
from interlock.webhooks.base import (
    MAX_ID_BYTES,
    MAX_JSON_DEPTH,
    PayloadError,
    SourceEvent,
    check_id,
    read_json,
)
from interlock.webhooks.registry import SCHEMES, scheme_module

from unit.fakes import RecordingQueue, RecordingTimeline

BASE_URL = "https://api.example.test/prod"
LONG = "x" * 3000  # past DynamoDB's 2,048-byte key limit


# -- read_json: the one reader of provider JSON ------------------------------------------------------------


@pytest.mark.parametrize("text", ["[" * 20_000 + "]" * 20_000, '{"a":' * 20_000 + "1" + "}" * 20_000,
                                  "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)],
                         ids=["arrays", "objects", "one-past-the-limit"])
def test_given_json_nested_past_the_limit_then_a_payload_error_not_a_recursion_error(text):
    with pytest.raises(PayloadError, match="nested more than 64 levels"):
        read_json(text.encode())


def test_given_json_nested_to_the_limit_or_brackets_inside_strings_then_it_parses():
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert read_json(at_limit) is not None
    in_strings = json.dumps({"text": "[" * 500 + '\\"{' * 300, "k" + "{" * 200: ["]]]"]})
    assert read_json(in_strings.encode())["text"].startswith("[[[")


@pytest.mark.parametrize("text", ['{"subject": "\\ud800"}', '{"\\udfff": 1}', '["ok", ["\\udc00 tail"]]'],
                         ids=["value", "key", "nested"])
def test_given_a_lone_surrogate_escape_anywhere_then_a_payload_error(text):
    with pytest.raises(PayloadError, match="lone surrogate"):
        read_json(text.encode())


def test_given_a_surrogate_pair_escape_then_it_is_text_and_parses():
    assert read_json(b'{"emoji": "\\ud83d\\ude00"}') == {"emoji": "\U0001f600"}


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", b'{"a": "\xc3"}'])
def test_given_a_body_that_is_not_utf8_then_a_payload_error(raw):
    with pytest.raises(PayloadError, match="not UTF-8"):
        read_json(raw)


# -- ids and types -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "x" * (MAX_ID_BYTES + 1), "é" * (MAX_ID_BYTES // 2 + 1), "a\nb", "a\x1b[2J",
                                   "a\x00", "\ud800"],
                         ids=["empty", "long", "long-in-bytes", "newline", "escape", "nul", "surrogate"])
def test_given_an_id_outside_the_limits_then_a_payload_error(value):
    with pytest.raises(PayloadError):
        check_id(value)
    with pytest.raises(PayloadError):
        SourceEvent(event_id=value, type="t", payload={})


def test_given_an_id_within_the_limits_then_it_is_kept():
    assert check_id("x" * MAX_ID_BYTES) == "x" * MAX_ID_BYTES
    assert SourceEvent(event_id="portal:1:ev é", type="hubspot.contact.creation", payload={}).event_id


@pytest.mark.parametrize("value", ["", "t" * 300, "support.ticket\x1b[2J"])
def test_given_an_event_type_outside_the_limits_then_a_payload_error(value):
    with pytest.raises(PayloadError, match="event type"):
        SourceEvent(event_id="e1", type=value, payload={})


# -- every source, through the ingest -----------------------------------------------------------------------

SOURCES = {scheme: ("form" if scheme == "standard-webhooks" else scheme) for scheme in SCHEMES}


def sample(scheme: str) -> Any:
    """The bundled sample ``interlock send`` posts for the scheme (for form, support triage's ticket)."""
    from interlock import cli

    name = "support_ticket" if scheme == "standard-webhooks" else scheme
    return json.loads(cli._scheme_samples(scheme)[name].read_text())


def ingest(scheme: str, body: bytes, event_id: str = "evt-1", **extra: str) -> tuple[
        int, Any, RecordingTimeline, RecordingQueue]:
    """Deliver ``body`` to the scheme's source, signed as its provider signs it; the answer and the fakes."""
    name = SOURCES[scheme]
    secret = generate(scheme).signing[0]
    store, queue = RecordingTimeline(), RecordingQueue()

    class Secrets:
        def get(self, source: str, *, free_text: bool = False) -> Any:
            from interlock.webhooks.base import SourceSecrets

            return SourceSecrets(signing=(secret,))

    settings = IngestSettings(table_name="t", ingest_queue_url="q", enabled_sources=",".join(SOURCES.values()),
                              public_base_url=BASE_URL)
    service = IngestService(settings, Secrets(), store, queue)  # type: ignore[arg-type]
    path = f"/webhooks/{name}"
    plugin = scheme_module(scheme)
    if scheme == "github":  # its sender_headers reads the body to name the event: not for a body this odd
        headers = {"X-Hub-Signature-256": plugin.signature(secret, body), "X-GitHub-Event": "issues",
                   "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "Content-Type": "application/json"}
    else:
        headers = plugin.sender_headers(secret, body, now=int(time.time()), event_id=event_id, url=BASE_URL + path)
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    outcome = service.accept(RawRequest(source=name, headers={k.lower(): v for k, v in headers.items()},
                                        body=body.decode(), is_base64=False, path=path))
    return outcome.status, outcome.body, store, queue


def test_given_each_sources_sample_then_it_is_accepted():
    # the baseline the refusals below differ from
    for scheme in SCHEMES:
        status, _, _store, queue = ingest(scheme, json.dumps(sample(scheme)).encode())
        assert status < 300 and queue.sent, scheme


def long_id_body(scheme: str) -> tuple[bytes, str]:
    """A body (and an id for the id header) whose provider id is too long for a key."""
    body = sample(scheme)
    if scheme == "slack":
        body["event_id"] = "Ev" + LONG
    elif scheme == "stripe":
        body["id"] = "evt_" + LONG
    elif scheme == "whatsapp":
        body["entry"][0]["changes"] = body["entry"][0]["changes"][:1]  # the message alone, not its status
        body["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid." + LONG
    elif scheme == "hubspot":
        body = [{**body[0], "portalId": LONG}]
    return json.dumps(body).encode(), ("msg_" + LONG if scheme in ("standard-webhooks", "github") else "e1")


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_given_a_provider_id_too_long_for_a_key_then_400_and_nothing_recorded_or_queued(scheme):
    body, event_id = long_id_body(scheme)

    extra = {"x_github_delivery": event_id} if scheme == "github" else {}

    status, answer, store, queue = ingest(scheme, body, event_id, **extra)

    assert (status, answer["error"]) == (400, "invalid_payload"), answer
    assert not store.created and not queue.sent


def test_given_a_hubspot_batch_with_one_overlong_id_then_the_others_are_still_accepted():
    # HubSpot does not retry a 4xx: the readable events of its batch must not be lost with the bad one
    events = sample("hubspot")
    events[0]["subscriptionId"] = LONG

    status, _, _store, queue = ingest("hubspot", json.dumps(events).encode())

    assert status == 200 and [e.event_id for e in queue.sent] == ["62515:2912541:1942118672"]


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_given_a_signed_body_nested_thousands_deep_then_400_and_nothing_recorded(scheme):
    body = sample(scheme)
    marker = '"__deep__"'
    if scheme == "hubspot":
        body[0]["deep"] = "__deep__"
    elif scheme == "standard-webhooks":
        body["data"]["deep"] = "__deep__"
    else:
        body["deep"] = "__deep__"
    raw = json.dumps(body).replace(marker, "[" * 20_000 + "]" * 20_000).encode()

    status, answer, store, queue = ingest(scheme, raw)

    assert status == 400 and "nested" in answer["message"], answer
    assert not store.created and not queue.sent


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_given_a_signed_body_with_a_lone_surrogate_then_400_at_parse_time(scheme):
    body = sample(scheme)
    if scheme == "hubspot":
        body[0]["note"] = "__s__"
    elif scheme == "standard-webhooks":
        body["data"]["subject"] = "__s__"
    else:
        body["note"] = "__s__"
    raw = json.dumps(body).replace('"__s__"', '"\\ud800"').encode()

    status, answer, store, queue = ingest(scheme, raw)

    assert status == 400 and "surrogate" in answer["message"], answer
    assert not store.created and not queue.sent


def test_given_a_form_field_payload_nested_deep_then_slack_and_github_refuse_it():
    from urllib.parse import quote

    deep = "[" * 5_000 + "]" * 5_000
    status, _answer, _, queue = ingest("slack", f"payload={quote(deep)}".encode())
    assert status == 400 and not queue.sent
    github = scheme_module("github")
    assert github.FORM_CONTENT_TYPE
    with pytest.raises(PayloadError, match="nested"):
        github.read_payload(f"payload={quote(deep)}".encode(), github.FORM_CONTENT_TYPE)


# -- numeric headers ------------------------------------------------------------------------------------------

TIMESTAMP_HEADERS = {"standard-webhooks": "webhook-timestamp", "slack": "x-slack-request-timestamp",
                     "hubspot": "x-hubspot-request-timestamp"}


@pytest.mark.parametrize("value", ["abc", "-1", "+1700000000", " 17", "1_700_000_000", "1e9", "9" * 40, "\uff11\uff17",
                                   "0x10", "NaN"])
@pytest.mark.parametrize("scheme", [*sorted(TIMESTAMP_HEADERS), "stripe"])
def test_given_a_timestamp_that_is_not_plain_digits_then_401_invalid_signature_not_a_traceback(scheme, value):
    body = json.dumps(sample(scheme)).encode()
    if scheme == "stripe":
        extra = {"stripe_signature": f"t={value},v1=" + "0" * 64}
    else:
        extra = {TIMESTAMP_HEADERS[scheme].replace("-", "_"): value}

    status, answer, store, queue = ingest(scheme, body, **extra)

    assert (status, answer["error"]) == (401, "invalid_signature")
    assert not store.created and not queue.sent
