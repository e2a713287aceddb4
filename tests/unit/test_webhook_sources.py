"""The webhook source plug-in framework: the registry, source secrets, and how the ingest drives a source."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence

import pytest
from interlock.ingest.ports import SecretFormatError, parse_secret
from interlock.ingest.service import IngestService, RawRequest
from interlock.models import run_id_for
from interlock.settings import IngestSettings
from interlock.webhooks import hmac_sha256
from interlock.webhooks.base import (
    Delivery,
    PayloadError,
    Reply,
    SignatureError,
    SourceEvent,
    SourceSecrets,
    WebhookSource,
)
from interlock.webhooks.registry import SourceRegistry, UnknownScheme, parse_enabled

from unit.fakes import RecordingQueue, RecordingTimeline, StaticSecrets

# -- registry ---------------------------------------------------------------------------------------------


def test_given_bare_names_and_named_schemes_when_parsed_then_each_source_maps_to_its_scheme():
    assert parse_enabled(" form, typeform = standard-webhooks ,,") == {
        "form": "standard-webhooks", "typeform": "standard-webhooks"}


def test_given_a_source_with_no_known_scheme_when_parsed_then_it_is_refused_by_name():
    with pytest.raises(UnknownScheme, match="pigeon"):
        parse_enabled("form,pigeon")


def test_given_a_registry_then_only_enabled_sources_exist_and_each_is_built_once():
    registry = SourceRegistry(IngestSettings(table_name="t", ingest_queue_url="q",
                                             enabled_sources="form,typeform=standard-webhooks"))

    assert registry.get("stripe") is None
    typeform = registry.get("typeform")
    assert typeform is not None and typeform.name == "typeform"
    assert registry.get("typeform") is typeform


# -- secrets ----------------------------------------------------------------------------------------------


def test_given_whitespace_separated_secrets_then_all_are_signing_secrets():
    assert parse_secret(" whsec_a \n whsec_b\twhsec_c ") == SourceSecrets(signing=("whsec_a", "whsec_b", "whsec_c"))
    assert parse_secret("a,b") == SourceSecrets(signing=("a,b",))  # only whitespace separates


def test_given_a_free_text_secret_then_it_is_one_secret_spaces_and_all():
    # GitHub's secrets are any text: splitting "It's a Secret" would make "a" a valid key
    assert parse_secret(" It's a Secret to Everybody \n", free_text=True) == SourceSecrets(
        signing=("It's a Secret to Everybody",))
    assert parse_secret('{"signing": ["new one", "old one"]}', free_text=True).signing == ("new one", "old one")
    assert not parse_secret("  ", free_text=True)


def test_given_a_json_secret_then_signing_secrets_and_named_extras():
    parsed = parse_secret(json.dumps({"signing": ["s1", "s2"], "verify_token": "vt"}))
    assert parsed.signing == ("s1", "s2")
    assert parsed.extras == {"verify_token": "vt"}
    assert parse_secret('{"signing": "only"}').signing == ("only",)


@pytest.mark.parametrize("text", ["", "   ", '{"verify_token": "vt"}', '{"signing": []}'])
def test_given_no_signing_secret_then_the_source_counts_as_unconfigured(text):
    assert not parse_secret(text)


@pytest.mark.parametrize("text", ["{not json", '{"signing": {"a": 1}}', "{}}"])
def test_given_a_json_secret_that_cannot_be_read_then_a_format_error_not_a_silently_disabled_source(text):
    with pytest.raises(SecretFormatError):
        parse_secret(text)


# -- the ingest driving a source ----------------------------------------------------------------------------


class BatchSource(WebhookSource):
    """A provider whose deliveries carry several events, with a GET handshake and a verified challenge."""

    name = "batchy"
    payload_version = "batchy.v2"
    dedupe_ttl_seconds = 3 * 24 * 3600
    accepted_status = 200
    methods = ("GET", "POST")

    def handshake(self, delivery: Delivery, secrets: SourceSecrets) -> Reply | None:
        if delivery.method == "GET" and delivery.query.get("challenge"):
            ok = delivery.query.get("token") == secrets.extras.get("verify_token")
            return Reply(200, delivery.query["challenge"], "text/plain") if ok else Reply(403, "no", "text/plain")
        return None

    def verify(self, delivery: Delivery, secrets: Sequence[str], now: float) -> None:
        if delivery.header("x-sig") not in secrets:
            raise SignatureError("signature_mismatch")

    def challenge(self, delivery: Delivery) -> Reply | None:
        body = json.loads(delivery.body)
        return Reply(200, json.dumps({"challenge": body["challenge"]})) if "challenge" in body else None

    def events(self, delivery: Delivery) -> list[SourceEvent]:
        body = json.loads(delivery.body)
        if not isinstance(body, list):
            raise PayloadError("expected a JSON array of events")
        return [SourceEvent(event_id=e["id"], type=e["kind"], payload=e) for e in body]


class FakeRegistry:
    def __init__(self, source: WebhookSource) -> None:
        self.source = source

    def get(self, name: str) -> WebhookSource | None:
        return self.source if name == self.source.name else None


def service(store: RecordingTimeline | None = None, queue: RecordingQueue | None = None):
    store = store if store is not None else RecordingTimeline()
    queue = queue if queue is not None else RecordingQueue()
    secrets = StaticSecrets({"batchy": ["good"]})
    svc = IngestService(IngestSettings(table_name="t", ingest_queue_url="q"), secrets, store, queue,
                        FakeRegistry(BatchSource()))  # type: ignore[arg-type]
    return svc, store, queue


def request(body: object, method: str = "POST", sig: str = "good", **query: str) -> RawRequest:
    return RawRequest(source="batchy", headers={"x-sig": sig}, body=json.dumps(body) if body is not None else None,
                      is_base64=False, method=method, query=query)


EVENTS = [{"id": "e1", "kind": "thing.created"}, {"id": "e2", "kind": "thing.deleted"}]


def test_given_a_redelivered_batch_whose_events_are_all_still_being_accepted_then_it_waits_once_not_per_event():
    # Each event waiting its own 1.5 s would take a batch of HubSpot or WhatsApp events past the function's timeout
    many = [{"id": f"e{i}", "kind": "thing.created"} for i in range(6)]
    store = RecordingTimeline(accepting={f"batchy:e{i}": (f"run-{i}", time.time()) for i in range(6)})
    svc, _, queue = service(store=store)
    svc.settings = svc.settings.model_copy(update={"in_progress_wait_seconds": 0.3})

    started = time.monotonic()
    outcome = svc.accept(request(many))

    assert outcome.status == 409 and queue.sent == []
    assert 0.3 <= time.monotonic() - started < 1.5  # six waits of their own would take 1.8 s or more


def test_given_a_delivery_with_two_events_then_each_is_its_own_run_with_the_sources_payload_version():
    svc, _store, queue = service()

    outcome = svc.accept(request(EVENTS))

    assert outcome.status == 200
    assert outcome.body == {"events": [
        {"run_id": run_id_for("batchy:e1"), "event_id": "e1", "duplicate": False},
        {"run_id": run_id_for("batchy:e2"), "event_id": "e2", "duplicate": False},
    ]}
    assert [(e.type, e.payload_version, e.dedupe_key) for e in queue.sent] == [
        ("thing.created", "batchy.v2", "batchy:e1"), ("thing.deleted", "batchy.v2", "batchy:e2")]


def test_given_a_redelivered_batch_then_every_event_is_a_duplicate_and_nothing_is_queued_again():
    svc, store, queue = service()
    svc.accept(request(EVENTS))

    again = svc.accept(request(EVENTS))

    assert again.status == 200
    assert [e["duplicate"] for e in again.body["events"]] == [True, True]
    assert len(queue.sent) == 2
    assert store.states.count("duplicate") == 2


def test_given_one_event_of_a_batch_cannot_be_queued_then_503_and_only_that_one_is_undone():
    class FailSecond(RecordingQueue):
        def send(self, envelope, acceptance=None):
            if envelope.event_id == "e2":
                raise RuntimeError("sqs down")
            super().send(envelope, acceptance)

    svc, store, queue = service(queue=FailSecond())

    outcome = svc.accept(request(EVENTS))

    assert outcome.status == 503
    assert [e.event_id for e in queue.sent] == ["e1"]
    assert [e.event_id for e in store.forgotten] == ["e2"]


def test_given_a_handshake_then_its_reply_is_returned_as_is_and_nothing_is_recorded():
    svc, store, queue = service()
    svc.secrets.get = lambda name, **_: SourceSecrets(("good",), {"verify_token": "vt"})  # type: ignore[method-assign]
    ok = svc.accept(request(None, method="GET", challenge="12345", token="vt"))
    refused = svc.accept(request(None, method="GET", challenge="12345", token="wrong"))

    assert (ok.status, ok.body, ok.content_type) == (200, "12345", "text/plain")
    assert refused.status == 403
    assert store.entries == [] and queue.sent == []


def test_given_a_get_that_is_no_handshake_then_405():
    svc, _, _ = service()

    assert svc.accept(request(None, method="GET")).status == 405


def test_given_a_verified_challenge_then_it_is_answered_and_an_unverified_one_is_refused():
    svc, store, queue = service()

    answered = svc.accept(request({"challenge": "abc"}))
    refused = svc.accept(request({"challenge": "abc"}, sig="forged"))

    assert (answered.status, json.loads(answered.body)) == (200, {"challenge": "abc"})
    assert refused.status == 401
    assert store.entries == [] and queue.sent == []


def test_given_a_verified_body_with_no_readable_events_then_400_with_the_sources_reason():
    svc, store, queue = service()

    outcome = svc.accept(request({"not": "a list"}))

    assert (outcome.status, outcome.body["message"]) == (400, "expected a JSON array of events")
    assert store.entries == [] and queue.sent == []


def test_given_the_form_source_when_sent_a_get_then_405():
    store, queue = RecordingTimeline(), RecordingQueue()
    svc = IngestService(IngestSettings(table_name="t", ingest_queue_url="q"), StaticSecrets({"form": ["x"]}),
                        store, queue)

    assert svc.accept(RawRequest(source="form", headers={}, body=None, is_base64=False, method="GET")).status == 405


# -- the one constant-time signature check every HMAC-SHA256 provider uses ------------------------------------


def test_given_signatures_then_any_secret_may_match_and_nothing_else_does():
    message = b"v0:1700000000:{}"
    good = hmac_sha256.sign("new", message)

    assert hmac_sha256.matches_any(["old", "new"], message, ["00" * 32, good])
    assert hmac_sha256.matches_any(["new"], message, [good.upper()]), "hex is compared case-insensitively"
    assert not hmac_sha256.matches_any(["old"], message, [good])
    assert not hmac_sha256.matches_any([], message, [good])
    assert not hmac_sha256.matches_any(["new"], message, ["é" * 64]), "non-ASCII cannot match, nor raise"


def test_given_a_blank_secret_then_its_signature_anybody_can_make_never_matches():
    message = b"body"
    empty_key = hmac.new(b"", message, hashlib.sha256).hexdigest()

    assert not hmac_sha256.matches_any(["", "  "], message, [empty_key])


def test_given_base64_signatures_then_they_are_compared_exactly():
    message = b"POSThttps://x/webhooks/hubspot[]1700000000000"
    good = hmac_sha256.sign("secret", message, "base64")

    assert hmac_sha256.matches_any(["secret"], message, [good], "base64")
    assert not hmac_sha256.matches_any(["secret"], message, [good.swapcase()], "base64")
