"""The WhatsApp Cloud API source: Meta's GET verification, ``X-Hub-Signature-256`` by the documented algorithm
(HMAC-SHA256 of the raw body keyed by the app secret, hex, after ``sha256=``), and a batch split into events."""

from __future__ import annotations

import hashlib
import hmac
import json
from importlib import resources

import pytest
from interlock.ingest.service import IngestService, RawRequest
from interlock.settings import IngestSettings
from interlock.webhooks.base import Delivery, PayloadError, SignatureError, SourceSecrets
from interlock.webhooks.registry import SourceRegistry
from interlock.webhooks.sources import whatsapp
from interlock.webhooks.sources.whatsapp import WhatsAppSource, sender_headers, sign

from unit.fakes import RecordingQueue, RecordingTimeline

APP_SECRET = "6f1d0c3a9e8b4f27a1c5d9e0b3f7a2c4"
OTHER = "00112233445566778899aabbccddeeff"
VERIFY_TOKEN = "meatyhamhock"
SETTINGS = IngestSettings(table_name="t", ingest_queue_url="q", enabled_sources="whatsapp")
SECRETS = SourceSecrets(signing=(APP_SECRET,), extras={"verify_token": VERIFY_TOKEN})

METADATA = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}
CONTACTS = [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}]
TEXT = {"from": "16505551234", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
        "timestamp": "1749416383", "type": "text", "text": {"body": "Does it come in another color?"}}
IMAGE = {"from": "16505551234", "id": "wamid.IMAGE2", "timestamp": "1749416390", "type": "image",
         "image": {"mime_type": "image/jpeg", "id": "1003383421387256"}}
DELIVERED = {"id": "wamid.SENT1", "status": "delivered", "timestamp": "1750263773", "recipient_id": "16505551234",
             "pricing": {"billable": True, "pricing_model": "PMP", "category": "marketing"}}
READ = {**DELIVERED, "status": "read", "timestamp": "1750263780"}


def notification(*values: dict, waba_id: str = "102290129340398") -> dict:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"value": {"messaging_product": "whatsapp", **v},
                                                   "field": "messages"} for v in values]}]}


BATCH = notification({"metadata": METADATA, "contacts": CONTACTS, "messages": [TEXT, IMAGE]},
                     {"metadata": METADATA, "statuses": [DELIVERED, READ]})


def source() -> WhatsAppSource:
    return WhatsAppSource("whatsapp", SETTINGS)


def delivery(body: bytes = b"", headers: dict[str, str] | None = None, *, method: str = "POST",
             query: dict[str, str] | None = None) -> Delivery:
    return Delivery(source="whatsapp", method=method, headers={k.lower(): v for k, v in (headers or {}).items()},
                    query=query or {}, body=body, path="/webhooks/whatsapp")


def body_of(payload: object) -> bytes:
    return json.dumps(payload).encode()


def documented_signature(secret: str, body: bytes) -> str:
    """Meta: an HMAC-SHA256 of the payload keyed by the App Secret, hex, in X-Hub-Signature-256 after sha256=."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- the GET verification request ---------------------------------------------------------------------------


def test_given_the_right_verify_token_then_the_bare_challenge_is_answered_as_text_plain():
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}

    reply = source().handshake(delivery(method="GET", query=query), SECRETS)

    assert reply is not None
    assert (reply.status, reply.body, reply.content_type) == (200, "1158201444", "text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "wrong"},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN + "x"},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
        {"hub.mode": "unsubscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {"hub.mode": "subscribe", "hub.challenge": "<script>alert(1)</script>", "hub.verify_token": VERIFY_TOKEN},
        {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "tökén"},
        {},
    ],
    ids=["wrong-token", "longer-token", "no-token", "not-subscribe", "no-challenge", "markup-challenge",
         "non-ascii-token", "nothing"],
)
def test_given_a_get_that_is_not_metas_verification_then_403(query):
    reply = source().handshake(delivery(method="GET", query=query), SECRETS)

    assert reply is not None and reply.status == 403


def test_given_no_verify_token_configured_then_no_token_verifies():
    query = {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": ""}

    reply = source().handshake(delivery(method="GET", query=query), SourceSecrets(signing=(APP_SECRET,)))

    assert reply is not None and reply.status == 403


def test_given_a_post_then_there_is_no_handshake():
    assert source().handshake(delivery(body_of(BATCH)), SECRETS) is None


# -- X-Hub-Signature-256 ------------------------------------------------------------------------------------------


def test_given_a_body_signed_by_the_documented_algorithm_then_it_verifies_and_our_sender_headers_agree():
    body = body_of(BATCH)
    headers = {"X-Hub-Signature-256": documented_signature(APP_SECRET, body)}

    source().verify(delivery(body, headers), [APP_SECRET], now=0)
    assert sender_headers(APP_SECRET, body, now=0, event_id="ignored") == {"Content-Type": "application/json",
                                                                            **headers}
    assert sign("secret", b"test") == "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"


def test_given_non_ascii_text_then_the_exact_bytes_are_what_is_signed():
    body = body_of(notification({"metadata": METADATA, "messages": [{**TEXT, "text": {"body": "¿Otro color? ✓"}}]}))
    escaped, raw = body, json.dumps(json.loads(body), ensure_ascii=False).encode()
    assert escaped != raw

    source().verify(delivery(escaped, {"x-hub-signature-256": documented_signature(APP_SECRET, escaped)}),
                    [APP_SECRET], now=0)
    with pytest.raises(SignatureError):
        source().verify(delivery(raw, {"x-hub-signature-256": documented_signature(APP_SECRET, escaped)}),
                        [APP_SECRET], now=0)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda b: (b[:-2] + b"X" + b[-1:], documented_signature(APP_SECRET, b)), "signature_mismatch"),
        (lambda b: (json.dumps(json.loads(b), separators=(",", ":")).encode(), documented_signature(APP_SECRET, b)),
         "signature_mismatch"),
        (lambda b: (b, documented_signature(OTHER, b)), "signature_mismatch"),
        (lambda b: (b, None), "missing_headers"),
        (lambda b: (b, documented_signature(APP_SECRET, b).removeprefix("sha256=")), "no_sha256_signature"),
        (lambda b: (b, "sha1=" + hmac.new(APP_SECRET.encode(), b, hashlib.sha1).hexdigest()), "no_sha256_signature"),
        (lambda b: (b, "sha256=" + "é" * 64), "no_sha256_signature"),
    ],
    ids=["one-byte-tamper", "re-serialised-json", "wrong-secret", "missing-header", "no-prefix", "sha1",
         "non-ascii"],
)
def test_given_a_delivery_that_is_not_metas_when_verified_then_it_is_refused_with_the_reason(make, reason):
    body, signature = make(body_of(BATCH))
    headers = {} if signature is None else {"X-Hub-Signature-256": signature}

    with pytest.raises(SignatureError) as exc_info:
        source().verify(delivery(body, headers), [APP_SECRET], now=0)

    assert exc_info.value.reason == reason


def test_given_two_app_secrets_during_a_rotation_then_either_one_verifies():
    body = body_of(BATCH)

    for secret in (APP_SECRET, OTHER):
        source().verify(delivery(body, sender_headers(secret, body, now=0, event_id="")), [APP_SECRET, OTHER], 0)


# -- a batch into events -----------------------------------------------------------------------------------------


def test_given_a_batch_of_messages_and_statuses_then_each_is_its_own_event_with_its_context():
    events = source().events(delivery(body_of(BATCH)))

    assert [(e.event_id, e.type) for e in events] == [
        (TEXT["id"], "whatsapp.message.text"),
        ("wamid.IMAGE2", "whatsapp.message.image"),
        ("wamid.SENT1:delivered", "whatsapp.status.delivered"),
        ("wamid.SENT1:read", "whatsapp.status.read"),
    ]
    assert events[0].payload == {"waba_id": "102290129340398", "field": "messages", "metadata": METADATA,
                                 "contacts": CONTACTS, "message": TEXT}
    assert events[2].payload == {"waba_id": "102290129340398", "field": "messages", "metadata": METADATA,
                                 "contacts": [], "status": DELIVERED}


def test_given_a_group_message_then_each_participants_status_is_its_own_event():
    group = {**DELIVERED, "recipient_type": "group", "recipient_id": "120363043968066561"}
    statuses = [{**group, "recipient_participant_id": "16505551234"},
                {**group, "recipient_participant_id": "16505559999"}]

    events = source().events(delivery(body_of(notification({"metadata": METADATA, "statuses": statuses}))))

    assert [e.event_id for e in events] == ["wamid.SENT1:delivered:16505551234", "wamid.SENT1:delivered:16505559999"]


ACCOUNT_UPDATE = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
    {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT", "phone_number": "15550783881"}}]}]}


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "whatsapp_business_account", "entry": []},
        {"object": "page", "entry": [{"id": "1", "time": 1, "messaging": [{"sender": {"id": "1"}}]}]},
    ],
    ids=["no-entries", "another-object"],
)
def test_given_a_verified_delivery_with_no_change_then_no_events(payload):
    assert source().events(delivery(body_of(payload))) == []


def test_given_a_change_of_another_field_then_it_is_an_event_of_its_own_type_recorded_not_dropped():
    (event,) = source().events(delivery(body_of(ACCOUNT_UPDATE)))

    assert event.type == "whatsapp.account_update"
    assert event.event_id.startswith("account_update:")
    assert event.payload["value"] == ACCOUNT_UPDATE["entry"][0]["changes"][0]["value"]
    assert event.payload["waba_id"] == "102290129340398"
    # Meta's retry repeats the change exactly, so the same id; another change of the field is another event
    assert source().events(delivery(body_of(ACCOUNT_UPDATE)))[0].event_id == event.event_id
    other = json.loads(json.dumps(ACCOUNT_UPDATE))
    other["entry"][0]["changes"][0]["value"]["event"] = "DISABLED_UPDATE"
    assert source().events(delivery(body_of(other)))[0].event_id != event.event_id


def test_given_a_messages_change_with_only_errors_then_it_is_recorded_as_a_messages_change():
    errors = [{"code": 131000, "title": "Something went wrong"}]

    (event,) = source().events(delivery(body_of(notification({"metadata": METADATA, "errors": errors}))))

    assert event.type == "whatsapp.messages" and event.payload["value"]["errors"] == errors


@pytest.mark.parametrize(("field", "good"), [("messages", {"statuses": [DELIVERED]}),
                                             ("statuses", {"messages": [TEXT]})])
@pytest.mark.parametrize("value", [3, "x", {"id": "wamid.1"}, None])
def test_given_messages_or_statuses_that_are_not_lists_then_no_crash(field, good, value):
    # The body verified, so it is Meta's: a malformed field is a 400 with a reason, not a 500 retried for days
    with pytest.raises(PayloadError):
        source().events(delivery(body_of(notification({"metadata": METADATA, field: value}))))
    # and beside readable items, it is skipped and they are events
    events = source().events(delivery(body_of(notification({"metadata": METADATA, field: value, **good}))))
    assert len(events) == 1


def test_given_some_unreadable_items_then_the_readable_ones_are_events():
    events = source().events(delivery(body_of(notification(
        {"metadata": METADATA, "messages": [{"type": "text"}, TEXT], "statuses": [{"id": "wamid.X"}]}))))

    assert [e.event_id for e in events] == [TEXT["id"]]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [(b'{"entry": ', "not valid JSON"), (b"[]", "an object with an entry array"),
     (b'{"entry": {}}', "an object with an entry array"),
     (body_of(notification({"messages": [{"type": "text"}]})), "no message or status in the delivery has an id")],
)
def test_given_a_signed_body_meta_would_not_send_then_a_payload_error_says_why(raw, fragment):
    with pytest.raises(PayloadError, match=fragment):
        source().events(delivery(raw))


def test_given_the_packaged_sample_then_it_is_one_text_message_and_one_delivered_status():
    raw = (resources.files("interlock") / "samples" / "whatsapp.json").read_bytes()
    headers = sender_headers(APP_SECRET, raw, now=0, event_id="x")

    source().verify(delivery(raw, headers), [APP_SECRET], now=0)
    events = source().events(delivery(raw, headers))
    assert [e.type for e in events] == ["whatsapp.message.text", "whatsapp.status.delivered"]


# -- through the ingest -----------------------------------------------------------------------------------------------


class Secrets:
    def get(self, name: str, *, free_text: bool = False) -> SourceSecrets:
        return SECRETS if name == "whatsapp" else SourceSecrets(signing=())


def ingest():
    store, queue = RecordingTimeline(), RecordingQueue()
    return IngestService(SETTINGS, Secrets(), store, queue, SourceRegistry(SETTINGS)), store, queue


def post(svc: IngestService, body: bytes, headers: dict[str, str]):
    return svc.accept(RawRequest(source="whatsapp", headers={k.lower(): v for k, v in headers.items()},
                                 body=body.decode(), is_base64=False, method="POST", path="/webhooks/whatsapp"))


def test_given_a_batch_then_every_event_is_queued_and_a_redelivery_is_all_duplicates():
    svc, store, queue = ingest()
    body = body_of(BATCH)
    headers = sender_headers(APP_SECRET, body, now=0, event_id="")

    first = post(svc, body, headers)
    again = post(svc, body, headers)

    assert first.status == 200 and [e["duplicate"] for e in first.body["events"]] == [False] * 4
    assert again.status == 200 and [e["duplicate"] for e in again.body["events"]] == [True] * 4
    assert [e.dedupe_key for e in queue.sent] == [
        f"whatsapp:{TEXT['id']}", "whatsapp:wamid.IMAGE2",
        "whatsapp:wamid.SENT1:delivered", "whatsapp:wamid.SENT1:read"]
    assert {e.payload_version for e in queue.sent} == {"whatsapp.v1"}
    assert store.states.count("duplicate") == 4


def test_given_a_status_after_its_message_was_delivered_then_the_new_transition_is_a_new_event():
    svc, _store, queue = ingest()
    delivered = body_of(notification({"metadata": METADATA, "statuses": [DELIVERED]}))
    read = body_of(notification({"metadata": METADATA, "statuses": [READ]}))

    post(svc, delivered, sender_headers(APP_SECRET, delivered, now=0, event_id=""))
    outcome = post(svc, read, sender_headers(APP_SECRET, read, now=0, event_id=""))

    assert outcome.status == 200 and outcome.body["duplicate"] is False
    assert [e.type for e in queue.sent] == ["whatsapp.status.delivered", "whatsapp.status.read"]


def test_given_a_verified_delivery_with_no_events_then_200_with_an_empty_list_and_nothing_recorded():
    svc, store, queue = ingest()
    body = body_of({"object": "whatsapp_business_account", "entry": []})

    outcome = post(svc, body, sender_headers(APP_SECRET, body, now=0, event_id=""))

    assert (outcome.status, outcome.body) == (200, {"events": []})
    assert store.entries == [] and store.created == [] and queue.sent == []


def test_given_a_handshake_through_the_ingest_then_nothing_is_recorded():
    svc, store, queue = ingest()
    query = {"hub.mode": "subscribe", "hub.challenge": "42", "hub.verify_token": VERIFY_TOKEN}

    ok = svc.accept(RawRequest(source="whatsapp", headers={}, body=None, is_base64=False, method="GET", query=query))
    bad = svc.accept(RawRequest(source="whatsapp", headers={}, body=None, is_base64=False, method="GET",
                                query={**query, "hub.verify_token": "nope"}))

    assert (ok.status, ok.body, ok.content_type) == (200, "42", "text/plain")
    assert bad.status == 403
    assert store.entries == [] and store.created == [] and queue.sent == []


def test_given_the_whatsapp_source_then_ids_outlive_metas_seven_days_of_retries():
    assert source().dedupe_ttl_seconds == 8 * 24 * 3600
    assert source().accepted_status == 200
    assert source().methods == ("GET", "POST")
    assert whatsapp.SOURCE_CLASS is WhatsAppSource
