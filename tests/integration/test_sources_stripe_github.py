"""POST /webhooks/stripe and /webhooks/github through the real handler, against moto DynamoDB, SQS and Secrets Manager.

Stripe deliveries are signed by stripe-python itself; GitHub deliveries by GitHub's documented algorithm.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import http_webhook
import pytest
import stripe
from interlock.models import Envelope, run_id_for
from interlock.timeline import DynamoTimelineStore
from interlock.webhooks.sources import github as github_source
from interlock.webhooks.sources import stripe as stripe_source

from integration.support import TABLE_NAME, rest_event


def _sample(name: str) -> bytes:
    return (resources.files("interlock") / "samples" / f"{name}.json").read_bytes()


STRIPE_SAMPLE = _sample("stripe")
STRIPE_SAMPLE_ID = json.loads(STRIPE_SAMPLE)["id"]
GITHUB_SAMPLE = _sample("github")


def stripe_signs(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` stripe-python itself makes (``WebhookSignature.generate_signature_header``).

    No fallback: if the installed stripe-python lacks it, this raises ``AttributeError`` rather than quietly
    signing with our own code and no longer testing against Stripe's library.
    """
    return str(stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp))


@dataclass(frozen=True)
class Provider:
    name: str
    accepted_status: int
    payload_version: str
    event_type: str
    signature_header: str  # as the provider spells it
    new_secret: Callable[[], str]
    new_event_id: Callable[[], str]
    body: Callable[[str], bytes]  # event id -> the body the provider sends
    sign: Callable[[str, bytes, str, int], dict[str, str]]  # secret, body, event id, now -> headers

    def __str__(self) -> str:
        return self.name


def _stripe_headers(secret: str, body: bytes, event_id: str, now: int) -> dict[str, str]:
    return {**stripe_source.sender_headers(secret, body, now=now, event_id=event_id),
            "Stripe-Signature": stripe_signs(body, secret, now)}


STRIPE = Provider(
    name="stripe", accepted_status=200, payload_version="stripe.v1", event_type="payment_intent.succeeded",
    signature_header="Stripe-Signature",
    new_secret=lambda: "whsec_" + secrets.token_hex(24),
    new_event_id=lambda: "evt_" + secrets.token_hex(12),
    body=lambda event_id: STRIPE_SAMPLE.replace(STRIPE_SAMPLE_ID.encode(), event_id.encode()),
    sign=_stripe_headers,
)
GITHUB = Provider(
    name="github", accepted_status=202, payload_version="github.v1", event_type="issues.opened",
    signature_header="X-Hub-Signature-256",
    new_secret=lambda: secrets.token_hex(20),
    new_event_id=lambda: str(uuid.uuid4()),
    body=lambda event_id: GITHUB_SAMPLE,
    sign=lambda secret, body, event_id, now: github_source.sender_headers(secret, body, now=now, event_id=event_id),
)
PROVIDERS = [pytest.param(STRIPE, id="stripe"), pytest.param(GITHUB, id="github")]


@pytest.fixture
def enabled(cloud, monkeypatch):
    monkeypatch.setenv("INTERLOCK_ENABLED_SOURCES", "form,stripe,github")
    return cloud


@pytest.fixture
def secret_for(enabled, put_secret) -> Callable[[Provider], str]:
    def make(provider: Provider) -> str:
        value = provider.new_secret()
        put_secret(provider.name, value)
        return value

    return make


def post(lambda_context, source: str, body: bytes | str, headers: dict[str, str], *,
         is_base64: bool = False) -> tuple[int, dict[str, Any]]:
    text = body.decode() if isinstance(body, bytes) else body
    event = rest_event("POST", f"/webhooks/{source}", "/webhooks/{source}", {"source": source},
                       headers=headers, body=text, is_base64=is_base64)
    response = http_webhook.handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"])


def store() -> DynamoTimelineStore:
    return DynamoTimelineStore(TABLE_NAME)


def assert_nothing_stored_or_queued(cloud) -> None:
    assert cloud.items() == []
    assert cloud.queue_depth() == 0


def now() -> int:
    return int(time.time())


# -- accepted ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_given_a_signed_delivery_when_posted_then_it_is_accepted_recorded_and_one_envelope_is_queued(
    enabled, secret_for, lambda_context, provider
):
    secret = secret_for(provider)
    event_id = provider.new_event_id()
    body = provider.body(event_id)

    status, answer = post(lambda_context, provider.name, body, provider.sign(secret, body, event_id, now()))

    assert status == provider.accepted_status
    run_id = run_id_for(f"{provider.name}:{event_id}")
    assert answer == {"run_id": run_id, "event_id": event_id, "duplicate": False}
    view = store().get(run_id)
    assert view is not None
    assert [e.state.value for e in view.timeline] == ["received"]
    (message,) = enabled.messages()
    envelope = Envelope.model_validate_json(message["Body"])
    assert (envelope.source, envelope.event_id, envelope.type, envelope.payload_version, envelope.dedupe_key) == (
        provider.name, event_id, provider.event_type, provider.payload_version, f"{provider.name}:{event_id}")
    assert envelope.payload == json.loads(body)
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    acceptance = attributes.pop("acceptance")  # this delivery's acceptance token: the router drops a superseded one
    assert acceptance
    assert attributes == {"source": provider.name, "type": provider.event_type, "run_id": run_id}


def _as_sent(headers: dict[str, str]) -> dict[str, str]:
    return dict(headers)


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _upper(headers: dict[str, str]) -> dict[str, str]:
    return {k.upper(): v for k, v in headers.items()}


@pytest.mark.parametrize("spell", [_as_sent, _lower, _upper], ids=["as-sent", "lower-case", "upper-case"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_given_header_names_in_any_case_when_posted_then_they_are_found(
    enabled, secret_for, lambda_context, provider, spell
):
    secret = secret_for(provider)
    event_id = provider.new_event_id()
    body = provider.body(event_id)
    headers = spell(provider.sign(secret, body, event_id, now()))

    assert post(lambda_context, provider.name, body, headers)[0] == provider.accepted_status
    assert enabled.queue_depth() == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_given_an_api_gateway_base64_body_when_posted_then_the_decoded_bytes_are_verified(
    enabled, secret_for, lambda_context, provider
):
    secret = secret_for(provider)
    event_id = provider.new_event_id()
    body = provider.body(event_id)
    headers = provider.sign(secret, body, event_id, now())

    status, answer = post(lambda_context, provider.name, base64.b64encode(body).decode(), headers, is_base64=True)

    assert status == provider.accepted_status
    assert answer["event_id"] == event_id
    assert Envelope.model_validate_json(enabled.messages()[0]["Body"]).payload == json.loads(body)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_given_two_secrets_during_a_rotation_when_either_signs_then_both_are_accepted(
    enabled, put_secret, lambda_context, provider
):
    old, new = provider.new_secret(), provider.new_secret()
    if provider.name == "github":  # a GitHub secret is free text: several are stored as JSON
        put_secret(provider.name, json.dumps({"signing": [new, old]}))
    else:
        put_secret(provider.name, old, new, separator="\n")

    for secret in (old, new):
        event_id = provider.new_event_id()
        body = provider.body(event_id)
        assert post(lambda_context, provider.name, body, provider.sign(secret, body, event_id, now()))[0] == (
            provider.accepted_status)
    assert enabled.queue_depth() == 2


def test_given_a_stripe_header_with_two_v1_values_during_a_roll_when_one_is_ours_then_it_is_accepted(
    enabled, secret_for, lambda_context
):
    ours = secret_for(STRIPE)
    event_id = STRIPE.new_event_id()
    body = STRIPE.body(event_id)
    t = now()
    header = (f"t={t},v1={stripe_source.signature('whsec_' + secrets.token_hex(24), t, body)},"
              f"v1={stripe_source.signature(ours, t, body)},v0={'0' * 64}")

    assert post(lambda_context, "stripe", body, {"Stripe-Signature": header})[0] == 200
    assert enabled.queue_depth() == 1


def test_given_a_github_secret_with_spaces_stored_as_json_then_it_verifies(enabled, put_secret, lambda_context):
    doc_secret = "It's a Secret to Everybody"  # GitHub's documented test secret: a secret is any text
    put_secret("github", json.dumps({"signing": [doc_secret]}))
    guid = str(uuid.uuid4())

    status, _ = post(lambda_context, "github", GITHUB_SAMPLE,
                     github_source.sender_headers(doc_secret, GITHUB_SAMPLE, now=now(), event_id=guid))

    assert status == 202


def test_given_a_github_secret_with_spaces_stored_as_text_then_it_is_one_secret_and_no_word_of_it_signs(
    enabled, put_secret, lambda_context
):
    doc_secret = "It's a Secret to Everybody"
    put_secret("github", doc_secret)

    genuine = post(lambda_context, "github", GITHUB_SAMPLE,
                   github_source.sender_headers(doc_secret, GITHUB_SAMPLE, now=now(), event_id=str(uuid.uuid4())))
    forged = post(lambda_context, "github", GITHUB_SAMPLE,
                  github_source.sender_headers("a", GITHUB_SAMPLE, now=now(), event_id=str(uuid.uuid4())))

    assert (genuine[0], forged[0]) == (202, 401)


# -- redelivery --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_given_the_provider_redelivers_an_event_when_posted_then_it_is_a_duplicate_processed_once(
    enabled, secret_for, lambda_context, provider
):
    secret = secret_for(provider)
    event_id = provider.new_event_id()
    body = provider.body(event_id)
    _, first = post(lambda_context, provider.name, body, provider.sign(secret, body, event_id, now() - 90))

    # A retry (Stripe) or redelivery (GitHub) is signed afresh; the event id stays the same.
    status, second = post(lambda_context, provider.name, body, provider.sign(secret, body, event_id, now()))

    assert status == provider.accepted_status
    assert second == {"run_id": first["run_id"], "event_id": event_id, "duplicate": True}
    assert [e.state.value for e in store().get(first["run_id"]).timeline] == ["received", "duplicate"]
    assert enabled.queue_depth() == 1


# -- refused ------------------------------------------------------------------------------------------------------


def _tampered(provider: Provider, secret: str, body: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    at = body.index(b'"title"') if provider is GITHUB else body.index(b"4900")
    changed = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1:]
    return changed, provider.sign(secret, body, event_id, now())


def _reserialised(provider: Provider, secret: str, body: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    same_json = json.dumps(json.loads(body)).encode()
    assert same_json != body and json.loads(same_json) == json.loads(body)
    return same_json, provider.sign(secret, body, event_id, now())


def _wrong_secret(provider: Provider, secret: str, body: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    return body, provider.sign(provider.new_secret(), body, event_id, now())


def _no_signature(provider: Provider, secret: str, body: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    headers = provider.sign(secret, body, event_id, now())
    del headers[provider.signature_header]
    return body, headers


@pytest.mark.parametrize(
    "refuse",
    [
        pytest.param(_tampered, id="one-byte-tamper"),
        pytest.param(_reserialised, id="re-serialised-json"),
        pytest.param(_wrong_secret, id="wrong-secret"),
        pytest.param(_no_signature, id="missing-signature-header"),
    ],
)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_given_a_delivery_that_does_not_verify_when_posted_then_401_and_nothing_is_stored_or_queued(
    enabled, secret_for, lambda_context, provider, refuse
):
    secret = secret_for(provider)
    event_id = provider.new_event_id()
    body, headers = refuse(provider, secret, provider.body(event_id), event_id)

    status, answer = post(lambda_context, provider.name, body, headers)

    assert (status, answer["error"]) == (401, "invalid_signature")
    assert_nothing_stored_or_queued(enabled)


@pytest.mark.parametrize("skew", [pytest.param(-360, id="stale"), pytest.param(360, id="future")])
def test_given_a_stripe_timestamp_outside_the_tolerance_when_posted_then_401_and_nothing_is_kept(
    enabled, secret_for, lambda_context, skew
):
    secret = secret_for(STRIPE)
    event_id = STRIPE.new_event_id()
    body = STRIPE.body(event_id)

    status, _ = post(lambda_context, "stripe", body, STRIPE.sign(secret, body, event_id, now() + skew))

    assert status == 401
    assert_nothing_stored_or_queued(enabled)


def test_given_a_verified_stripe_body_that_is_no_event_when_posted_then_400_and_nothing_is_kept(
    enabled, secret_for, lambda_context
):
    secret = secret_for(STRIPE)
    body = json.dumps({"object": "event", "type": "payment_intent.succeeded"}).encode()

    status, answer = post(lambda_context, "stripe", body, STRIPE.sign(secret, body, "", now()))

    assert (status, answer["error"]) == (400, "invalid_payload")
    assert answer["message"].startswith("id:")
    assert_nothing_stored_or_queued(enabled)


@pytest.mark.parametrize("missing", ["X-GitHub-Delivery", "X-GitHub-Event"])
def test_given_a_verified_github_delivery_without_its_delivery_or_event_header_then_400_and_nothing_is_kept(
    enabled, secret_for, lambda_context, missing
):
    secret = secret_for(GITHUB)
    headers = GITHUB.sign(secret, GITHUB_SAMPLE, str(uuid.uuid4()), now())
    del headers[missing]

    status, answer = post(lambda_context, "github", GITHUB_SAMPLE, headers)

    assert (status, answer["error"]) == (400, "invalid_payload")
    assert missing in answer["message"]
    assert_nothing_stored_or_queued(enabled)


def test_given_githubs_ping_when_posted_then_200_and_nothing_is_kept(enabled, secret_for, lambda_context):
    secret = secret_for(GITHUB)
    ping = json.dumps({"zen": "Speak like a human.", "hook_id": 4242, "hook": {"type": "Repository"}}).encode()

    status, answer = post(lambda_context, "github", ping,
                          github_source.sender_headers(secret, ping, now=now(), event_id=str(uuid.uuid4())))

    assert (status, answer) == (200, {"ok": True, "event": "ping"})
    assert_nothing_stored_or_queued(enabled)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_given_the_source_is_not_enabled_when_posted_then_404(cloud, put_secret, lambda_context, provider):
    secret = provider.new_secret()
    put_secret(provider.name, secret)
    event_id = provider.new_event_id()
    body = provider.body(event_id)

    status, answer = post(lambda_context, provider.name, body, provider.sign(secret, body, event_id, now()))

    assert (status, answer["error"]) == (404, "unknown_source")
    assert_nothing_stored_or_queued(cloud)


# -- nothing secret reaches the logs ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_given_accepted_and_refused_deliveries_when_logged_then_no_secret_or_signature_appears(
    enabled, secret_for, lambda_context, caplog, capsys, provider
):
    caplog.set_level(logging.DEBUG, logger="interlock")
    secret = secret_for(provider)
    event_id = provider.new_event_id()
    body = provider.body(event_id)
    good = provider.sign(secret, body, event_id, now())
    bad = provider.sign(provider.new_secret(), body, event_id, now())

    assert post(lambda_context, provider.name, body, bad)[0] == 401
    assert post(lambda_context, provider.name, body, good)[0] == provider.accepted_status

    ours = [r for r in caplog.records if r.name.startswith(("interlock", "aws_lambda_powertools"))]
    logged = " ".join(repr(r.__dict__) for r in ours) + capsys.readouterr().out
    assert ours, "the handler should have logged something"
    assert secret not in logged
    for headers in (good, bad):
        digest = headers[provider.signature_header].rsplit("=", 1)[1]
        assert digest not in logged
