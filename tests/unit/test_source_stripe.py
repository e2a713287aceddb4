"""The Stripe source: signatures checked against Stripe's own library (stripe-python), events read from the body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from importlib import resources
from typing import Any

import pytest
import stripe
from interlock.ingest.service import IngestService, RawRequest
from interlock.models import run_id_for
from interlock.settings import IngestSettings
from interlock.webhooks.base import DAY, Delivery, PayloadError, SignatureError
from interlock.webhooks.registry import SourceRegistry
from interlock.webhooks.sources import stripe as stripe_source
from interlock.webhooks.sources.stripe import StripeSource, sender_headers, signature, signature_header

from unit.fakes import RecordingQueue, RecordingTimeline, StaticSecrets

SECRET = "whsec_9c2f1e0b7a6d4c3b8e5f2a1d0c9b8a7f"
OTHER = "whsec_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
NOW = 1_736_933_402


def settings(**overrides: Any) -> IngestSettings:
    return IngestSettings(table_name="t", ingest_queue_url="q", enabled_sources="stripe", **overrides)


def source() -> StripeSource:
    built = SourceRegistry(settings()).get("stripe")
    assert isinstance(built, StripeSource)
    return built


def sample_body() -> bytes:
    return (resources.files("interlock") / "samples" / "stripe.json").read_bytes()


BODY = sample_body()
EVENT = json.loads(BODY)


def delivery(body: bytes = BODY, header: str | None = None, **headers: str) -> Delivery:
    names = dict(headers)
    if header is not None:
        names["stripe-signature"] = header
    return Delivery(source="stripe", method="POST", headers=names, query={}, body=body, path="/webhooks/stripe")


def official_header(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` stripe-python itself makes (``WebhookSignature.generate_signature_header``).

    No fallback: if the installed stripe-python lacks it, this raises ``AttributeError`` rather than quietly
    signing with our own code and no longer testing against Stripe's library.
    """
    return str(stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp))


def reason(body: bytes, header: str | None, secrets: list[str], now: float = NOW) -> str:
    with pytest.raises(SignatureError) as caught:
        source().verify(delivery(body, header), secrets, now)
    return caught.value.reason


# -- the same signatures as Stripe's library ------------------------------------------------------------------


def test_given_a_header_made_by_stripes_library_when_verified_then_it_is_accepted():
    header = official_header(BODY, SECRET, NOW)

    source().verify(delivery(header=header), [SECRET], NOW)


def test_given_our_sender_headers_when_stripes_library_verifies_them_then_it_constructs_the_event():
    now = int(time.time())
    headers = sender_headers(SECRET, BODY, now=now, event_id="ignored")

    assert stripe.WebhookSignature.verify_header(BODY, headers["Stripe-Signature"], SECRET, tolerance=300)
    event = stripe.Webhook.construct_event(BODY, headers["Stripe-Signature"], SECRET)
    assert (event.id, event.type) == (EVENT["id"], "payment_intent.succeeded")


@pytest.mark.parametrize("body", [BODY, b"{}", '{"note": "Rückerstattung ✓"}'.encode()])
def test_given_any_body_then_our_signature_is_stripes_compute_signature(body):
    theirs = stripe.WebhookSignature._compute_signature(f"{NOW}.{body.decode()}", SECRET)

    assert signature(SECRET, NOW, body) == theirs
    assert signature_header(SECRET, NOW, body) == f"t={NOW},v1={theirs}"


def test_given_our_sender_headers_then_they_are_what_stripe_sends():
    headers = sender_headers(SECRET, BODY, now=NOW, event_id="evt_ignored")

    assert headers == {
        "Stripe-Signature": f"t={NOW},v1={signature(SECRET, NOW, BODY)}",
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }


def test_given_the_endpoint_secret_then_it_keys_the_hmac_as_text_not_base64_decoded():
    as_text = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    decoded_key = base64.b64decode(SECRET.removeprefix("whsec_") + "==")
    as_standard_webhooks = hmac.new(decoded_key, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()

    assert signature(SECRET, NOW, BODY) == as_text
    assert reason(BODY, f"t={NOW},v1={as_standard_webhooks}", [SECRET]) == "signature_mismatch"


# -- refused ----------------------------------------------------------------------------------------------------


def _tampered() -> tuple[bytes, str]:
    header = official_header(BODY, SECRET, NOW)
    at = BODY.index(b"4900")
    return BODY[:at] + b"5" + BODY[at + 1:], header


def _reserialised() -> tuple[bytes, str]:
    header = official_header(BODY, SECRET, NOW)
    return json.dumps(json.loads(BODY), separators=(",", ":")).encode(), header


def _wrong_secret() -> tuple[bytes, str]:
    return BODY, official_header(BODY, OTHER, NOW)


def _stale() -> tuple[bytes, str]:
    return BODY, official_header(BODY, SECRET, NOW - 301)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(_tampered, "signature_mismatch", id="one-byte-tamper"),
        pytest.param(_reserialised, "signature_mismatch", id="re-serialised-json"),
        pytest.param(_wrong_secret, "signature_mismatch", id="wrong-secret"),
        pytest.param(_stale, "timestamp_too_old", id="stale"),
    ],
)
def test_given_a_delivery_stripes_library_refuses_then_we_refuse_it_too(make, expected):
    body, header = make()

    assert reason(body, header, [SECRET]) == expected
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, header, SECRET, tolerance=300)


def test_given_a_timestamp_in_the_future_then_it_is_refused_although_stripes_library_only_checks_the_past():
    header = official_header(BODY, SECRET, int(time.time()) + 301)

    assert reason(BODY, header, [SECRET], now=time.time()) == "timestamp_in_future"
    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET, tolerance=300)


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_given_a_timestamp_within_the_tolerance_either_way_then_it_is_accepted(skew):
    source().verify(delivery(header=official_header(BODY, SECRET, NOW + skew)), [SECRET], NOW)


def test_given_a_larger_configured_tolerance_then_it_applies():
    wide = StripeSource("stripe", settings(timestamp_tolerance_seconds=600))

    wide.verify(delivery(header=official_header(BODY, SECRET, NOW - 599)), [SECRET], NOW)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, "missing_header", id="absent"),
        pytest.param("", "missing_header", id="empty"),
        pytest.param("   ", "missing_header", id="blank"),
        pytest.param("v1=abc", "bad_header", id="no-timestamp"),
        pytest.param("t=soon,v1=abc", "bad_header", id="timestamp-not-a-number"),
        pytest.param("t=-5,v1=abc", "bad_header", id="negative-timestamp"),
        pytest.param("t=+1736933402,v1=abc", "bad_header", id="signed-timestamp"),
        pytest.param("t=1_736_933_402,v1=abc", "bad_header", id="underscored-timestamp"),
        pytest.param(f"t={NOW}", "no_v1_signature", id="no-signature"),
        pytest.param(f"t={NOW},v0=abc", "no_v1_signature", id="only-v0"),
        pytest.param(f"t={NOW},v1=ünïcödé", "signature_mismatch", id="non-ascii-signature"),
    ],
)
def test_given_a_missing_or_malformed_header_then_it_is_refused_with_a_reason(header, expected):
    assert reason(BODY, header, [SECRET]) == expected


def test_given_a_valid_signature_under_another_scheme_then_it_is_ignored_so_no_downgrade_is_possible():
    valid = signature(SECRET, NOW, BODY)

    assert reason(BODY, f"t={NOW},v0={valid}", [SECRET]) == "no_v1_signature"
    assert reason(BODY, f"t={NOW},v0={valid},v1={'0' * 64}", [SECRET]) == "signature_mismatch"


def test_given_only_empty_secrets_then_a_signature_under_an_empty_key_is_refused():
    assert reason(BODY, signature_header("", NOW, BODY), ["", "  "]) == "signature_mismatch"


def test_given_the_header_items_with_spaces_and_extra_schemes_then_the_v1_still_verifies():
    header = f" t={NOW} , v0=deadbeef , v1={signature(SECRET, NOW, BODY)} , flag"

    source().verify(delivery(header=header), [SECRET], NOW)


# -- rotation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signer", [SECRET, OTHER])
def test_given_two_secrets_during_a_rotation_when_either_signs_then_it_is_accepted(signer):
    source().verify(delivery(header=official_header(BODY, signer, NOW)), [SECRET, OTHER], NOW)


@pytest.mark.parametrize("held", [[SECRET], [OTHER], [OTHER, SECRET]])
def test_given_a_header_with_two_v1_values_when_either_is_ours_then_it_is_accepted(held):
    header = f"t={NOW},v1={signature(OTHER, NOW, BODY)},v1={signature(SECRET, NOW, BODY)}"

    source().verify(delivery(header=header), held, NOW)


def test_given_a_header_with_two_v1_values_when_neither_is_ours_then_it_is_refused():
    header = f"t={NOW},v1={signature(OTHER, NOW, BODY)},v1={signature(SECRET, NOW, BODY)}"

    assert reason(BODY, header, ["whsec_somebody_else"]) == "signature_mismatch"


# -- the event --------------------------------------------------------------------------------------------------


def test_given_the_sample_then_it_is_a_test_mode_payment_intent_succeeded_event():
    assert EVENT["id"].startswith("evt_")
    assert (EVENT["object"], EVENT["type"], EVENT["livemode"]) == ("event", "payment_intent.succeeded", False)
    assert EVENT["data"]["object"]["object"] == "payment_intent"


def test_given_a_verified_event_then_it_is_one_source_event_keyed_by_its_id_with_the_whole_event_as_payload():
    (event,) = source().events(delivery(header="unused"))

    assert (event.event_id, event.type) == (EVENT["id"], "payment_intent.succeeded")
    assert event.payload == EVENT


def test_given_the_source_then_it_answers_200_and_dedupes_beyond_stripes_three_day_retries():
    built = source()

    assert (built.name, built.payload_version, built.accepted_status, built.methods) == (
        "stripe", "stripe.v1", 200, ("POST",))
    assert built.dedupe_ttl_seconds >= 3 * DAY
    assert stripe_source.SOURCE_CLASS is StripeSource


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"{not json", "not valid JSON", id="malformed-json"),
        pytest.param(b'{"id": "evt_1", "type": "x", "note": "\xff"}', "not UTF-8", id="not-utf8"),
        pytest.param(b"[]", "one event: a JSON object", id="array"),
        pytest.param(b'{"object": "event", "type": "payment_intent.succeeded"}', "id:", id="missing-id"),
        pytest.param(b'{"id": "pi_123", "type": "payment_intent.succeeded"}', "id:", id="not-an-event-id"),
        pytest.param(b'{"id": 42, "type": "payment_intent.succeeded"}', "id:", id="numeric-id"),
        pytest.param(b'{"id": "evt_1", "object": "event"}', "type:", id="missing-type"),
        pytest.param(b'{"id": "evt_1", "type": " "}', "type:", id="blank-type"),
        pytest.param(b'{"id": "evt_1", "type": "x", "object": "v2.core.event"}', "thin event", id="thin-event"),
        pytest.param(b'{"id": "evt_1", "type": "x", "object": "charge"}', "object:", id="not-an-event"),
    ],
)
def test_given_a_verified_body_that_is_not_a_stripe_event_then_payload_error_says_why(body, message):
    with pytest.raises(PayloadError, match=message):
        source().events(delivery(body))


# -- through the ingest -----------------------------------------------------------------------------------------


def ingest() -> tuple[IngestService, RecordingTimeline, RecordingQueue]:
    store, queue = RecordingTimeline(), RecordingQueue()
    return IngestService(settings(), StaticSecrets({"stripe": [SECRET]}), store, queue), store, queue


def post(svc: IngestService, body: bytes, headers: dict[str, str]) -> tuple[int, object]:
    outcome = svc.accept(RawRequest(source="stripe", headers={k.lower(): v for k, v in headers.items()},
                                    body=body.decode(), is_base64=False, path="/webhooks/stripe"))
    return outcome.status, outcome.body


def test_given_a_signed_event_through_the_ingest_then_200_and_one_envelope_keyed_by_the_event_id():
    svc, _store, queue = ingest()

    status, answer = post(svc, BODY, sender_headers(SECRET, BODY, now=int(time.time()), event_id="x"))

    assert status == 200
    assert answer == {"run_id": run_id_for(f"stripe:{EVENT['id']}"), "event_id": EVENT["id"], "duplicate": False}
    (envelope,) = queue.sent
    assert (envelope.source, envelope.type, envelope.payload_version, envelope.dedupe_key) == (
        "stripe", "payment_intent.succeeded", "stripe.v1", f"stripe:{EVENT['id']}")
    assert envelope.payload == EVENT


def test_given_stripe_retries_the_event_with_a_new_signature_then_it_is_a_duplicate_and_queued_once():
    svc, store, queue = ingest()
    post(svc, BODY, sender_headers(SECRET, BODY, now=int(time.time()) - 60, event_id="x"))

    status, answer = post(svc, BODY, sender_headers(SECRET, BODY, now=int(time.time()), event_id="x"))

    assert status == 200
    assert isinstance(answer, dict) and answer["duplicate"] is True
    assert len(queue.sent) == 1
    assert store.states == ["duplicate"]


def test_given_a_forged_event_through_the_ingest_then_401_and_nothing_is_recorded():
    svc, store, queue = ingest()

    status, _ = post(svc, BODY, sender_headers(OTHER, BODY, now=int(time.time()), event_id="x"))

    assert status == 401
    assert store.created == [] and store.entries == [] and queue.sent == []
