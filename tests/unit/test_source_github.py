"""The GitHub source: signatures by GitHub's documented algorithm and test vector, events from the headers and body."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from importlib import resources
from urllib.parse import urlencode

import pytest
from interlock.ingest.service import IngestService, RawRequest
from interlock.models import run_id_for
from interlock.settings import IngestSettings
from interlock.webhooks.base import DAY, Delivery, PayloadError, SignatureError
from interlock.webhooks.registry import SourceRegistry
from interlock.webhooks.sources import github as github_source
from interlock.webhooks.sources.github import GitHubSource, infer_event, sender_headers, signature

from unit.fakes import RecordingQueue, RecordingTimeline, StaticSecrets

SECRET = "9f86d081884c7d659a2feaa0c55ad015"
OTHER = "60303ae22b998861bce3b28f33eec1be"
GUID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

# GitHub's documented test vector ("Validating webhook deliveries" > "Testing the webhook payload validation").
DOC_SECRET = "It's a Secret to Everybody"
DOC_PAYLOAD = b"Hello, World!"
DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def source() -> GitHubSource:
    built = SourceRegistry(IngestSettings(table_name="t", ingest_queue_url="q", enabled_sources="github")).get("github")
    assert isinstance(built, GitHubSource)
    return built


BODY = (resources.files("interlock") / "samples" / "github.json").read_bytes()
PAYLOAD = json.loads(BODY)


def delivery(body: bytes = BODY, *, sig: str | None = None, event: str | None = "issues", guid: str | None = GUID,
             content_type: str = "application/json") -> Delivery:
    headers = {"content-type": content_type}
    if sig is not None:
        headers["x-hub-signature-256"] = sig
    if event is not None:
        headers["x-github-event"] = event
    if guid is not None:
        headers["x-github-delivery"] = guid
    return Delivery(source="github", method="POST", headers=headers, query={}, body=body, path="/webhooks/github")


def github_signs(secret: str, body: bytes) -> str:
    """GitHub's documented algorithm, written out: ``sha256=`` + hex HMAC-SHA256(secret, body)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), msg=body, digestmod=hashlib.sha256).hexdigest()


def reason(body: bytes, sig: str | None, secrets: list[str]) -> str:
    with pytest.raises(SignatureError) as caught:
        source().verify(delivery(body, sig=sig), secrets, 0.0)
    return caught.value.reason


# -- GitHub's algorithm and test vector ----------------------------------------------------------------------


def test_given_githubs_documented_test_vector_then_our_signature_matches_it():
    assert github_signs(DOC_SECRET, DOC_PAYLOAD) == DOC_SIGNATURE
    assert signature(DOC_SECRET, DOC_PAYLOAD) == DOC_SIGNATURE


def test_given_githubs_documented_test_vector_when_verified_then_it_is_accepted():
    source().verify(delivery(DOC_PAYLOAD, sig=DOC_SIGNATURE), [DOC_SECRET], 0.0)


def test_given_the_documented_vector_with_another_payload_or_secret_then_it_is_refused():
    assert reason(b"Hello, World?", DOC_SIGNATURE, [DOC_SECRET]) == "signature_mismatch"
    assert reason(DOC_PAYLOAD, DOC_SIGNATURE, ["It's a secret to everybody"]) == "signature_mismatch"


def test_given_our_sender_headers_then_they_are_what_github_sends_and_they_verify():
    headers = sender_headers(SECRET, BODY, now=0, event_id=GUID)

    assert headers["X-Hub-Signature-256"] == github_signs(SECRET, BODY)
    assert headers["X-Hub-Signature"] == "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert (headers["X-GitHub-Event"], headers["X-GitHub-Delivery"]) == ("issues", GUID)
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["Content-Type"] == "application/json"
    assert headers["X-GitHub-Hook-Installation-Target-ID"] == str(PAYLOAD["repository"]["id"])
    lowered = {k.lower(): v for k, v in headers.items()}
    built = source()
    built.verify(Delivery("github", "POST", lowered, {}, BODY), [SECRET], 0.0)
    (event,) = built.events(Delivery("github", "POST", lowered, {}, BODY))
    assert (event.event_id, event.type) == (GUID, "issues.opened")


def test_given_an_event_id_that_is_not_a_guid_then_the_sender_makes_a_stable_guid_of_it():
    first = sender_headers(SECRET, BODY, now=0, event_id="msg_123")["X-GitHub-Delivery"]

    assert uuid.UUID(first)
    assert sender_headers(SECRET, BODY, now=0, event_id="msg_123")["X-GitHub-Delivery"] == first
    assert sender_headers(SECRET, BODY, now=0, event_id="msg_124")["X-GitHub-Delivery"] != first


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        ({"zen": "Keep it logically awesome.", "hook_id": 1, "hook": {}}, "ping"),
        ({"action": "opened", "issue": {}, "repository": {}}, "issues"),
        ({"action": "created", "issue": {}, "comment": {}}, "issue_comment"),
        ({"action": "opened", "pull_request": {}, "number": 1}, "pull_request"),
        ({"ref": "refs/heads/main", "before": "a", "after": "b", "commits": []}, "push"),
        ({"action": "completed", "workflow_run": {}}, "workflow_run"),
    ],
)
def test_given_a_payload_then_the_sender_tells_its_event_by_its_keys(payload, name):
    assert infer_event(payload) == name


def test_given_a_payload_the_sender_cannot_place_then_it_says_so_and_an_explicit_event_wins():
    body = json.dumps({"action": "created", "starred_at": None, "repository": {"id": 1}}).encode()

    with pytest.raises(ValueError, match="event="):
        sender_headers(SECRET, body, now=0, event_id=GUID)
    assert sender_headers(SECRET, body, now=0, event_id=GUID, event="star")["X-GitHub-Event"] == "star"


# -- refused ------------------------------------------------------------------------------------------------


def test_given_a_one_byte_tamper_then_it_is_refused():
    at = BODY.index(b"1347")
    assert reason(BODY[:at] + b"2" + BODY[at + 1:], github_signs(SECRET, BODY), [SECRET]) == "signature_mismatch"


def test_given_the_payload_re_serialised_then_it_is_refused():
    reserialised = json.dumps(PAYLOAD, separators=(",", ":")).encode()

    assert reserialised != BODY
    assert reason(reserialised, github_signs(SECRET, BODY), [SECRET]) == "signature_mismatch"


def test_given_a_signature_by_another_secret_then_it_is_refused():
    assert reason(BODY, github_signs(OTHER, BODY), [SECRET]) == "signature_mismatch"


@pytest.mark.parametrize(
    ("sig", "expected"),
    [
        pytest.param(None, "missing_header", id="absent"),
        pytest.param("", "missing_header", id="empty"),
        pytest.param(github_signs(SECRET, BODY).removeprefix("sha256="), "bad_header", id="no-prefix"),
        pytest.param("sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest(), "bad_header", id="sha1"),
        pytest.param("sha256=", "signature_mismatch", id="empty-digest"),
        pytest.param("sha256=ünïcödé", "signature_mismatch", id="non-ascii"),
    ],
)
def test_given_a_missing_or_malformed_signature_header_then_it_is_refused_with_a_reason(sig, expected):
    assert reason(BODY, sig, [SECRET]) == expected


def test_given_only_the_legacy_sha1_header_then_it_is_refused():
    sha1 = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    headers = {"x-hub-signature": sha1, "x-github-event": "issues", "x-github-delivery": GUID}
    legacy = Delivery("github", "POST", headers, {}, BODY)

    with pytest.raises(SignatureError, match="missing_header"):
        source().verify(legacy, [SECRET], 0.0)


def test_given_only_empty_secrets_then_a_signature_under_an_empty_key_is_refused():
    assert reason(BODY, github_signs("", BODY), ["", " "]) == "signature_mismatch"


# -- rotation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signer", [SECRET, OTHER])
def test_given_two_secrets_during_a_change_when_either_signs_then_it_is_accepted(signer):
    source().verify(delivery(sig=github_signs(signer, BODY)), [SECRET, OTHER], 0.0)


# -- the event --------------------------------------------------------------------------------------------------


def test_given_the_sample_then_it_is_an_issues_opened_payload():
    assert (PAYLOAD["action"], infer_event(PAYLOAD)) == ("opened", "issues")
    assert {"issue", "repository", "sender"} <= PAYLOAD.keys()


def test_given_a_verified_delivery_then_its_type_is_event_dot_action_and_its_id_the_delivery_guid():
    (event,) = source().events(delivery())

    assert (event.event_id, event.type) == (GUID, "issues.opened")
    assert event.payload == PAYLOAD


def test_given_an_event_without_an_action_then_its_type_is_the_event_name():
    body = json.dumps({"ref": "refs/heads/main", "before": "a", "after": "b", "commits": []}).encode()

    (event,) = source().events(delivery(body, event="push"))

    assert event.type == "push"


def test_given_a_form_encoded_delivery_then_the_payload_field_is_the_payload():
    body = urlencode({"payload": json.dumps(PAYLOAD)}).encode()

    (event,) = source().events(delivery(body, content_type="application/x-www-form-urlencoded"))

    assert (event.type, event.payload) == ("issues.opened", PAYLOAD)


def test_given_a_ping_once_verified_then_it_is_answered_200_and_is_no_event():
    ping = json.dumps({"zen": "Design for failure.", "hook_id": 12345678, "hook": {"type": "Repository"}}).encode()
    built = source()

    reply = built.challenge(delivery(ping, event="ping"))

    assert reply is not None and reply.status == 200
    assert json.loads(reply.body) == {"ok": True, "event": "ping"}
    assert built.challenge(delivery()) is None


def test_given_the_source_then_it_dedupes_beyond_githubs_three_day_redelivery_window():
    built = source()

    assert (built.name, built.payload_version, built.accepted_status, built.methods) == (
        "github", "github.v1", 202, ("POST",))
    assert built.dedupe_ttl_seconds > 3 * DAY
    assert github_source.SOURCE_CLASS is GitHubSource


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: delivery(guid=None), "X-GitHub-Delivery header.*missing", id="no-delivery"),
        pytest.param(lambda: delivery(guid="  "), "X-GitHub-Delivery header.*missing", id="blank-delivery"),
        pytest.param(lambda: delivery(guid="../../etc"), "not a delivery GUID", id="odd-delivery"),
        pytest.param(lambda: delivery(event=None), "X-GitHub-Event header.*missing", id="no-event"),
        pytest.param(lambda: delivery(event="Issues Opened"), "not a GitHub event name", id="odd-event"),
        pytest.param(lambda: delivery(b"{not json"), "not valid JSON", id="malformed-json"),
        pytest.param(lambda: delivery(b"[1, 2]"), "JSON object", id="array"),
        pytest.param(lambda: delivery(b'{"action": 7}'), "action:", id="numeric-action"),
        pytest.param(lambda: delivery(b"payload=", content_type="application/x-www-form-urlencoded"),
                     "not valid JSON", id="form-empty-payload"),
        pytest.param(lambda: delivery(b"other=1", content_type="application/x-www-form-urlencoded; charset=utf-8"),
                     "form field named 'payload'", id="form-without-payload"),
    ],
)
def test_given_a_verified_delivery_that_cannot_be_used_then_payload_error_says_why(make, message):
    with pytest.raises(PayloadError, match=message):
        source().events(make())


# -- through the ingest -----------------------------------------------------------------------------------------


def ingest() -> tuple[IngestService, RecordingTimeline, RecordingQueue]:
    store, queue = RecordingTimeline(), RecordingQueue()
    svc = IngestService(IngestSettings(table_name="t", ingest_queue_url="q", enabled_sources="github"),
                        StaticSecrets({"github": [SECRET]}), store, queue)
    return svc, store, queue


def post(svc: IngestService, body: bytes, headers: dict[str, str]) -> tuple[int, object]:
    outcome = svc.accept(RawRequest(source="github", headers={k.lower(): v for k, v in headers.items()},
                                    body=body.decode(), is_base64=False, path="/webhooks/github"))
    return outcome.status, outcome.body


def test_given_a_signed_delivery_through_the_ingest_then_202_and_one_envelope_keyed_by_the_delivery_guid():
    svc, _, queue = ingest()

    status, answer = post(svc, BODY, sender_headers(SECRET, BODY, now=0, event_id=GUID))

    assert status == 202
    assert answer == {"run_id": run_id_for(f"github:{GUID}"), "event_id": GUID, "duplicate": False}
    (envelope,) = queue.sent
    assert (envelope.source, envelope.type, envelope.payload_version, envelope.dedupe_key) == (
        "github", "issues.opened", "github.v1", f"github:{GUID}")
    assert envelope.payload == PAYLOAD


def test_given_a_redelivery_with_the_same_guid_then_it_is_a_duplicate_and_queued_once():
    svc, store, queue = ingest()
    headers = sender_headers(SECRET, BODY, now=0, event_id=GUID)
    post(svc, BODY, headers)

    status, answer = post(svc, BODY, headers)

    assert status == 202
    assert isinstance(answer, dict) and answer["duplicate"] is True
    assert len(queue.sent) == 1
    assert store.states == ["duplicate"]


def test_given_a_verified_delivery_without_its_guid_through_the_ingest_then_400_and_nothing_is_recorded():
    svc, store, queue = ingest()
    headers = sender_headers(SECRET, BODY, now=0, event_id=GUID)
    del headers["X-GitHub-Delivery"]

    status, answer = post(svc, BODY, headers)

    assert status == 400
    assert isinstance(answer, dict) and answer["error"] == "invalid_payload"
    assert store.created == [] and store.entries == [] and queue.sent == []


def test_given_a_ping_through_the_ingest_then_200_and_nothing_is_recorded_but_a_forged_ping_is_refused():
    svc, store, queue = ingest()
    ping = json.dumps({"zen": "Practicality beats purity.", "hook_id": 1, "hook": {}}).encode()

    status, _ = post(svc, ping, sender_headers(SECRET, ping, now=0, event_id=GUID))
    forged, _ = post(svc, ping, sender_headers(OTHER, ping, now=0, event_id=GUID))

    assert (status, forged) == (200, 401)
    assert store.created == [] and store.entries == [] and queue.sent == []
