"""Standard Webhooks signing and verification, checked against the official ``standardwebhooks`` library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks
from interlock.webhooks import standard
from interlock.webhooks.standard import SignatureError, sign, signed_headers, verify

BODY = json.dumps({"type": "support.ticket", "data": {"subject": "Hi", "body": "Help"}}).encode()
MSG_ID = "msg_2Lb6mVnWcVYQX2ZpRoRqNT8Ab2r"


def _reason(exc_info: pytest.ExceptionInfo[SignatureError]) -> str:
    return exc_info.value.reason


# -- interoperability with the official library ---------------------------------------------------------


def test_given_a_delivery_signed_by_the_official_library_when_verified_then_it_is_accepted(new_whsec):
    secret = new_whsec()
    now = int(time.time())
    theirs = standardwebhooks.Webhook(secret)
    signature = theirs.sign(MSG_ID, datetime.fromtimestamp(now, UTC), BODY.decode())
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(now), "webhook-signature": signature}

    assert verify([secret], headers, BODY, now=now) == MSG_ID


def test_given_a_delivery_signed_by_us_when_the_official_library_verifies_then_it_is_accepted(new_whsec):
    secret = new_whsec()
    now = int(time.time())
    headers = signed_headers(secret, MSG_ID, now, BODY)

    parsed = standardwebhooks.Webhook(secret).verify(BODY, headers)

    assert parsed == json.loads(BODY)


def test_given_our_signature_under_another_secret_when_the_official_library_verifies_then_it_refuses(new_whsec):
    now = int(time.time())
    headers = signed_headers(new_whsec(), MSG_ID, now, BODY)

    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_whsec()).verify(BODY, headers)


def test_given_the_spec_example_when_signed_then_the_signature_matches_the_official_library():
    # The secret from the Standard Webhooks specification's examples.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ts = 1614265330
    body = b'{"test": 2432232314}'
    official = standardwebhooks.Webhook(secret).sign("msg_p5jXN8AQM9LWM0D4loKWxJek", datetime.fromtimestamp(ts, UTC),
                                                     body.decode())

    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body) == official


# -- rotation ------------------------------------------------------------------------------------------------


def test_given_two_valid_secrets_when_signed_with_either_then_both_verify(new_whsec):
    old, new = new_whsec(), new_whsec()
    now = int(time.time())

    assert verify([old, new], signed_headers(old, MSG_ID, now, BODY), BODY, now=now) == MSG_ID
    assert verify([old, new], signed_headers(new, MSG_ID, now, BODY), BODY, now=now) == MSG_ID


def test_given_two_signatures_in_the_header_when_only_one_is_valid_then_it_verifies(new_whsec):
    ours, unknown = new_whsec(), new_whsec()
    now = int(time.time())
    header = f"{sign(unknown, MSG_ID, now, BODY)} {sign(ours, MSG_ID, now, BODY)}"
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(now), "webhook-signature": header}

    assert verify([ours], headers, BODY, now=now) == MSG_ID


def test_given_two_signatures_in_the_header_when_none_is_valid_then_it_is_refused(new_whsec):
    now = int(time.time())
    header = f"{sign(new_whsec(), MSG_ID, now, BODY)} {sign(new_whsec(), MSG_ID, now, BODY)}"
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(now), "webhook-signature": header}

    with pytest.raises(SignatureError) as exc_info:
        verify([new_whsec()], headers, BODY, now=now)
    assert _reason(exc_info) == "signature_mismatch"


def test_given_a_signature_with_an_unknown_version_only_when_verified_then_it_is_refused(new_whsec):
    secret = new_whsec()
    now = int(time.time())
    v1 = sign(secret, MSG_ID, now, BODY)
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(now),
               "webhook-signature": "v1a," + v1.split(",", 1)[1]}

    with pytest.raises(SignatureError) as exc_info:
        verify([secret], headers, BODY, now=now)
    assert _reason(exc_info) == "no_v1_signature"


# -- tampering ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, len(BODY) // 2, len(BODY) - 1])
def test_given_a_body_with_one_byte_changed_when_verified_then_it_is_refused(new_whsec, position):
    secret = new_whsec()
    now = int(time.time())
    headers = signed_headers(secret, MSG_ID, now, BODY)
    tampered = bytearray(BODY)
    tampered[position] ^= 0x01

    with pytest.raises(SignatureError) as exc_info:
        verify([secret], headers, bytes(tampered), now=now)
    assert _reason(exc_info) == "signature_mismatch"


def test_given_the_same_json_re_serialised_when_verified_then_it_is_refused(new_whsec):
    secret = new_whsec()
    now = int(time.time())
    headers = signed_headers(secret, MSG_ID, now, BODY)
    reserialised = json.dumps(json.loads(BODY), separators=(",", ":"), sort_keys=True).encode()
    assert json.loads(reserialised) == json.loads(BODY) and reserialised != BODY

    with pytest.raises(SignatureError) as exc_info:
        verify([secret], headers, reserialised, now=now)
    assert _reason(exc_info) == "signature_mismatch"


def test_given_a_different_message_id_when_verified_then_it_is_refused(new_whsec):
    secret = new_whsec()
    now = int(time.time())
    headers = {**signed_headers(secret, MSG_ID, now, BODY), "webhook-id": "msg_other"}

    with pytest.raises(SignatureError):
        verify([secret], headers, BODY, now=now)


def test_given_a_different_timestamp_within_tolerance_when_verified_then_it_is_refused(new_whsec):
    secret = new_whsec()
    now = int(time.time())
    headers = {**signed_headers(secret, MSG_ID, now, BODY), "webhook-timestamp": str(now - 1)}

    with pytest.raises(SignatureError) as exc_info:
        verify([secret], headers, BODY, now=now)
    assert _reason(exc_info) == "signature_mismatch"


def test_given_the_wrong_secret_when_verified_then_it_is_refused(new_whsec):
    now = int(time.time())
    headers = signed_headers(new_whsec(), MSG_ID, now, BODY)

    with pytest.raises(SignatureError) as exc_info:
        verify([new_whsec()], headers, BODY, now=now)
    assert _reason(exc_info) == "signature_mismatch"


def test_given_no_secrets_when_verified_then_nothing_is_accepted(new_whsec):
    now = int(time.time())
    headers = signed_headers(new_whsec(), MSG_ID, now, BODY)

    with pytest.raises(SignatureError):
        verify([], headers, BODY, now=now)


# -- timestamps ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "accepted", "reason"),
    [
        (-300, True, None),
        (-301, False, "timestamp_too_old"),
        (300, True, None),
        (301, False, "timestamp_in_future"),
        (-86_400, False, "timestamp_too_old"),
        (86_400, False, "timestamp_in_future"),
    ],
    ids=["5min-old", "5min1s-old", "5min-ahead", "5min1s-ahead", "a-day-old", "a-day-ahead"],
)
def test_given_a_timestamp_offset_when_verified_then_the_5_minute_window_holds_both_ways(
    new_whsec, offset, accepted, reason
):
    secret = new_whsec()
    now = 1_700_000_000
    ts = now + offset
    headers = signed_headers(secret, MSG_ID, ts, BODY)

    if accepted:
        assert verify([secret], headers, BODY, now=now, tolerance_seconds=300) == MSG_ID
    else:
        with pytest.raises(SignatureError) as exc_info:
            verify([secret], headers, BODY, now=now, tolerance_seconds=300)
        assert _reason(exc_info) == reason


@pytest.mark.parametrize("timestamp", ["abc", "1700000000.5", "", " ", "1e9", "0x10"])
def test_given_a_non_integer_timestamp_when_verified_then_it_is_refused(new_whsec, timestamp):
    secret = new_whsec()
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": timestamp,
               "webhook-signature": sign(secret, MSG_ID, 1_700_000_000, BODY)}

    with pytest.raises(SignatureError) as exc_info:
        verify([secret], headers, BODY, now=1_700_000_000)
    assert _reason(exc_info) in {"bad_timestamp", "missing_headers"}
    if timestamp:
        assert _reason(exc_info) == "bad_timestamp"


# -- headers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_given_a_missing_header_when_verified_then_it_is_refused_as_missing_headers(new_whsec, missing):
    secret = new_whsec()
    now = int(time.time())
    headers = signed_headers(secret, MSG_ID, now, BODY)
    del headers[missing]

    with pytest.raises(SignatureError) as exc_info:
        verify([secret], headers, BODY, now=now)
    assert _reason(exc_info) == "missing_headers"


@pytest.mark.parametrize("blank", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_given_an_empty_header_when_verified_then_it_is_refused_as_missing_headers(new_whsec, blank):
    secret = new_whsec()
    now = int(time.time())
    headers = {**signed_headers(secret, MSG_ID, now, BODY), blank: ""}

    with pytest.raises(SignatureError) as exc_info:
        verify([secret], headers, BODY, now=now)
    assert _reason(exc_info) == "missing_headers"


def test_given_svix_header_names_when_verified_then_it_is_accepted(new_whsec):
    secret = new_whsec()
    now = int(time.time())
    headers = {f"svix-{k.split('-', 1)[1]}": v for k, v in signed_headers(secret, MSG_ID, now, BODY).items()}
    assert set(headers) == {"svix-id", "svix-timestamp", "svix-signature"}

    assert verify([secret], headers, BODY, now=now) == MSG_ID


def test_given_svix_headers_with_a_bad_signature_when_verified_then_it_is_refused(new_whsec):
    secret = new_whsec()
    now = int(time.time())
    headers = {"svix-id": MSG_ID, "svix-timestamp": str(now),
               "svix-signature": sign(new_whsec(), MSG_ID, now, BODY)}

    with pytest.raises(SignatureError) as exc_info:
        verify([secret], headers, BODY, now=now)
    assert _reason(exc_info) == "signature_mismatch"


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
def test_given_svix_headers_with_one_missing_when_verified_then_it_is_refused(new_whsec, missing):
    secret = new_whsec()
    now = int(time.time())
    headers = {"svix-id": MSG_ID, "svix-timestamp": str(now), "svix-signature": sign(secret, MSG_ID, now, BODY)}
    del headers[missing]

    with pytest.raises(SignatureError) as exc_info:
        verify([secret], headers, BODY, now=now)
    assert _reason(exc_info) == "missing_headers"


def test_given_no_headers_at_all_when_verified_then_it_is_refused(new_whsec):
    with pytest.raises(SignatureError) as exc_info:
        verify([new_whsec()], {}, BODY, now=time.time())
    assert _reason(exc_info) == "missing_headers"


# -- secrets ----------------------------------------------------------------------------------------------


def test_given_a_secret_with_or_without_the_prefix_when_decoded_then_the_key_is_the_same(new_whsec):
    secret = new_whsec()

    assert standard.secret_key(secret) == standard.secret_key(secret.removeprefix("whsec_"))
    assert len(standard.secret_key(secret)) == 32


def test_given_a_secret_that_is_not_base64_when_decoded_then_a_clear_error_is_raised():
    with pytest.raises(ValueError, match="whsec_"):
        standard.secret_key("whsec_not base64!")


def test_given_an_unpadded_secret_accepted_by_the_official_library_when_verified_then_it_is_accepted():
    # 32 random bytes are 44 base64 characters ending in '='; senders that strip the padding still
    # hand out valid secrets, and the official library accepts them.
    padded = "whsec_" + "A" * 42 + "E="
    unpadded = padded.rstrip("=")
    now = int(time.time())
    theirs = standardwebhooks.Webhook(unpadded).sign(MSG_ID, datetime.fromtimestamp(now, UTC), BODY.decode())
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(now), "webhook-signature": theirs}

    assert verify([unpadded], headers, BODY, now=now) == MSG_ID
    assert sign(unpadded, MSG_ID, now, BODY) == sign(padded, MSG_ID, now, BODY) == theirs



@pytest.mark.parametrize("empty", ["whsec_", "", "whsec_===="])
def test_given_an_empty_secret_when_used_then_it_is_refused_rather_than_keying_hmac_with_nothing(empty):
    # HMAC under an empty key is a signature anybody can make; the official library refuses it too.
    now = int(time.time())
    empty_key_signature = "v1," + base64.b64encode(
        hmac.new(b"", f"{MSG_ID}.{now}.".encode() + BODY, hashlib.sha256).digest()).decode()
    forged = {"webhook-id": MSG_ID, "webhook-timestamp": str(now), "webhook-signature": empty_key_signature}

    with pytest.raises(ValueError):
        standard.secret_key(empty)
    with pytest.raises(SignatureError, match="no_usable_secret"):
        verify([empty], forged, BODY, now=now)


def test_given_an_unusable_secret_beside_a_good_one_when_verified_then_the_good_one_still_verifies(new_whsec):
    # A typo while rotating must not take the source down (a 500 for every delivery) nor hide the good secret
    good = new_whsec()
    now = int(time.time())

    assert verify(["not base64!", "whsec_", good], signed_headers(good, MSG_ID, now, BODY), BODY, now=now) == MSG_ID


@pytest.mark.parametrize("stamp", ["+{now}", " {now}", "{now} ", "{now}.0", "1_{now}", "-{now}", "", "{now}x"])
def test_given_a_timestamp_that_is_not_plain_digits_then_it_is_refused(new_whsec, stamp):
    secret = new_whsec()
    now = int(time.time())
    headers = {**signed_headers(secret, MSG_ID, now, BODY), "webhook-timestamp": stamp.format(now=now)}

    with pytest.raises(SignatureError, match=r"bad_timestamp|missing_headers"):
        verify([secret], headers, BODY, now=now)
