"""POST /uploads through the real handler, the PUT to its URL through the local S3 endpoint, and the reader, all
against moto's S3 and Secrets Manager."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import http_uploads
import pytest
from interlock import uploads
from interlock.local.http_types import Request
from interlock.local.uploads import MOUNT, LocalUploads
from interlock.topology import UPLOADS_BUCKET
from interlock.webhooks.standard import signed_headers

from integration.support import REGION, rest_event

BUCKET = "interlock-test-uploads"
ENDPOINT = "http://127.0.0.1:8123" + MOUNT
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + b"%" * 2000


@pytest.fixture
def s3(aws: None, monkeypatch: pytest.MonkeyPatch, put_secret: Any, new_whsec: Any) -> Iterator[Any]:
    import boto3

    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("INTERLOCK_UPLOADS_BUCKET", BUCKET)
    monkeypatch.setenv("INTERLOCK_UPLOAD_ENDPOINT_URL", ENDPOINT)
    monkeypatch.setenv("INTERLOCK_SECRET_PREFIX", "interlock/webhooks/")
    monkeypatch.setenv("INTERLOCK_ENABLED_SOURCES", "form")
    for factory in (uploads.uploads_api, uploads.upload_reader, uploads._presign_client):
        factory.cache_clear()  # type: ignore[attr-defined]
    yield client
    for factory in (uploads.uploads_api, uploads.upload_reader, uploads._presign_client):
        factory.cache_clear()  # type: ignore[attr-defined]


@pytest.fixture
def secret(s3: Any, put_secret: Any, new_whsec: Any) -> str:
    value: str = new_whsec()
    put_secret("form", value)
    return value


def presign(lambda_context: Any, secret: str, payload: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps(payload)
    signed = signed_headers(secret, "msg_upload", int(time.time()), body.encode())
    event = rest_event("POST", "/uploads", "/uploads", {}, headers={"Content-Type": "application/json", **signed,
                                                                     **headers}, body=body)
    response = http_uploads.handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"])


def endpoint(clock: float | None = None) -> LocalUploads:
    return LocalUploads((UPLOADS_BUCKET,), lambda name: BUCKET, **({"clock": lambda: clock} if clock else {}))


def put(answer: dict[str, Any], body: bytes, *, headers: dict[str, str] | None = None, url: str | None = None,
        clock: float | None = None) -> Any:
    parts = urlsplit(url or answer["url"])
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    sent = {"Host": parts.netloc, **answer["headers"], **(headers or {})}
    return endpoint(clock).handle(Request("PUT", parts.path, query, list(sent.items()), body))


def test_given_a_signed_request_when_presigned_and_put_then_the_reader_returns_the_bytes(
    lambda_context: Any, secret: str, s3: Any,
) -> None:
    status, answer = presign(lambda_context, secret, {"content_type": "application/pdf", "size": len(PDF)})
    assert status == 201, answer
    assert answer["url"].startswith(f"{ENDPOINT}/{BUCKET}/uploads/")
    assert put(answer, PDF).status == 200
    stored = s3.get_object(Bucket=BUCKET, Key=uploads.object_key(answer["upload"], "uploads/"))
    assert stored["ContentType"] == "application/pdf"
    assert uploads.read_upload(answer["upload"]) == PDF
    assert uploads.fetch_upload(answer["upload"]).content_type == uploads.PDF


def test_given_a_presigned_url_when_the_put_differs_from_what_was_signed_then_s3_refuses_and_nothing_is_stored(
    lambda_context: Any, secret: str, s3: Any,
) -> None:
    _, answer = presign(lambda_context, secret, {"content_type": "application/pdf", "size": len(PDF)})
    longer = PDF + b"more"
    refused = [
        put(answer, longer, headers={"Content-Length": str(len(longer))}),  # more bytes than signed
        put(answer, b"hello", headers={"Content-Type": "text/plain; charset=utf-8", "Content-Length": "5"}),
        put(answer, PDF, url=answer["url"].replace(f"/{BUCKET}/uploads/", f"/{BUCKET}/uploads/x")),  # another key
        put(answer, PDF, url=answer["url"].replace("X-Amz-Expires=300", "X-Amz-Expires=3600")),
        put(answer, PDF, url=answer["url"][:-4] + "0000"),  # the signature itself
        put(answer, PDF, clock=time.time() + 301),  # expired
    ]
    assert [r.status for r in refused] == [403] * 6
    assert b"SignatureDoesNotMatch" in refused[0].body and b"Request has expired" in refused[5].body
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    with pytest.raises(uploads.UploadMissing):
        uploads.read_upload(answer["upload"])


def test_given_an_object_not_written_through_the_rules_when_read_then_named_errors(
    lambda_context: Any, secret: str, s3: Any,
) -> None:
    png, big, text = (uploads.new_reference() for _ in range(3))
    s3.put_object(Bucket=BUCKET, Key=uploads.object_key(png, "uploads/"), Body=b"\x89PNG", ContentType="image/png")
    s3.put_object(Bucket=BUCKET, Key=uploads.object_key(big, "uploads/"), Body=b"%PDF-" + b"0" * 2000,
                  ContentType="application/pdf")
    s3.put_object(Bucket=BUCKET, Key=uploads.object_key(text, "uploads/"), Body="Rechnung €".encode(),
                  ContentType="text/plain; charset=utf-8")
    with pytest.raises(uploads.UploadWrongType):
        uploads.read_upload(png)
    reader = uploads.UploadReader(uploads.UploadReadSettings(uploads_bucket=BUCKET, upload_max_bytes=1000),
                                  uploads.S3ObjectStore())
    with pytest.raises(uploads.UploadTooLarge):
        reader.fetch(big)
    assert uploads.read_upload(text) == "Rechnung €".encode()
    later = uploads.UploadReader(uploads.UploadReadSettings(uploads_bucket=BUCKET), uploads.S3ObjectStore(),
                                 clock=lambda: datetime.now(UTC) + timedelta(days=4))
    with pytest.raises(uploads.UploadExpired):
        later.fetch(text)


def test_given_a_request_without_the_forms_signature_then_401_and_with_no_form_secret_404(
    lambda_context: Any, s3: Any, put_secret: Any, new_whsec: Any,
) -> None:
    payload = {"content_type": "application/pdf", "size": 10}
    status, _ = presign(lambda_context, new_whsec(), payload)
    assert status == 404  # no secret stored for the form source: uploads are off, as its webhooks are
    put_secret("form", new_whsec())
    status, answer = presign(lambda_context, new_whsec(), payload)
    assert (status, answer["error"]) == (401, "invalid_signature")


def test_given_another_path_then_the_handler_answers_404(lambda_context: Any, s3: Any) -> None:
    event = rest_event("POST", "/uploads/x", "/uploads", {}, headers={}, body="{}")
    assert http_uploads.handler(event, lambda_context)["statusCode"] == 404
