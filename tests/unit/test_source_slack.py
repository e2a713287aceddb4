"""The Slack source: signatures checked against the official ``slack_sdk`` verifier, and what each kind of
signed request (Events API, url_verification, interactivity, slash commands) becomes."""

from __future__ import annotations

import hashlib
import json
import time
from importlib import resources
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from interlock.ingest.service import IngestService, RawRequest
from interlock.settings import IngestSettings
from interlock.webhooks.base import Delivery, PayloadError, SignatureError, SourceSecrets
from interlock.webhooks.registry import SourceRegistry
from interlock.webhooks.sources import slack
from interlock.webhooks.sources.slack import SlackSource, sender_headers, sign
from slack_sdk.signature import Clock, SignatureVerifier

from unit.fakes import RecordingQueue, RecordingTimeline, StaticSecrets

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
OTHER = "0123456789abcdef0123456789abcdef"
SETTINGS = IngestSettings(table_name="t", ingest_queue_url="q", enabled_sources="slack")

MENTION = {
    "token": "XXYYZZ", "team_id": "T123ABC", "api_app_id": "A123ABC", "type": "event_callback",
    "event_id": "Ev08MFMKH6", "event_time": 1_700_000_000,
    "event": {"type": "app_mention", "user": "U061F7AUR", "text": "<@U0LAN0Z89> is it everything?",
              "ts": "1515449522.000016", "channel": "C0LAN2Q65", "event_ts": "1515449522000016"},
}
BLOCK_ACTIONS = {
    "type": "block_actions", "token": "XXYYZZ", "trigger_id": "13345224609.738474920.8088930838d88f008e0",
    "user": {"id": "U061F7AUR", "name": "ada"}, "team": {"id": "T123ABC"}, "api_app_id": "A123ABC",
    "response_url": "https://hooks.slack.com/actions/T123ABC/1/abc",
    "actions": [{"action_id": "approve", "block_id": "b1", "type": "button", "value": "yes: 100% & more",
                 "action_ts": "1548426417.840180"}],
}


def source() -> SlackSource:
    return SlackSource("slack", SETTINGS)


def delivery(body: bytes, headers: dict[str, str]) -> Delivery:
    return Delivery(source="slack", method="POST", headers={k.lower(): v for k, v in headers.items()},
                    query={}, body=body, path="/webhooks/slack")


def body_of(payload: object) -> bytes:
    return json.dumps(payload).encode()


def as_slack_form(fields: dict[str, str]) -> bytes:
    """A form the way a sender may percent-encode it (``%20``, ``%3A``): not what ``urlencode`` would make."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in fields.items()).encode()


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


# -- interoperability with the official slack_sdk ---------------------------------------------------------


@pytest.mark.parametrize("body", [body_of(MENTION), as_slack_form({"payload": json.dumps(BLOCK_ACTIONS)})],
                         ids=["events-api-json", "interactivity-form"])
def test_given_our_sender_headers_when_slack_sdk_verifies_them_then_they_are_valid(body):
    now = int(time.time())
    headers = sender_headers(SECRET, body, now=now, event_id="ignored")

    assert set(headers) == {"Content-Type", "X-Slack-Request-Timestamp", "X-Slack-Signature"}
    assert headers["Content-Type"] == ("application/json" if body.startswith(b"{")
                                       else "application/x-www-form-urlencoded")
    assert headers["X-Slack-Request-Timestamp"] == str(now)
    assert SignatureVerifier(SECRET, FixedClock(now)).is_valid_request(body, headers)
    assert not SignatureVerifier(OTHER, FixedClock(now)).is_valid_request(body, headers)


@pytest.mark.parametrize("body", [body_of(MENTION), as_slack_form({"payload": json.dumps(BLOCK_ACTIONS)})],
                         ids=["events-api-json", "interactivity-form"])
def test_given_a_signature_made_by_slack_sdk_when_we_verify_it_then_it_is_accepted(body):
    now = int(time.time())
    theirs = SignatureVerifier(SECRET).generate_signature(timestamp=str(now), body=body)
    assert theirs is not None
    headers = {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": theirs}

    source().verify(delivery(body, headers), [SECRET], now)
    assert theirs == sign(SECRET, now, body)


def test_given_slacks_documented_example_when_signed_then_the_documented_signature_comes_out():
    # https://api.slack.com/authentication/verifying-requests-from-slack (the worked example)
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
            b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
            b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
            b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

    assert sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body) == expected
    source().verify(delivery(body, {"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": expected}),
                    ["8f742231b10e8888abcd99yyyzzz85a5"], now=1531420618 + 10)


# -- refused ----------------------------------------------------------------------------------------------


def _headers(body: bytes, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    return sender_headers(secret, body, now=int(time.time()) if at is None else at, event_id="")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda b: (b[:-2] + b"X" + b[-1:], _headers(b)), "signature_mismatch"),
        (lambda b: (json.dumps(json.loads(b), separators=(",", ":")).encode(), _headers(b)), "signature_mismatch"),
        (lambda b: (b, _headers(b, secret=OTHER)), "signature_mismatch"),
        (lambda b: (b, _headers(b, at=int(time.time()) - 301)), "timestamp_too_old"),
        (lambda b: (b, _headers(b, at=int(time.time()) + 301)), "timestamp_in_future"),
        (lambda b: (b, {}), "missing_headers"),
        (lambda b: (b, {k: v for k, v in _headers(b).items() if k != "X-Slack-Signature"}), "missing_headers"),
        (lambda b: (b, {k: v for k, v in _headers(b).items() if k != "X-Slack-Request-Timestamp"}),
         "missing_headers"),
        (lambda b: (b, {**_headers(b), "X-Slack-Request-Timestamp": "soon"}), "bad_timestamp"),
        (lambda b: (b, {**_headers(b), "X-Slack-Signature": _headers(b)["X-Slack-Signature"].replace("v0=", "v1=")}),
         "no_v0_signature"),
        (lambda b: (b, {**_headers(b), "X-Slack-Signature": "v0=é" * 3}), "no_v0_signature"),
    ],
    ids=["one-byte-tamper", "re-serialised-json", "wrong-secret", "stale", "future", "no-headers",
         "no-signature", "no-timestamp", "non-integer-timestamp", "other-version", "non-ascii-signature"],
)
def test_given_a_request_that_is_not_slacks_when_verified_then_it_is_refused_with_the_reason(make, reason):
    body, headers = make(body_of(MENTION))

    with pytest.raises(SignatureError) as exc_info:
        source().verify(delivery(body, headers), [SECRET], time.time())

    assert exc_info.value.reason == reason


def test_given_a_timestamp_exactly_at_the_tolerance_then_it_is_accepted_like_slack_sdk_does():
    body = body_of(MENTION)
    now = int(time.time())
    for at in (now - 300, now + 300):
        headers = _headers(body, at=at)
        source().verify(delivery(body, headers), [SECRET], now)
        assert SignatureVerifier(SECRET, FixedClock(now)).is_valid_request(body, headers)


def test_given_two_signing_secrets_during_a_rotation_then_either_one_verifies():
    body = body_of(MENTION)

    for secret in (SECRET, OTHER):
        source().verify(delivery(body, _headers(body, secret=secret)), [SECRET, OTHER], time.time())


def test_given_a_form_when_verified_then_the_bytes_as_received_are_used_and_a_re_encoding_would_fail():
    body = as_slack_form({"payload": json.dumps(BLOCK_ACTIONS)})
    headers = _headers(body)
    re_encoded = urlencode(parse_qsl(body.decode(), keep_blank_values=True)).encode()
    assert re_encoded != body and parse_qsl(re_encoded.decode()) == parse_qsl(body.decode())

    source().verify(delivery(body, headers), [SECRET], time.time())
    with pytest.raises(SignatureError):
        source().verify(delivery(re_encoded, headers), [SECRET], time.time())


# -- what a signed request becomes --------------------------------------------------------------------------


def test_given_an_event_callback_then_one_event_keyed_by_event_id_typed_by_the_inner_event_without_the_token():
    (event,) = source().events(delivery(body_of(MENTION), {}))

    assert (event.event_id, event.type) == ("Ev08MFMKH6", "slack.app_mention")
    assert event.payload == {k: v for k, v in MENTION.items() if k != "token"}


@pytest.mark.parametrize(
    ("inner", "expected"),
    [({"type": "message", "text": "hi"}, "slack.message"),
     ({"type": "message", "subtype": "bot_message"}, "slack.message.bot_message"),
     ({"type": "reaction_added"}, "slack.reaction_added"),
     ({"type": "no such/type!"}, "slack.unknown")],
)
def test_given_inner_event_types_then_the_event_type_names_them(inner, expected):
    (event,) = source().events(delivery(body_of({**MENTION, "event": inner}), {}))

    assert event.type == expected


def test_given_url_verification_then_the_challenge_is_answered_bare_as_text_plain():
    body = body_of({"token": "XXYYZZ", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                    "type": "url_verification"})

    reply = source().challenge(delivery(body, {}))

    assert reply is not None
    assert (reply.status, reply.body, reply.content_type) == (
        200, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "text/plain")


def test_given_an_event_callback_or_an_interaction_then_there_is_no_challenge_to_answer():
    assert source().challenge(delivery(body_of(MENTION), {})) is None
    assert source().challenge(delivery(as_slack_form({"payload": json.dumps(BLOCK_ACTIONS)}), {})) is None


def test_given_an_ssl_check_then_it_is_answered_with_an_empty_200_before_any_signature_check():
    reply = source().handshake(delivery(b"ssl_check=1&token=XXYYZZ", {}), SourceSecrets(signing=("s",)))

    assert reply is not None and (reply.status, reply.body) == (200, "")
    assert source().handshake(delivery(b"command=%2Fx&ssl_check=1", {}), SourceSecrets(signing=("s",))) is None


def test_given_an_accepted_interaction_or_command_then_slacks_acknowledgement_is_an_empty_200_not_json():
    form = delivery(as_slack_form({"payload": json.dumps({"type": "block_actions", "trigger_id": "t"})}), {})
    events_api = delivery(json.dumps({"type": "event_callback"}).encode(), {})

    ack = source().acknowledgement(form)
    assert ack is not None and (ack.status, ack.body) == (200, "")
    assert source().acknowledgement(events_api) is None


def test_given_an_options_load_then_it_is_answered_with_no_options_instead_of_queued():
    body = as_slack_form({"payload": json.dumps({"type": "block_suggestion", "value": "ad", "action_id": "a"})})

    reply = source().challenge(delivery(body, {}))

    assert reply is not None and (reply.status, json.loads(reply.body)) == (200, {"options": []})


def test_given_an_interactivity_form_then_one_event_keyed_by_trigger_id_with_the_parsed_payload():
    (event,) = source().events(delivery(as_slack_form({"payload": json.dumps(BLOCK_ACTIONS)}), {}))

    assert (event.event_id, event.type) == (BLOCK_ACTIONS["trigger_id"], "slack.interaction.block_actions")
    assert event.payload == {k: v for k, v in BLOCK_ACTIONS.items() if k != "token"}


def test_given_an_interaction_without_a_trigger_id_then_the_raw_bytes_hash_is_its_id():
    body = as_slack_form({"payload": json.dumps({"type": "view_closed", "view": {"id": "V1", "hash": "h"},
                                                 "is_cleared": False})})

    (event,) = source().events(delivery(body, {}))

    assert event.event_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert event.type == "slack.interaction.view_closed"


def test_given_a_slash_command_then_one_event_keyed_by_trigger_id_with_the_fields():
    fields = {"token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": "T0001", "command": "/weather", "text": "94070",
              "user_id": "U2147483697", "response_url": "https://hooks.slack.com/commands/1234/5678",
              "trigger_id": "13345224609.738474920.8088930838d88f008e0", "api_app_id": "A123456"}

    (event,) = source().events(delivery(as_slack_form(fields), {}))

    assert (event.event_id, event.type) == (fields["trigger_id"], "slack.command")
    assert event.payload == {k: v for k, v in fields.items() if k != "token"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [(b'{"type": "event_callback", "event": {"type": "x"}}', "without an event_id"),
     (b'{"type": "event_callback", "event_id": "Ev1"}', "without an event object"),
     (b'{"type": "something_else"}', "unsupported Events API request type"),
     (b'{"type": ', "not valid JSON"),
     (b"payload=%7Bnope", "the payload field is not valid JSON"),
     (b"user_id=U1&text=hello", "expected an Events API JSON body"),
     (b"command=%2Fweather&text=x", "slash command without a trigger_id")],
)
def test_given_a_signed_body_slack_would_not_send_then_a_payload_error_says_why(body, fragment):
    with pytest.raises(PayloadError, match=fragment):
        source().events(delivery(body, {}))


def test_given_the_packaged_sample_then_it_is_one_app_mention_and_our_headers_sign_it():
    raw = (resources.files("interlock") / "samples" / "slack.json").read_bytes()
    now = int(time.time())
    headers = sender_headers(SECRET, raw, now=now, event_id="x")

    source().verify(delivery(raw, headers), [SECRET], now)
    (event,) = source().events(delivery(raw, headers))
    assert event.type == "slack.app_mention"
    assert event.event_id == json.loads(raw)["event_id"]


# -- through the ingest -----------------------------------------------------------------------------------------


def ingest():
    store, queue = RecordingTimeline(), RecordingQueue()
    svc = IngestService(SETTINGS, StaticSecrets({"slack": [SECRET]}), store, queue, SourceRegistry(SETTINGS))
    return svc, store, queue


def post(svc: IngestService, body: bytes, headers: dict[str, str]):
    return svc.accept(RawRequest(source="slack", headers={k.lower(): v for k, v in headers.items()},
                                 body=body.decode(), is_base64=False, method="POST", path="/webhooks/slack"))


def test_given_an_event_then_a_retry_of_it_is_a_200_duplicate_and_is_not_queued_twice():
    svc, store, queue = ingest()
    body = body_of(MENTION)

    first = post(svc, body, _headers(body))
    retry = post(svc, body, {**_headers(body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})

    assert (first.status, first.body["duplicate"]) == (200, False)
    assert (retry.status, retry.body["duplicate"]) == (200, True)
    assert retry.body["run_id"] == first.body["run_id"]
    assert [(e.type, e.dedupe_key, e.payload_version) for e in queue.sent] == [
        ("slack.app_mention", "slack:Ev08MFMKH6", "slack.v1")]
    assert store.states.count("duplicate") == 1


def test_given_url_verification_then_signed_is_answered_unsigned_is_401_and_nothing_is_recorded():
    svc, store, queue = ingest()
    body = body_of({"token": "t", "challenge": "abc123", "type": "url_verification"})

    answered = post(svc, body, _headers(body))
    refused = post(svc, body, {})

    assert (answered.status, answered.body, answered.content_type) == (200, "abc123", "text/plain")
    assert refused.status == 401
    assert store.entries == [] and store.created == [] and queue.sent == []


def test_given_the_slack_source_then_it_keeps_ids_at_least_a_day_and_answers_200():
    assert source().dedupe_ttl_seconds >= 24 * 3600
    assert source().accepted_status == 200
    assert source().methods == ("POST",)
    assert slack.SOURCE_CLASS is SlackSource
