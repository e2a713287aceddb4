"""Every provider's webhooks end to end, through the local runtime over real HTTP.

Each delivery is signed the way its provider signs it (the plug-in's ``sender_headers``, or the provider's own
official library: ``stripe``, ``slack_sdk``, ``standardwebhooks``) with the secret the runtime holds for that
source. No provider has a workflow yet: each event becomes a run that ends ``failed`` with reason
``no_route``, recorded, not dropped. The refusals (401) are checked for every source that signs, ``form``
included, and each is shown to leave nothing behind: the genuine delivery of the same event afterwards is new.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks
import stripe
from interlock.kit.registry import routes
from interlock.local.secrets import generate
from slack_sdk.signature import SignatureVerifier

from tests.e2e.conftest import EXTRA_SOURCES, ROTATING, Runtime, accepted, sample, scheme_of, ticket

# provider source -> the event types its bundled sample carries, in order
PROVIDERS: dict[str, list[str]] = {
    "stripe": ["payment_intent.succeeded"],
    "slack": ["slack.app_mention"],
    "whatsapp": ["whatsapp.message.text", "whatsapp.status.delivered"],
    "hubspot": ["hubspot.contact.creation", "hubspot.contact.propertyChange"],
    "github": ["issues.opened"],
}
# The sample's informational events (interlock.routing.INFORMATIONAL) end ignored; every other one failed/no_route.
INFORMATIONAL = {"whatsapp.status.delivered"}
TIMESTAMPED = ["stripe", "slack", "hubspot"]  # the schemes that sign a timestamp
FORM_TYPE = "e2e.signature_check"  # a form event type with no route: its run ends no_route like the providers'
# every source that signs -> how many events a delivery of fresh(source) carries
SIGNED: dict[str, int] = {**{source: len(types) for source, types in PROVIDERS.items()}, "form": 1}
# the headers each source's signature stands on: without any one of them, a delivery cannot be verified
SIGNING_HEADERS: dict[str, list[str]] = {
    "stripe": ["Stripe-Signature"],
    "slack": ["X-Slack-Signature", "X-Slack-Request-Timestamp"],
    "whatsapp": ["X-Hub-Signature-256"],
    "hubspot": ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"],
    "github": ["X-Hub-Signature-256"],  # GitHub's legacy SHA-1 X-Hub-Signature, still sent, never stands in
    "form": ["webhook-signature", "webhook-timestamp", "webhook-id"],
}


def fresh(source: str) -> bytes:
    """The provider's sample as a new event: the ids its provider puts in the body replaced by unused ones.
    (GitHub's delivery id and form's message id travel in a header: each ``send_as`` gives a new one unless
    told otherwise. Form has no bundled sample: its event is one of a type no route takes.)"""
    tag = uuid.uuid4().hex[:16]
    if source == "form":
        return json.dumps({"type": FORM_TYPE, "data": {"tag": tag}}).encode()
    data: Any = json.loads(sample(source))
    if source == "stripe":
        data["id"] = f"evt_{tag}"
    elif source == "slack":
        data["event_id"] = f"Ev{tag}"
    elif source == "whatsapp":
        items = [item for entry in data["entry"] for change in entry["changes"]
                 for key in ("messages", "statuses") for item in change["value"].get(key, [])]
        for index, item in enumerate(items):
            item["id"] = f"wamid.{tag}{index}"
    elif source == "hubspot":
        for index, event in enumerate(data):
            event["eventId"] = int(tag[:12], 16) * 10 + index
    return json.dumps(data).encode()


def tampered(body: bytes) -> bytes:
    """``body`` with one byte changed (its lowest bit flipped, so it stays ASCII)."""
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 1]) + body[middle + 1:]


def reserialised(body: bytes) -> bytes:
    """``body`` parsed and dumped again with other spacing, as a framework that parses first would pass it
    on: the same JSON, other bytes."""
    again = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert again != body and json.loads(again) == json.loads(body)
    return again


def failure_of(run: dict[str, Any]) -> dict[str, Any]:
    (failure,) = [e for e in run["timeline"] if e["state"] == "failed"]
    return dict(failure)


def assert_new(runtime: Runtime, source: str, body: bytes, event_id: str) -> list[dict[str, Any]]:
    """The genuine delivery of the event is accepted as new: whatever was refused before it left nothing
    behind (no dedupe key, no run)."""
    events = accepted(runtime.send_as(source, body, event_id=event_id))
    assert [e["duplicate"] for e in events] == [False] * SIGNED[source]
    return events


# -- each provider's sample: accepted, a run per event ending no_route, a redelivery is a duplicate -------------


@pytest.mark.parametrize(("source", "types"), PROVIDERS.items(), ids=list(PROVIDERS))
def test_given_the_providers_sample_then_each_event_is_a_run_ending_no_route_and_a_redelivery_a_duplicate(
    runtime: Runtime, source: str, types: list[str]
) -> None:
    # Given the provider's bundled sample, signed as the provider signs it
    body = sample(source)
    delivery_id = str(uuid.uuid4())

    # When it is delivered
    events = accepted(runtime.send_as(source, body, event_id=delivery_id))

    # Then each event it carries is a new run, which ends failed/no_route with its source and type
    assert [e["duplicate"] for e in events] == [False] * len(types)
    assert len({e["run_id"] for e in events}) == len(types)
    ends = {}
    for event, event_type in zip(events, types, strict=True):
        workflow = routes().get((source, event_type))
        if workflow is not None:  # a workflow acts on it (HubSpot's contact.creation: the sales-ops lead)
            # (HubSpot's contact: the lead; WhatsApp's message and status: the assistant's, a status of a message it
            # did not send ends ignored)
            run = runtime.wait_for(event["run_id"], lambda r: r["status"] in ("completed", "pending_approval",
                                                                               "ignored"))
            assert run["workflow"] == workflow and run["timeline"][1]["step"] == "router"
            ends[event["run_id"]] = None
            continue
        end, reason = ("ignored", "informational_event") if event_type in INFORMATIONAL else ("failed", "no_route")
        ends[event["run_id"]] = end
        run = runtime.wait_status(event["run_id"], end)
        assert [e["state"] for e in run["timeline"]] == ["received", end]
        (last,) = [e for e in run["timeline"] if e["state"] == end]
        assert last["step"] == "router"
        assert last["details"] == {"reason": reason, "event_source": source, "event_type": event_type}

    # When the provider redelivers it (its retry: the same event, signed afresh)
    again = accepted(runtime.send_as(source, body, event_id=delivery_id))

    # Then each event is acknowledged as a duplicate of its run, which records it and stays as it ended
    assert [(e["run_id"], e["duplicate"]) for e in again] == [(e["run_id"], True) for e in events]
    for event in events:
        run = runtime.run(event["run_id"])
        if ends[event["run_id"]] is None:  # a workflow's run: the duplicate is recorded, nothing starts again
            assert [e["state"] for e in run["timeline"]].count("duplicate") == 1
            assert sum(e["step"] == "router" for e in run["timeline"]) == 1
            continue
        assert [e["state"] for e in run["timeline"]] == ["received", ends[event["run_id"]], "duplicate"]
        assert run["status"] == ends[event["run_id"]]


@pytest.mark.parametrize("alter", [tampered, reserialised], ids=["one-byte-tamper", "reserialised-json"])
@pytest.mark.parametrize("source", SIGNED)
def test_given_other_bytes_than_the_ones_signed_then_401_and_nothing_recorded(
    runtime: Runtime, source: str, alter: Callable[[bytes], bytes]
) -> None:
    # Given a delivery signed over its raw bytes, whose body is changed on the way (a byte, or only its spacing)
    body = fresh(source)
    delivery_id = str(uuid.uuid4())

    # When it arrives with the signature of the original bytes
    refused = runtime.send_as(source, body, event_id=delivery_id, sent_body=alter(body))

    # Then it is refused, and the genuine delivery of the same event afterwards is new
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_signature"
    assert "run_id" not in refused.text
    assert_new(runtime, source, body, delivery_id)


@pytest.mark.parametrize("source", SIGNED)
def test_given_a_signing_header_missing_then_401_and_nothing_recorded(runtime: Runtime, source: str) -> None:
    body = fresh(source)
    delivery_id = str(uuid.uuid4())

    for header in SIGNING_HEADERS[source]:
        refused = runtime.send_as(source, body, event_id=delivery_id, without=[header])
        assert refused.status_code == 401, f"without {header}: {refused.status_code} {refused.text}"
        assert refused.json()["error"] == "invalid_signature"

    assert_new(runtime, source, body, delivery_id)


@pytest.mark.parametrize("names", [str.upper, str.lower], ids=["UPPER", "lower"])
@pytest.mark.parametrize("source", SIGNED)
def test_given_header_names_in_upper_or_lower_case_then_accepted(
    runtime: Runtime, source: str, names: Callable[[str], str]
) -> None:
    # HTTP header names are case-insensitive: a proxy, or API Gateway, may pass them on in either case
    events = accepted(runtime.send_as(source, fresh(source), names=names))

    assert [e["duplicate"] for e in events] == [False] * SIGNED[source]


@pytest.mark.parametrize("source", PROVIDERS)
def test_given_the_wrong_secret_then_401_and_nothing_recorded(runtime: Runtime, source: str) -> None:
    wrong = "whsec_" + "0123456789abcdef" * 2
    body = fresh(source)
    delivery_id = str(uuid.uuid4())

    assert runtime.send_as(source, body, event_id=delivery_id, secret=wrong).status_code == 401
    assert_new(runtime, source, body, delivery_id)


@pytest.mark.parametrize("source", TIMESTAMPED)
def test_given_a_stale_or_future_signing_time_then_401(runtime: Runtime, source: str) -> None:
    assert runtime.send_as(source, fresh(source), now=int(time.time()) - 600).status_code == 401
    assert runtime.send_as(source, fresh(source), now=int(time.time()) + 600).status_code == 401


# -- the providers' own libraries sign, the runtime verifies ------------------------------------------------------


def official_headers(source: str, secret: str, body: bytes, now: int, event_id: str) -> dict[str, str]:
    """The signature headers made by the provider's own official library, not by the plug-in under test."""
    if source == "stripe":
        return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
            body.decode(), secret, timestamp=now)}
    if source == "slack":
        signature = SignatureVerifier(secret).generate_signature(timestamp=str(now), body=body)
        assert signature
        return {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": signature}
    signed = standardwebhooks.Webhook(secret).sign(event_id, datetime.fromtimestamp(now, UTC), body.decode())
    return {"webhook-id": event_id, "webhook-timestamp": str(now), "webhook-signature": signed}


# source -> (its event's type, where the provider puts its dedupe id: a body field, or None for webhook-id)
OFFICIAL: dict[str, tuple[str, str | None]] = {
    "stripe": (PROVIDERS["stripe"][0], "id"),
    "slack": (PROVIDERS["slack"][0], "event_id"),
    "form": (FORM_TYPE, None),
}


@pytest.mark.parametrize("source", OFFICIAL)
def test_given_a_delivery_signed_by_the_providers_official_library_then_it_is_accepted_and_its_run_recorded(
    runtime: Runtime, source: str
) -> None:
    # Given a new event signed by the provider's own library with the secret the runtime holds for the source
    event_type, id_field = OFFICIAL[source]
    body = fresh(source)
    message_id = f"msg_{uuid.uuid4().hex}"
    headers = official_headers(source, runtime.secrets(source).signing[0], body, int(time.time()), message_id)

    # When it is posted to /webhooks/<source>
    answer = httpx.post(f"{runtime.url}/webhooks/{source}", content=body,
                        headers={"Content-Type": "application/json", **headers}, timeout=10)

    # Then it is accepted as a new event under the provider's id, and its run is recorded: its workflow's (Slack's
    # mention: the assistant's turn), or no_route
    (event,) = accepted(answer)
    assert event["duplicate"] is False
    assert event["event_id"] == (json.loads(body)[id_field] if id_field else message_id)
    workflow = routes().get((source, event_type))
    if workflow is not None:
        assert runtime.wait_status(event["run_id"], "completed")["workflow"] == workflow
        return
    run = runtime.wait_status(event["run_id"], "failed")
    assert [e["state"] for e in run["timeline"]] == ["received", "failed"]
    assert failure_of(run)["details"] == {"reason": "no_route", "event_source": source, "event_type": event_type}


# -- secret rotation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ROTATING)
def test_given_a_secret_mid_rotation_then_a_delivery_signed_with_the_old_or_the_new_is_accepted(
    rotating: Runtime, source: str
) -> None:
    # Given the source's secret holds two signing secrets, old and new
    old, new = rotating.secrets(source).signing
    body = fresh(source)
    delivery_id = str(uuid.uuid4())

    # When the provider delivers an event signed with the old secret, then redelivers it signed with the new
    first = accepted(rotating.send_as(source, body, event_id=delivery_id, secret=old))
    again = accepted(rotating.send_as(source, body, event_id=delivery_id, secret=new))

    # Then both verify: the first is new, the redelivery a duplicate of the same runs
    assert [e["duplicate"] for e in first] == [False] * SIGNED[source]
    assert [(e["run_id"], e["duplicate"]) for e in again] == [(e["run_id"], True) for e in first]
    # and a secret of the same shape from neither side of the rotation still does not
    (other,) = generate(scheme_of(source)).signing
    assert rotating.send_as(source, fresh(source), secret=other).status_code == 401


# -- the providers' setup requests ----------------------------------------------------------------------------


def test_given_whatsapps_verify_request_then_the_challenge_comes_back_only_with_the_right_token(
    runtime: Runtime,
) -> None:
    token = runtime.secrets("whatsapp").extras["verify_token"]
    url = f"{runtime.url}/webhooks/whatsapp"

    right = httpx.get(url, params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"})
    wrong = httpx.get(url, params={"hub.mode": "subscribe", "hub.verify_token": token + "x",
                                   "hub.challenge": "1158201444"})
    no_mode = httpx.get(url, params={"hub.verify_token": token, "hub.challenge": "1158201444"})

    assert (right.status_code, right.text) == (200, "1158201444")
    assert right.headers["content-type"].startswith("text/plain")
    assert wrong.status_code == no_mode.status_code == 403
    assert "1158201444" not in wrong.text + no_mode.text


def test_given_slacks_url_verification_then_the_challenge_comes_back_only_when_signed(runtime: Runtime) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = json.dumps({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge,
                       "type": "url_verification"}).encode()

    signed = runtime.send_as("slack", body)
    unsigned = httpx.post(f"{runtime.url}/webhooks/slack", content=body,
                          headers={"content-type": "application/json"})

    assert (signed.status_code, signed.text) == (200, challenge)
    assert signed.headers["content-type"].startswith("text/plain")
    assert unsigned.status_code == 401 and challenge not in unsigned.text


def test_given_hubspot_v3_then_it_verifies_against_the_runtimes_public_url_and_no_other(runtime: Runtime) -> None:
    """HubSpot signs the URL it called: the runtime's INTERLOCK_PUBLIC_BASE_URL is its own URL."""
    body = fresh("hubspot")
    elsewhere = runtime.url.replace("127.0.0.1", "localhost") + "/webhooks/hubspot"

    assert runtime.send_as("hubspot", body, url=elsewhere).status_code == 401
    right = runtime.send_as("hubspot", body)  # signed for f"{runtime.url}/webhooks/hubspot"
    assert right.status_code == 200
    assert [e["duplicate"] for e in accepted(right)] == [False, False]


def test_given_a_get_to_a_provider_without_a_handshake_then_405(runtime: Runtime) -> None:
    assert httpx.get(f"{runtime.url}/webhooks/stripe").status_code == 405


# -- sources without a secret, or not enabled --------------------------------------------------------------------


def test_given_a_source_with_no_secret_or_not_enabled_then_404_and_the_others_still_work(narrowed: Runtime) -> None:
    # github is enabled but deliberately has no secret (INTERLOCK_SECRET_GITHUB=""): no Secrets Manager secret
    no_secret = narrowed.send_as("github", fresh("github"), secret="anything")
    assert no_secret.status_code == 404 and no_secret.json()["error"] == "unknown_source"
    # slack has a secret but is not in INTERLOCK_ENABLED_SOURCES
    not_enabled = narrowed.send_as("slack", fresh("slack"), secret="0" * 32)
    assert not_enabled.status_code == 404 and not_enabled.json()["error"] == "unknown_source"
    assert httpx.get(f"{narrowed.url}/webhooks/whatsapp", params={"hub.mode": "subscribe"}).status_code == 404
    # the enabled sources with secrets are unaffected
    assert accepted(narrowed.send_as("stripe", fresh("stripe")))[0]["duplicate"] is False


# -- interlock send, against the running runtime -------------------------------------------------------------------


def _cli(runtime: Runtime, *argv: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "interlock.cli", "send", *argv, "--url", runtime.url,
         "--state-dir", str(runtime.state_dir)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


def _printed_runs(output: str) -> list[str]:
    return re.findall(r"/runs/([0-9a-f-]{36})", output)


@pytest.mark.parametrize("source", PROVIDERS)
def test_given_interlock_send_with_a_file_then_the_provider_signed_delivery_is_accepted(
    runtime: Runtime, source: str, tmp_path: Path
) -> None:
    file = tmp_path / f"{source}.json"
    file.write_bytes(fresh(source))

    done = _cli(runtime, source, str(file))

    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^-> 20[02] ", done.stdout, re.MULTILINE), done.stdout
    run_ids = _printed_runs(done.stdout)
    assert len(run_ids) == len(PROVIDERS[source])
    for run_id in run_ids:  # each ends: failed (no route), ignored (a delivery status) or its workflow's way
        assert runtime.wait_for(run_id, lambda r: r["status"] in ("failed", "ignored", "completed",
                                                                  "pending_approval"))["run_id"] == run_id


def test_given_interlock_send_with_no_file_then_it_sends_the_bundled_sample(narrowed: Runtime) -> None:
    done = _cli(narrowed, "stripe")

    assert done.returncode == 0, done.stdout + done.stderr
    (run_id,) = _printed_runs(done.stdout)
    run = narrowed.wait_status(run_id, "failed")
    assert failure_of(run)["details"]["event_type"] == PROVIDERS["stripe"][0]


def test_given_interlock_send_handshake_then_whatsapp_verification_succeeds(runtime: Runtime) -> None:
    done = _cli(runtime, "whatsapp", "--handshake")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "-> 200 OK" in done.stdout and "The challenge came back" in done.stdout


# -- further sources, declared by configuration ---------------------------------------------------------------------


def test_given_a_further_standard_webhooks_source_when_a_svix_sender_signs_then_it_is_its_own_source(
    narrowed: Runtime,
) -> None:
    # Given typeform=standard-webhooks in INTERLOCK_EXTRA_WEBHOOK_SOURCES: its own secret, generated at start
    secret = narrowed.secrets("typeform").signing[0]
    assert secret != narrowed.secrets("form").signing[0]
    body = json.dumps(ticket("Form entry", "Sent from a form builder")).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.fromtimestamp(int(time.time()), UTC)
    signed = standardwebhooks.Webhook(secret).sign(msg_id, now, body.decode())
    headers = {"svix-id": msg_id, "svix-timestamp": str(int(now.timestamp())), "svix-signature": signed,
               "content-type": "application/json"}

    # When a Svix sender posts to /webhooks/typeform, signed by the official library, with svix-* header names
    answer = httpx.post(f"{narrowed.url}/webhooks/typeform", content=body, headers=headers, timeout=10)

    # Then it is accepted as typeform's event; no route is declared for typeform, so its run ends no_route
    (event,) = accepted(answer)
    assert event["event_id"] == msg_id and event["duplicate"] is False
    assert failure_of(narrowed.wait_status(event["run_id"], "failed"))["details"] == {
        "reason": "no_route", "event_source": "typeform", "event_type": "support.ticket"}
    # and form's secret does not sign for typeform
    other = standardwebhooks.Webhook(narrowed.secrets("form").signing[0]).sign(msg_id, now, body.decode())
    refused = httpx.post(f"{narrowed.url}/webhooks/typeform", content=body,
                         headers={**headers, "svix-signature": other}, timeout=10)
    assert refused.status_code == 401


def test_given_a_further_source_that_is_not_enabled_then_404(narrowed: Runtime) -> None:
    # billing=stripe is declared, has a secret, but is not in INTERLOCK_ENABLED_SOURCES
    refused = narrowed.send_as("billing", fresh("stripe"))
    assert refused.status_code == 404 and refused.json()["error"] == "unknown_source"


def test_given_interlock_send_to_a_further_source_then_it_signs_with_that_sources_scheme(narrowed: Runtime) -> None:
    done = _cli(narrowed, "typeform", "support_ticket", INTERLOCK_EXTRA_WEBHOOK_SOURCES=EXTRA_SOURCES)

    assert done.returncode == 0, done.stdout + done.stderr
    (run_id,) = _printed_runs(done.stdout)
    assert failure_of(narrowed.wait_status(run_id, "failed"))["details"]["event_source"] == "typeform"
    # without the setting, the CLI does not know the source, and says how to declare one
    unknown = _cli(narrowed, "typeform")
    assert unknown.returncode != 0 and "INTERLOCK_EXTRA_WEBHOOK_SOURCES" in unknown.stderr
