"""The HubSpot source: HubSpot's v3 signature (and, where enabled, v1/v2), checked against the test vectors
HubSpot publishes, and the batches of events it sends."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from importlib import resources
from typing import Any

import pytest
from interlock.ingest.service import IngestService, RawRequest
from interlock.models import run_id_for
from interlock.settings import IngestSettings
from interlock.webhooks.base import Delivery, PayloadError, SignatureError
from interlock.webhooks.registry import SourceRegistry
from interlock.webhooks.sources import hubspot
from interlock.webhooks.sources.hubspot import (
    HubSpotSource,
    decode_uri,
    request_url,
    sender_headers,
    sign_v1,
    sign_v2,
    sign_v3,
)

from unit.fakes import RecordingQueue, RecordingTimeline, StaticSecrets

BASE_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
PATH = "/webhooks/hubspot"
URL = BASE_URL + PATH
SECRET = "3c1b7d3e-5b2a-4f7e-9a41-0d6c2f8e1a77"  # HubSpot client secrets look like UUIDs
NOW = 1_736_933_500  # seconds

EVENTS = [
    {"eventId": 3816279340, "subscriptionId": 2912540, "portalId": 62515, "appId": 1160452,
     "occurredAt": 1736933400000, "subscriptionType": "contact.creation", "attemptNumber": 0,
     "objectId": 95001234501, "changeFlag": "CREATED", "changeSource": "CRM_UI", "sourceId": "userId:4719382"},
    {"eventId": 1942118672, "subscriptionId": 2912541, "portalId": 62515, "appId": 1160452,
     "occurredAt": 1736933462000, "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
     "objectId": 95001234501, "propertyName": "lifecyclestage", "propertyValue": "marketingqualifiedlead",
     "changeSource": "CRM_UI", "sourceId": "userId:4719382"},
]
BODY = json.dumps(EVENTS, separators=(",", ":")).encode()  # HubSpot sends compact JSON


def settings(**overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {"table_name": "t", "ingest_queue_url": "q", "enabled_sources": "form,hubspot",
                              "public_base_url": BASE_URL}
    return IngestSettings(**{**values, **overrides})


def source(name: str = "hubspot", **overrides: Any) -> HubSpotSource:
    return HubSpotSource(name, settings(**overrides))


def delivery(headers: dict[str, str], body: bytes = BODY, *, path: str = PATH, query: dict[str, str] | None = None,
             method: str = "POST") -> Delivery:
    return Delivery(source="hubspot", method=method, headers={k.lower(): v for k, v in headers.items()},
                    query=query or {}, body=body, path=path)


def signed(body: bytes = BODY, *, secret: str = SECRET, now: int = NOW, url: str = URL) -> dict[str, str]:
    return sender_headers(secret, body, now=now, event_id="unused", url=url)


def refusal(src: HubSpotSource, d: Delivery, secrets: tuple[str, ...] = (SECRET,), now: float = NOW) -> str:
    with pytest.raises(SignatureError) as exc_info:
        src.verify(d, secrets, now)
    return exc_info.value.reason


# -- HubSpot's published test vectors -------------------------------------------------------------------------
# From HubSpot's Python SDK (hubspot-api-python, tests/spec/utils/test_signature.py) and the "Validating
# requests" documentation. The SDK's v3 vector has no escapes in its URL and a made-up timestamp; it pins the
# concatenation and the encoding.

SDK_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
SDK_BODY = b"{'example_field':'example_value'}"
SDK_URL = "https://www.example.com/webhook_uri"


def test_given_hubspots_sdk_v3_vector_when_signed_then_the_signature_is_the_published_one():
    assert sign_v3(SDK_SECRET, "POST", SDK_URL, SDK_BODY, "15000000") == "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="


def test_given_hubspots_sdk_v1_and_v2_vectors_when_signed_then_the_signatures_are_the_published_ones():
    assert sign_v1(SDK_SECRET, SDK_BODY) == "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
    assert sign_v2(SDK_SECRET, "POST", SDK_URL, SDK_BODY) == (
        "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383")


def test_given_the_documented_v1_and_v2_examples_when_signed_then_the_hashes_are_the_documented_ones():
    v1_body = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
               b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
               b'"changeFlag":"NEW","appId":54321}]')

    assert sign_v1(SDK_SECRET, v1_body) == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    assert sign_v2(SDK_SECRET, "GET", SDK_URL, b"") == (
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e")


# -- the URI HubSpot signs ----------------------------------------------------------------------------------------
# HubSpot publishes no vector for a URL with escapes: this one is built by hand from the documented algorithm,
# with the decoded URI written out literally rather than computed by the code under test.

ENCODED_URL = ("https://hooks.example.com/prod%3Aeu/webhooks/hubspot"
               "?next=https%3A%2F%2Fapp.example.com%2Fa%20b&who=ada%40example.com&q=%28x%29%2A%21%24%27%2C%3B%3F")
DECODED_URL = ("https://hooks.example.com/prod:eu/webhooks/hubspot"
               "?next=https://app.example.com/a%20b&who=ada@example.com&q=(x)*!$',;?")


def test_given_a_url_with_escapes_and_a_query_when_decoded_then_only_hubspots_escapes_are_and_not_20():
    assert decode_uri(ENCODED_URL) == DECODED_URL


def test_given_a_url_with_escapes_when_signed_then_the_hmac_is_over_the_hand_decoded_uri():
    timestamp = "1736933500000"
    by_hand = base64.b64encode(hmac.new(SECRET.encode(), b"POST" + DECODED_URL.encode() + BODY + timestamp.encode(),
                                        hashlib.sha256).digest()).decode()

    assert sign_v3(SECRET, "POST", ENCODED_URL, BODY, timestamp) == by_hand
    assert sign_v3(SECRET, "POST", DECODED_URL, BODY, timestamp) == by_hand  # already-decoded: the same


@pytest.mark.parametrize("kept", ["%20", "%25", "%26", "%3D", "%2B", "%23", "%5B", "%3a", "%2f", "%E2%9C%93", "+"])
def test_given_an_escape_outside_hubspots_table_when_decoded_then_it_is_kept(kept):
    assert decode_uri(f"https://h.example/x?v=a{kept}b") == f"https://h.example/x?v=a{kept}b"


def test_given_an_escaped_percent_before_a_listed_escape_when_decoded_then_it_is_decoded_once_only():
    assert decode_uri("https://h.example/?v=%253A") == "https://h.example/?v=%253A"


def test_given_the_query_api_gateway_decoded_when_the_url_is_rebuilt_then_it_is_percent_encoded_in_order():
    url = request_url(BASE_URL + "/", PATH, {"next": "https://app.example.com/a b", "tenant": "acme"})

    assert url == f"{URL}?next=https%3A%2F%2Fapp.example.com%2Fa%20b&tenant=acme"
    assert decode_uri(url) == f"{URL}?next=https://app.example.com/a%20b&tenant=acme"
    assert request_url(BASE_URL, PATH, {}) == URL


# -- verify: accepted -----------------------------------------------------------------------------------------------


def test_given_hubspots_v3_headers_when_verified_then_accepted():
    source().verify(delivery(signed()), [SECRET], NOW)


def test_given_the_sender_headers_then_they_are_exactly_hubspots_two_v3_headers_with_a_millisecond_stamp():
    headers = signed()

    assert set(headers) == {"X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"}
    assert headers["X-HubSpot-Request-Timestamp"] == str(NOW * 1000)
    assert headers["X-HubSpot-Signature-v3"] == sign_v3(SECRET, "POST", URL, BODY, str(NOW * 1000))


def test_given_no_url_when_sender_headers_are_made_then_it_refuses_rather_than_sign_something_unverifiable():
    with pytest.raises(ValueError, match="url"):
        sender_headers(SECRET, BODY, now=NOW, event_id="x")


def test_given_a_target_url_with_escapes_and_a_query_when_verified_then_accepted():
    # HubSpot calls the target URL as configured; API Gateway hands on the path and the decoded parameters.
    base = "https://hooks.example.com/prod%3Aeu"
    called = f"{base}{PATH}?next=https%3A%2F%2Fapp.example.com%2Fa%20b&tenant=acme"
    d = delivery(signed(url=called), query={"next": "https://app.example.com/a b", "tenant": "acme"})

    source(public_base_url=base).verify(d, [SECRET], NOW)


def test_given_two_secrets_during_a_rotation_when_either_signs_then_both_are_accepted():
    old, new = "old-" + SECRET, "new-" + SECRET

    source().verify(delivery(signed(secret=old)), [old, new], NOW)
    source().verify(delivery(signed(secret=new)), [old, new], NOW)


def test_given_a_stamp_within_five_minutes_either_way_when_verified_then_accepted():
    source().verify(delivery(signed(now=NOW - 299)), [SECRET], NOW)
    source().verify(delivery(signed(now=NOW + 299)), [SECRET], NOW)


def test_given_a_base_url_with_a_trailing_slash_when_verified_then_it_is_the_same_url():
    source(public_base_url=BASE_URL + "/").verify(delivery(signed()), [SECRET], NOW)


# -- verify: refused --------------------------------------------------------------------------------------------


def test_given_a_one_byte_tamper_then_signature_mismatch():
    headers = signed()
    tampered = BODY.replace(b"62515", b"62516", 1)

    assert refusal(source(), delivery(headers, tampered)) == "signature_mismatch"


def test_given_the_same_json_re_serialised_then_signature_mismatch():
    assert refusal(source(), delivery(signed(), json.dumps(EVENTS).encode())) == "signature_mismatch"


def test_given_the_wrong_secret_then_signature_mismatch():
    assert refusal(source(), delivery(signed(secret="not-" + SECRET))) == "signature_mismatch"


def test_given_a_different_public_base_url_then_signature_mismatch():
    src = source(public_base_url="https://other.execute-api.eu-west-1.amazonaws.com/prod")

    assert refusal(src, delivery(signed())) == "signature_mismatch"


def test_given_a_different_query_string_then_signature_mismatch():
    assert refusal(source(), delivery(signed(), query={"tenant": "acme"})) == "signature_mismatch"


@pytest.mark.parametrize(
    ("sent_at", "reason"),
    [(NOW - 301, "timestamp_too_old"), (NOW + 301, "timestamp_in_future")],
    ids=["stale", "future"],
)
def test_given_a_stamp_more_than_five_minutes_off_then_refused(sent_at, reason):
    assert refusal(source(), delivery(signed(now=sent_at))) == reason


def test_given_a_stamp_in_seconds_instead_of_milliseconds_then_refused():
    headers = {**signed(), "X-HubSpot-Request-Timestamp": str(NOW)}
    headers["X-HubSpot-Signature-v3"] = sign_v3(SECRET, "POST", URL, BODY, str(NOW))  # correctly signed otherwise

    assert refusal(source(), delivery(headers)) == "timestamp_not_milliseconds"


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [("soon", "bad_timestamp"), ("1.7e12", "bad_timestamp"), ("-1736933500000", "bad_timestamp"),
     ("".join(chr(0xFF10 + int(d)) for d in "1736933500000"), "bad_timestamp"),  # fullwidth digits
     ("9" * 40, "bad_timestamp"), (" ", "missing_headers")],
    ids=["word", "float", "negative", "fullwidth-digits", "huge", "blank"],
)
def test_given_a_stamp_that_is_not_a_number_of_milliseconds_then_refused(stamp, reason):
    assert refusal(source(), delivery({**signed(), "X-HubSpot-Request-Timestamp": stamp})) == reason


@pytest.mark.parametrize("dropped", ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"])
def test_given_a_missing_v3_header_then_missing_headers(dropped):
    headers = {k: v for k, v in signed().items() if k != dropped}

    assert refusal(source(), delivery(headers)) == "missing_headers"


def test_given_no_headers_then_missing_headers():
    assert refusal(source(), delivery({})) == "missing_headers"


def test_given_no_public_base_url_then_v3_is_refused_with_that_reason():
    assert refusal(source(public_base_url=""), delivery(signed())) == "public_base_url_not_configured"


def test_given_a_tighter_tolerance_setting_then_it_narrows_hubspots_five_minutes_and_a_looser_one_does_not_widen():
    assert refusal(source(timestamp_tolerance_seconds=60), delivery(signed(now=NOW - 61))) == "timestamp_too_old"
    assert refusal(source(timestamp_tolerance_seconds=3600), delivery(signed(now=NOW - 301))) == "timestamp_too_old"


def test_given_a_signature_with_non_ascii_characters_then_a_mismatch_not_a_crash():
    assert refusal(source(), delivery({**signed(), "X-HubSpot-Signature-v3": "✓" * 44})) == "signature_mismatch"


# -- legacy v1/v2 ---------------------------------------------------------------------------------------------------


def legacy(version: str, secret: str = SECRET, url: str = URL, body: bytes = BODY) -> dict[str, str]:
    signature = sign_v1(secret, body) if version == "v1" else sign_v2(secret, "POST", url, body)
    return {"X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": version}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_given_a_legacy_only_request_when_legacy_is_not_enabled_for_the_source_then_refused(version):
    assert refusal(source(), delivery(legacy(version))) == "legacy_signature_disabled"
    assert refusal(source(legacy_signature_sources="other"), delivery(legacy(version))) == "legacy_signature_disabled"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_given_legacy_enabled_for_the_source_when_a_valid_legacy_signature_comes_then_accepted(version):
    src = source(legacy_signature_sources=" stripe , hubspot ")

    src.verify(delivery(legacy(version)), ["rotated-out", SECRET], NOW)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_given_legacy_enabled_when_the_legacy_signature_is_wrong_then_signature_mismatch(version):
    src = source(legacy_signature_sources="hubspot")

    assert refusal(src, delivery(legacy(version), BODY + b" ")) == "signature_mismatch"
    assert refusal(src, delivery(legacy(version, secret="not-" + SECRET))) == "signature_mismatch"


def test_given_legacy_v2_when_the_url_differs_then_signature_mismatch():
    src = source(legacy_signature_sources="hubspot")

    assert refusal(src, delivery(legacy("v2", url=URL + "?x=1"))) == "signature_mismatch"


def test_given_legacy_enabled_when_the_version_header_is_missing_or_unknown_then_refused():
    src = source(legacy_signature_sources="hubspot")
    v1 = legacy("v1")

    assert refusal(src, delivery({"X-HubSpot-Signature": v1["X-HubSpot-Signature"]})) == (
        "unsupported_signature_version")
    assert refusal(src, delivery({**v1, "X-HubSpot-Signature-Version": "v9"})) == "unsupported_signature_version"


def test_given_a_bad_v3_signature_beside_a_good_legacy_one_then_v3_decides_and_it_is_refused():
    src = source(legacy_signature_sources="hubspot")
    headers = {**legacy("v1"), **signed(secret="not-" + SECRET)}

    assert refusal(src, delivery(headers)) == "signature_mismatch"
    assert refusal(src, delivery({**legacy("v1"), **signed(now=NOW - 3600)})) == "timestamp_too_old"


def test_given_everything_hubspot_sends_with_legacy_off_then_the_v3_signature_alone_accepts_it():
    # HubSpot sends the v3 headers and the legacy X-HubSpot-Signature (+ -Version) on every request
    everything = {**legacy("v1"), **signed()}

    source().verify(delivery(everything), [SECRET], NOW)
    source().verify(delivery({**legacy("v2"), **signed()}), [SECRET], NOW)


# -- events ---------------------------------------------------------------------------------------------------------


def test_given_a_batch_of_two_when_read_then_two_events_with_scoped_ids_hubspot_types_and_the_elements_as_payload():
    events = source().events(delivery(signed()))

    assert [(e.event_id, e.type) for e in events] == [
        ("62515:2912540:3816279340", "hubspot.contact.creation"),
        ("62515:2912541:1942118672", "hubspot.contact.propertyChange"),
    ]
    assert [e.payload for e in events] == EVENTS


def test_given_a_retry_of_an_event_then_its_dedupe_id_is_the_same_whatever_the_attempt_number():
    retried = [{**EVENTS[0], "attemptNumber": 3}]

    (event,) = source().events(delivery({}, json.dumps(retried).encode()))

    assert event.event_id == "62515:2912540:3816279340"


def test_given_the_same_event_id_in_two_accounts_then_they_are_two_events():
    twins = [{**EVENTS[0], "portalId": 1}, {**EVENTS[0], "portalId": 2}]

    ids = [e.event_id for e in source().events(delivery({}, json.dumps(twins).encode()))]

    assert ids == ["1:2912540:3816279340", "2:2912540:3816279340"]


def test_given_an_event_without_portal_or_subscription_then_its_id_is_the_bare_event_id():
    (event,) = source().events(delivery({}, b'[{"eventId": "e-1", "subscriptionType": "object.creation"}]'))

    assert (event.event_id, event.type) == ("e-1", "hubspot.object.creation")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'[{"eventId": 1, ', "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"eventId": 1, "subscriptionType": "contact.creation"}', "expected a JSON array"),
        (b"[]", "no events"),
        (b"[1, 2]", "event 0: expected an object"),
        (b'[{"subscriptionType": "contact.creation"}]', "event 0: eventId: Field required"),
        (b'[{"eventId": 1}]', "event 0: subscriptionType: Field required"),
        (b'[{"eventId": 2}, [], {"eventId": 3, "subscriptionType": 7}]', "event 0: subscriptionType"),
        (b'[{"eventId": true, "subscriptionType": "contact.creation"}]', "event 0: eventId"),
        (b'[{"eventId": "", "subscriptionType": "contact.creation"}]', "event 0: eventId"),
        (b'[{"eventId": 1, "subscriptionType": ""}]', "event 0: subscriptionType"),
        (b'[{"eventId": 1, "subscriptionType": "contact creation; drop"}]', "event 0: subscriptionType"),
    ],
    ids=["malformed", "not-utf8", "object", "empty", "not-objects", "no-event-id", "no-type", "none-good",
         "bool-id", "empty-id", "empty-type", "odd-type"],
)
def test_given_a_body_that_is_not_an_array_of_hubspot_events_then_a_payload_error_with_the_reason(raw, fragment):
    with pytest.raises(PayloadError, match=fragment.replace("(", r"\(")):
        source().events(delivery({}, raw))


def test_given_a_batch_with_one_unreadable_element_then_the_readable_ones_are_events_and_the_other_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # HubSpot does not retry a 4xx: refusing the batch would lose the readable events too
    raw = b'[{"eventId": 1, "subscriptionType": "contact.creation"}, {"eventId": 2}]'

    events = source().events(delivery({}, raw))

    assert [(e.event_id, e.type) for e in events] == [("1", "hubspot.contact.creation")]
    (record,) = [r for r in caplog.records if r.getMessage() == "hubspot batch elements skipped"]
    assert record.levelname == "WARNING" and "event 1: subscriptionType" in str(record.__dict__["problems"])


def test_given_the_source_then_it_answers_200_keeps_dedupe_keys_three_days_and_names_its_payload():
    src = source()

    assert (src.accepted_status, src.dedupe_ttl_seconds, src.payload_version) == (200, 3 * 24 * 3600,
                                                                                 "hubspot.webhooks.v3")
    assert src.methods == ("POST",)


# -- the sample -------------------------------------------------------------------------------------------------------


def test_given_the_sample_then_it_is_a_contact_creation_and_a_contact_property_change_as_hubspot_sends_them():
    raw = (resources.files("interlock") / "samples" / "hubspot.json").read_bytes()

    events = source().events(delivery({}, raw))

    assert [e.type for e in events] == ["hubspot.contact.creation", "hubspot.contact.propertyChange"]
    assert all({"eventId", "subscriptionId", "portalId", "appId", "occurredAt", "attemptNumber", "objectId",
                "changeSource"} <= e.payload.keys() for e in events)
    assert events[1].payload["propertyName"] and "propertyValue" in events[1].payload


# -- through the registry and the ingest ---------------------------------------------------------------------------


def test_given_hubspot_enabled_when_the_registry_builds_it_then_it_is_this_source():
    built = SourceRegistry(settings()).get("hubspot")

    assert isinstance(built, HubSpotSource) and built.name == "hubspot"
    assert hubspot.SOURCE_CLASS is HubSpotSource


def test_given_a_signed_batch_when_the_ingest_accepts_it_then_200_two_runs_queued_and_a_redelivery_is_duplicates():
    store, queue = RecordingTimeline(), RecordingQueue()
    svc = IngestService(settings(), StaticSecrets({"hubspot": [SECRET]}), store, queue)
    now = int(time.time())
    request = RawRequest(source="hubspot", headers={k.lower(): v for k, v in signed(now=now).items()},
                         body=BODY.decode(), is_base64=False, path=PATH)

    first = svc.accept(request)
    again = svc.accept(request)

    assert first.status == 200
    assert first.body == {"events": [
        {"run_id": run_id_for("hubspot:62515:2912540:3816279340"), "event_id": "62515:2912540:3816279340",
         "duplicate": False},
        {"run_id": run_id_for("hubspot:62515:2912541:1942118672"), "event_id": "62515:2912541:1942118672",
         "duplicate": False},
    ]}
    assert [(e.type, e.payload_version) for e in queue.sent] == [
        ("hubspot.contact.creation", "hubspot.webhooks.v3"), ("hubspot.contact.propertyChange", "hubspot.webhooks.v3")]
    assert again.status == 200
    assert [e["duplicate"] for e in again.body["events"]] == [True, True]
    assert len(queue.sent) == 2
