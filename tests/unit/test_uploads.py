"""interlock.uploads without AWS: references and keys, the presign request's checks, the reader's checks."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from interlock.uploads import (
    PDF,
    TEXT,
    InvalidUploadReference,
    S3Presigner,
    StoredObject,
    UploadApiSettings,
    UploadExpired,
    UploadMissing,
    UploadReader,
    UploadReadSettings,
    UploadsApi,
    UploadTooLarge,
    UploadWrongType,
    is_reference,
    new_reference,
    object_key,
)
from interlock.webhooks.base import SourceSecrets
from interlock.webhooks.standard import signed_headers

SECRET = "whsec_" + base64.b64encode(b"uploads-unit-test-secret").decode()
NOW = 1_800_000_000
MIB = 1024 * 1024


# -- references and keys --------------------------------------------------------------------------------------


def test_given_new_references_then_each_is_opaque_random_and_names_a_key_under_the_prefix() -> None:
    references = {new_reference() for _ in range(200)}
    assert len(references) == 200
    for reference in references:
        assert is_reference(reference)
        key = object_key(reference, "uploads/")
        assert key.startswith("uploads/") and key.removeprefix("uploads/") == reference.removeprefix("upload_")
        assert len(reference.removeprefix("upload_")) == 43  # 32 random bytes, URL-safe base64


@pytest.mark.parametrize("value", [
    "", "upload_", "upload_short", "uploads/" + "a" * 43, "upload_" + "a" * 42, "upload_" + "a" * 44,
    "upload_" + "a" * 40 + "../", "upload_" + "a" * 42 + "/", "UPLOAD_" + "a" * 43, " upload_" + "a" * 43,
    "upload_" + "a" * 42 + "\n", "https://example.com/upload_" + "a" * 43, "upload_" + "é" * 43,
])
def test_given_a_value_that_is_not_a_reference_then_no_key_is_made(value: str) -> None:
    assert not is_reference(value)
    with pytest.raises(InvalidUploadReference):
        object_key(value, "uploads/")


def test_given_a_reference_made_from_a_known_token_then_the_key_is_that_token() -> None:
    reference = new_reference(lambda n: "A" * 43)
    assert reference == "upload_" + "A" * 43
    assert object_key(reference, "uploads/") == "uploads/" + "A" * 43


# -- POST /uploads ----------------------------------------------------------------------------------------------


@dataclass
class FakeSecrets:
    signing: tuple[str, ...] = (SECRET,)
    fail: bool = False
    asked: list[str] = field(default_factory=list)

    def get(self, source: str, *, free_text: bool = False) -> SourceSecrets:
        self.asked.append(source)
        if self.fail:
            raise RuntimeError("secrets manager is down")
        return SourceSecrets(signing=self.signing)


@dataclass
class FakePresigner:
    calls: list[tuple[str, str, str, int, int]] = field(default_factory=list)

    def put_url(self, bucket: str, key: str, content_type: str, size: int, expires_in: int) -> str:
        self.calls.append((bucket, key, content_type, size, expires_in))
        return f"https://{bucket}.s3.example/{key}?signed"


def api(**overrides: Any) -> tuple[UploadsApi, FakeSecrets, FakePresigner]:
    settings = UploadApiSettings(uploads_bucket="the-bucket", **overrides)
    secrets, presigner = FakeSecrets(), FakePresigner()
    return UploadsApi(settings, secrets, presigner, clock=lambda: NOW), secrets, presigner


def signed(payload: Any, *, secret: str = SECRET, at: int = NOW) -> tuple[dict[str, str], str]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return signed_headers(secret, "msg_1", at, body), body.decode("utf-8", "replace")


def ask(uploads: UploadsApi, payload: Any, **kwargs: Any) -> Any:
    """POST the payload signed, as API Gateway passes it on (base64 when it is not UTF-8)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers, _ = signed(body, **kwargs)
    try:
        return uploads.handle("POST", headers, body.decode(), False)
    except UnicodeDecodeError:
        return uploads.handle("POST", headers, base64.b64encode(body).decode(), True)


def test_given_a_signed_request_for_a_pdf_then_a_url_signed_for_its_size_and_type_and_a_reference() -> None:
    uploads, secrets, presigner = api()
    answer = ask(uploads, {"content_type": "application/pdf", "size": 123_456})
    assert answer.status == 201
    body = answer.body
    assert is_reference(body["upload"])
    ((bucket, key, content_type, size, ttl),) = presigner.calls
    assert (bucket, content_type, size, ttl) == ("the-bucket", PDF, 123_456, 300)
    assert key == object_key(body["upload"], "uploads/")  # the server made the key, from the reference
    assert body["url"] == f"https://the-bucket.s3.example/{key}?signed"
    assert body["upload"] not in body["url"]  # the reference is not the URL (nor in it)
    assert body == {"upload": body["upload"], "url": body["url"], "method": "PUT",
                    "headers": {"Content-Type": PDF, "Content-Length": "123456"}, "expires_in": 300,
                    "max_bytes": 20 * MIB, "content_type": PDF, "size": 123_456}
    assert secrets.asked == ["form"]


def test_given_text_then_it_is_signed_as_utf8_text_and_the_settings_set_ttl_and_cap() -> None:
    uploads, _, presigner = api(upload_url_ttl_seconds=60, upload_max_bytes=1000)
    answer = ask(uploads, {"content_type": "text/plain", "size": 1000})
    assert answer.status == 201
    assert answer.body["content_type"] == TEXT and answer.body["expires_in"] == 60 and answer.body["max_bytes"] == 1000
    assert presigner.calls[0][2:] == (TEXT, 1000, 60)


def test_given_two_requests_then_two_references_and_two_keys() -> None:
    uploads, _, presigner = api()
    first = ask(uploads, {"content_type": "application/pdf", "size": 10}).body["upload"]
    second = ask(uploads, {"content_type": "application/pdf", "size": 10}).body["upload"]
    assert first != second and presigner.calls[0][1] != presigner.calls[1][1]


@pytest.mark.parametrize(("payload", "status", "error"), [
    ({"content_type": "application/pdf", "size": 20 * MIB + 1}, 413, "upload_too_large"),
    ({"content_type": "image/png", "size": 10}, 400, "invalid_request"),
    ({"content_type": "text/html", "size": 10}, 400, "invalid_request"),
    ({"content_type": "application/pdf", "size": 0}, 400, "invalid_request"),
    ({"content_type": "application/pdf", "size": -5}, 400, "invalid_request"),
    ({"content_type": "application/pdf", "size": "10"}, 400, "invalid_request"),
    ({"content_type": "application/pdf", "size": True}, 400, "invalid_request"),
    ({"content_type": "application/pdf", "size": 1.5}, 400, "invalid_request"),
    ({"content_type": "application/pdf"}, 400, "invalid_request"),
    ({"content_type": "application/pdf", "size": 10, "key": "uploads/mine"}, 400, "invalid_request"),
    ([{"content_type": "application/pdf", "size": 10}], 400, "invalid_request"),
    (b"not json", 400, "invalid_request"),
    (b"\xff\xfe", 400, "invalid_request"),
    (b"[" * 2000 + b"]" * 2000, 400, "invalid_request"),
    (b'{"content_type": "application/pdf", "size": ' + b"9" * 3000 + b"}", 413, "upload_too_large"),
    (b'{"content_type": "application/pdf", "size": ' + b"9" * 5000 + b"}", 413, "body_too_large"),
    (b"x" * 4097, 413, "body_too_large"),
])
def test_given_a_signed_request_for_what_is_not_allowed_then_4xx_and_nothing_presigned(
    payload: Any, status: int, error: str,
) -> None:
    uploads, _, presigner = api()
    answer = ask(uploads, payload)
    assert (answer.status, answer.body["error"]) == (status, error)
    assert presigner.calls == []


def test_given_an_unsigned_or_badly_signed_request_then_401_and_nothing_presigned() -> None:
    uploads, _, presigner = api()
    payload = {"content_type": "application/pdf", "size": 10}
    body = json.dumps(payload)
    assert uploads.handle("POST", {}, body, False).status == 401
    other = "whsec_" + base64.b64encode(b"somebody else's secret").decode()
    assert ask(uploads, payload, secret=other).status == 401
    assert ask(uploads, payload, at=NOW - 301).status == 401  # a replay after the tolerance
    assert ask(uploads, payload, at=NOW + 301).status == 401
    headers, _ = signed(payload)
    assert uploads.handle("POST", headers, body.replace("10", "99"), False).status == 401  # tampered after signing
    assert presigner.calls == []


def test_given_the_source_disabled_or_without_secret_then_404_and_a_failing_store_503() -> None:
    payload = {"content_type": "application/pdf", "size": 10}
    uploads, secrets, presigner = api(enabled_sources="stripe")
    assert ask(uploads, payload).status == 404 and secrets.asked == []
    uploads, secrets, presigner = api()
    secrets.signing = ()
    assert ask(uploads, payload).status == 404
    secrets.signing, secrets.fail = (SECRET,), True
    assert ask(uploads, payload).status == 503
    assert presigner.calls == []


def test_given_a_base64_body_then_it_is_decoded_before_verifying_and_bad_base64_is_400() -> None:
    uploads, _, _ = api()
    headers, body = signed({"content_type": "application/pdf", "size": 10})
    assert uploads.handle("POST", headers, base64.b64encode(body.encode()).decode(), True).status == 201
    assert uploads.handle("POST", headers, "***", True).status == 400


def test_given_another_method_then_405() -> None:
    uploads, _, _ = api()
    assert uploads.handle("GET", {}, None, False).status == 405


def test_given_the_s3_presigner_then_the_url_signs_length_type_and_host_and_expires_in_the_ttl() -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="secret", config=Config(signature_version="s3v4"))
    url = S3Presigner(client=client).put_url("the-bucket", "uploads/abc", PDF, 1234, 300)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.path.endswith("/uploads/abc")
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert query["X-Amz-Expires"] == ["300"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


# -- reading ----------------------------------------------------------------------------------------------------


@dataclass
class FakeStore:
    objects: dict[str, tuple[str, bytes, datetime, int | None]] = field(default_factory=dict)
    read_sizes: list[int] = field(default_factory=list)
    closed: int = 0

    def put(self, key: str, content_type: str, body: bytes, at: datetime, size: int | None = None) -> None:
        self.objects[key] = (content_type, body, at, size)

    def open(self, bucket: str, key: str) -> StoredObject:
        assert bucket == "the-bucket"
        if key not in self.objects:
            raise UploadMissing("nothing uploaded")
        content_type, body, at, size = self.objects[key]

        def read(n: int) -> bytes:
            self.read_sizes.append(n)
            return body[:n]

        def close() -> None:
            self.closed += 1

        return StoredObject(content_type, len(body) if size is None else size, at, read, close)


TODAY = datetime(2027, 1, 10, 12, tzinfo=UTC)
PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


def reader(**overrides: Any) -> tuple[UploadReader, FakeStore, str]:
    store = FakeStore()
    reference = new_reference()
    settings = UploadReadSettings(uploads_bucket="the-bucket", **overrides)
    return UploadReader(settings, store, clock=lambda: TODAY), store, reference


def test_given_an_uploaded_pdf_or_text_then_it_is_read_with_its_type() -> None:
    read, store, reference = reader()
    store.put(object_key(reference, "uploads/"), "application/pdf", PDF_BYTES, TODAY - timedelta(hours=1))
    upload = read.fetch(reference)
    assert (upload.content_type, upload.body, upload.reference) == (PDF, PDF_BYTES, reference)
    other = new_reference()
    store.put(object_key(other, "uploads/"), "text/plain;charset=UTF-8", "Rechnung Nr. 7 — 100 €".encode(), TODAY)
    assert read.fetch(other).content_type == TEXT
    assert store.closed == 2


def test_given_an_object_over_the_cap_then_too_large_without_reading_its_body() -> None:
    read, store, reference = reader(upload_max_bytes=100)
    store.put(object_key(reference, "uploads/"), PDF, PDF_BYTES + b"x" * 100, TODAY)
    with pytest.raises(UploadTooLarge):
        read.fetch(reference)
    assert store.read_sizes == [] and store.closed == 1


def test_given_a_body_longer_than_its_metadata_then_too_large_reading_no_more_than_the_cap_and_one() -> None:
    read, store, reference = reader(upload_max_bytes=100)
    store.put(object_key(reference, "uploads/"), PDF, PDF_BYTES + b"x" * 200, TODAY, size=50)
    with pytest.raises(UploadTooLarge):
        read.fetch(reference)
    assert store.read_sizes == [101]


def test_given_an_upload_exactly_at_the_cap_then_it_is_read() -> None:
    body = PDF_BYTES + b"x" * (100 - len(PDF_BYTES))
    read, store, reference = reader(upload_max_bytes=100)
    store.put(object_key(reference, "uploads/"), PDF, body, TODAY)
    assert read.fetch(reference).body == body


@pytest.mark.parametrize(("content_type", "body"), [
    ("image/png", b"\x89PNG\r\n"),
    ("", PDF_BYTES),
    ("application/pdf", b"<html>not a pdf</html>"),
    ("application/pdf", b""),
    ("text/plain; charset=utf-8", b"\xff\xfe\x00t\x00e"),
    ("text/plain; charset=latin-1", b"caf\xe9"),
])
def test_given_an_upload_that_is_not_what_it_should_be_then_wrong_type(content_type: str, body: bytes) -> None:
    read, store, reference = reader()
    store.put(object_key(reference, "uploads/"), content_type, body, TODAY)
    with pytest.raises(UploadWrongType):
        read.fetch(reference)


def test_given_an_upload_older_than_the_retention_then_expired_and_one_just_inside_it_is_read() -> None:
    read, store, reference = reader(upload_retention_days=3)
    store.put(object_key(reference, "uploads/"), PDF, PDF_BYTES, TODAY - timedelta(days=3, seconds=1))
    with pytest.raises(UploadExpired):
        read.fetch(reference)
    store.put(object_key(reference, "uploads/"), PDF, PDF_BYTES, TODAY - timedelta(days=3))
    assert read.fetch(reference).body == PDF_BYTES


def test_given_nothing_uploaded_or_a_bad_reference_then_named_errors_and_no_lookup_for_a_bad_one() -> None:
    read, store, reference = reader()
    with pytest.raises(UploadMissing):
        read.fetch(reference)
    with pytest.raises(InvalidUploadReference) as raised:
        read.fetch("uploads/../../etc/passwd")
    assert raised.value.code == "invalid_upload_reference"
    assert store.read_sizes == []
