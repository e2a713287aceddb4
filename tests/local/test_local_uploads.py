"""The local S3 presigned PUT endpoint (interlock.local.uploads): S3's checks on a URL boto3 presigned, each refusal
a 4xx in S3's XML shape, time given as a clock (never waited for)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from interlock.local.gateway import MAX_BODY_BYTES, Gateway
from interlock.local.http_types import Request
from interlock.local.uploads import MOUNT, Credentials, LocalUploads
from interlock.topology import TOPOLOGY, UPLOADS_BUCKET

CREDENTIALS = Credentials("AKIDLOCAL", "local-secret", "local-token")
BUCKET = "interlock-uploads"
KEY = "uploads/" + "k" * 43
HOST = "127.0.0.1:8000"
SIGNED_AT = 1_900_000_000.0


@dataclass
class FakeS3:
    puts: list[dict[str, Any]] = field(default_factory=list)

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.puts.append(kwargs)
        return {"ETag": '"etag"'}


def sign(key: str = KEY, size: int = 5, content_type: str = "application/pdf", expires: int = 300,
         credentials: Credentials = CREDENTIALS, bucket: str = BUCKET) -> str:
    """A URL presigned by boto3 exactly as the uploads function presigns, at SIGNED_AT."""
    from unittest import mock

    import boto3
    from botocore.config import Config

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id=credentials.access_key,
                          aws_secret_access_key=credentials.secret_key, aws_session_token=credentials.token,
                          endpoint_url=f"http://{HOST}{MOUNT}",
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    import datetime as dt

    at = dt.datetime.fromtimestamp(SIGNED_AT, dt.UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        return str(client.generate_presigned_url(
            "put_object", HttpMethod="PUT", ExpiresIn=expires,
            Params={"Bucket": bucket, "Key": key, "ContentType": content_type, "ContentLength": size}))


def request(url: str, body: bytes = b"%PDF-", method: str = "PUT", headers: dict[str, str] | None = None,
            drop: tuple[str, ...] = ()) -> Request:
    parts = urlsplit(url)
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    sent = {"Host": parts.netloc, "Content-Type": "application/pdf", "Content-Length": str(len(body)),
            **(headers or {})}
    return Request(method, parts.path, query, [(k, v) for k, v in sent.items() if k not in drop], body)


def endpoint(now: float = SIGNED_AT + 10, credentials: Credentials | None = CREDENTIALS) -> tuple[LocalUploads, FakeS3]:
    s3 = FakeS3()
    return LocalUploads((UPLOADS_BUCKET,), lambda name: f"interlock-{name}", clock=lambda: now,
                        credentials=lambda: credentials, client=lambda: s3), s3


def test_given_a_presigned_url_when_put_as_signed_then_stored_with_its_type() -> None:
    uploads, s3 = endpoint()
    answer = uploads.handle(request(sign()))
    assert answer.status == 200, answer.body
    assert s3.puts == [{"Bucket": BUCKET, "Key": KEY, "Body": b"%PDF-", "ContentType": "application/pdf"}]


@pytest.mark.parametrize(("now", "code"), [(SIGNED_AT + 301, b"Request has expired"),
                                           (SIGNED_AT - 16 * 60, b"Request is not valid yet")])
def test_given_a_url_outside_its_time_then_403_and_nothing_stored(now: float, code: bytes) -> None:
    uploads, s3 = endpoint(now=now)
    answer = uploads.handle(request(sign()))
    assert answer.status == 403 and code in answer.body and s3.puts == []


def test_given_the_last_second_of_a_url_then_it_still_works() -> None:
    uploads, _ = endpoint(now=SIGNED_AT + 300)
    assert uploads.handle(request(sign())).status == 200


def _swap(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    pairs = [(k, value if k == name else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    from urllib.parse import urlencode

    return parts._replace(query=urlencode(pairs)).geturl()


@pytest.mark.parametrize(("what", "make", "status", "code"), [
    ("longer body", lambda: request(sign(), body=b"%PDF-1"), 403, b"SignatureDoesNotMatch"),
    ("other type", lambda: request(sign(), headers={"Content-Type": "text/plain"}), 403, b"SignatureDoesNotMatch"),
    ("other host", lambda: request(sign(), headers={"Host": "evil.example"}), 403, b"SignatureDoesNotMatch"),
    ("longer expiry", lambda: request(_swap(sign(), "X-Amz-Expires", "3600")), 403, b"SignatureDoesNotMatch"),
    ("other signature", lambda: request(_swap(sign(), "X-Amz-Signature", "0" * 64)), 403, b"SignatureDoesNotMatch"),
    ("other key", lambda: request(sign().replace(KEY, KEY[:-1] + "x")), 403, b"SignatureDoesNotMatch"),
    ("other token", lambda: request(_swap(sign(), "X-Amz-Security-Token", "t")), 403, b"SignatureDoesNotMatch"),
    ("unknown key id", lambda: request(sign(credentials=Credentials("AKIDOTHER", "x"))), 403, b"InvalidAccessKeyId"),
    ("no signature", lambda: request(sign().split("?")[0]), 403, b"AccessDenied"),
    ("no length signed", lambda: request(sign(), drop=("Content-Length",)), 403, b"AccessDenied"),
    ("bad algorithm", lambda: request(_swap(sign(), "X-Amz-Algorithm", "AWS4-HMAC-MD5")), 400,
     b"AuthorizationQueryParametersError"),
    ("bad credential", lambda: request(_swap(sign(), "X-Amz-Credential", "AKID/x")), 400,
     b"AuthorizationQueryParametersError"),
    ("bad date", lambda: request(_swap(sign(), "X-Amz-Date", "yesterday")), 400, b"AuthorizationQueryParametersError"),
    ("expiry too long", lambda: request(_swap(sign(), "X-Amz-Expires", "604801")), 400,
     b"AuthorizationQueryParametersError"),
    ("negative expiry", lambda: request(_swap(sign(), "X-Amz-Expires", "-1")), 400,
     b"AuthorizationQueryParametersError"),
    ("another bucket", lambda: request(sign(bucket="someone-else")), 404, b"NoSuchBucket"),
    ("outside the prefix", lambda: request(sign(key="other/" + "k" * 43)), 403, b"AccessDenied"),
    ("the prefix itself", lambda: request(sign(key="uploads/")), 403, b"AccessDenied"),
    ("a GET", lambda: request(sign(), method="GET"), 405, b"MethodNotAllowed"),
    ("a POST", lambda: request(sign(), method="POST"), 405, b"MethodNotAllowed"),
])
def test_given_a_put_that_is_not_what_was_signed_then_s3s_4xx_and_nothing_stored(
    what: str, make: Any, status: int, code: bytes,
) -> None:
    uploads, s3 = endpoint()
    answer = uploads.handle(make())
    assert (answer.status, code in answer.body) == (status, True), (what, answer.body)
    assert dict(answer.headers)["Content-Type"] == "application/xml"
    assert s3.puts == []


def test_given_no_credentials_in_the_runtime_then_nothing_verifies() -> None:
    uploads, s3 = endpoint(credentials=None)
    assert uploads.handle(request(sign())).status == 403 and s3.puts == []


def test_given_the_gateway_then_it_reads_an_upload_up_to_the_uploads_cap_and_other_bodies_up_to_10_mib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway = Gateway(TOPOLOGY, port=0)
    try:
        monkeypatch.setenv("INTERLOCK_UPLOAD_MAX_BYTES", str(30 * 1024 * 1024))
        assert gateway.body_limit(f"{MOUNT}/{BUCKET}/{KEY}") == 30 * 1024 * 1024
        assert gateway.body_limit("/webhooks/form") == MAX_BODY_BYTES
        monkeypatch.setenv("INTERLOCK_UPLOAD_MAX_BYTES", "1024")
        assert gateway.body_limit(f"{MOUNT}/{BUCKET}/{KEY}") == MAX_BODY_BYTES  # never below API Gateway's
    finally:
        gateway.stop()
