"""S3's presigned PUT, served by the local gateway under ``/_local/uploads/<bucket>/<key>``.

moto runs inside the runtime's process, so nothing outside it can reach its S3 over HTTP. Locally the uploads
function presigns against this endpoint (``upload_endpoint_url``) with the same boto3 call as on AWS, and this
endpoint does what S3 does with such a URL: it verifies the SigV4 query signature (with the credentials the
runtime's functions sign with), refuses it once expired (``X-Amz-Date`` + ``X-Amz-Expires``) or not yet valid,
refuses a PUT whose signed headers (``Content-Length``, ``Content-Type``, ``Host``) differ from the ones sent, and
stores the object into moto's bucket. What the uploads function's role may do on AWS holds here too: only the
topology's buckets, only under their prefix. Errors are S3's: XML ``<Error><Code>...`` with S3's status codes.

``GET /_local/uploads/<reference>`` is the laptop's window onto an upload, as the fakes have theirs: the bytes, read
by :func:`interlock.uploads.fetch_upload` (the reader a step uses, every check included), or its named error as
JSON (``upload_missing`` 404, ``invalid_upload_reference`` 400, ``upload_too_large`` 413, ``upload_wrong_type``
415, ``upload_expired`` 410).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from interlock.local.http_types import Request, Response, json_response
from interlock.topology import Bucket

MOUNT = "/_local/uploads"
MAX_EXPIRES_SECONDS = 7 * 24 * 3600  # S3's limit for a SigV4 presigned URL
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
ALGORITHM = "AWS4-HMAC-SHA256"
# Signed headers this endpoint insists on: without them a URL would not pin the size and the type.
REQUIRED_SIGNED = frozenset({"host", "content-length", "content-type"})


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def process_credentials() -> Credentials | None:
    """The credentials the runtime's functions sign with (boto3's chain: in the runtime, moto's fake keys)."""
    import boto3

    found = boto3.Session().get_credentials()
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


class S3Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def s3_error(status: int, code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error>")
    return Response(status, [("Content-Type", "application/xml")], body.encode())


def verify_presigned(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
                     credentials: Credentials | None, now: float) -> None:
    """Raise :class:`S3Refusal` unless the request is what a presigned URL signed (S3's checks, in S3's order).

    ``path`` is the URL's path as signed (``/_local/uploads/<bucket>/<key>``), ``headers`` keyed by lower-case
    names."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials
    from botocore.utils import percent_encode_sequence

    names = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
             "X-Amz-Signature")
    if not all(query.get(n) for n in names):
        raise S3Refusal(403, "AccessDenied", "Query-string authentication requires the X-Amz-Algorithm, "
                                             "X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and "
                                             "X-Amz-Signature parameters")
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise S3Refusal(400, "AuthorizationQueryParametersError", "X-Amz-Algorithm only supports AWS4-HMAC-SHA256")
    parts = query["X-Amz-Credential"].split("/")
    if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request":
        raise S3Refusal(400, "AuthorizationQueryParametersError", "the X-Amz-Credential parameter is malformed")
    access_key, day, region, service, _ = parts
    try:
        signed_at = datetime.strptime(query["X-Amz-Date"], SIGV4_TIMESTAMP).replace(tzinfo=UTC).timestamp()
        expires = int(query["X-Amz-Expires"])
    except ValueError:
        raise S3Refusal(400, "AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is malformed") from None
    if not 1 <= expires <= MAX_EXPIRES_SECONDS or not query["X-Amz-Expires"].isdigit():
        raise S3Refusal(400, "AuthorizationQueryParametersError",
                        f"X-Amz-Expires must be between 1 and {MAX_EXPIRES_SECONDS} seconds")
    if not query["X-Amz-Date"].startswith(day):
        raise S3Refusal(400, "AuthorizationQueryParametersError", "the credential's date is not X-Amz-Date's")
    if credentials is None or access_key != credentials.access_key:
        raise S3Refusal(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    signed = query["X-Amz-SignedHeaders"].split(";")
    if not set(signed) >= REQUIRED_SIGNED or any(h not in headers for h in signed):
        # S3 would take a URL that signs fewer headers; this one never makes such a URL, so it refuses one.
        raise S3Refusal(403, "AccessDenied", "the URL must sign Host, Content-Length and Content-Type, and the "
                                             "request must send each header it signs")
    unsigned = {k: v for k, v in query.items() if k != "X-Amz-Signature"}
    request = AWSRequest(method=method, url=f"http://{headers['host']}{quote(path, safe='/~')}?"
                                            f"{percent_encode_sequence(unsigned)}",
                         headers={h: headers[h] for h in signed})
    request.context["timestamp"] = query["X-Amz-Date"]
    auth = S3SigV4QueryAuth(BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token),
                            service, region, expires=expires)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    import hmac

    if not hmac.compare_digest(expected, query["X-Amz-Signature"]):
        raise S3Refusal(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the "
                                                      "signature you provided.")
    if credentials.token is not None and query.get("X-Amz-Security-Token") != credentials.token:
        raise S3Refusal(403, "InvalidToken", "The provided token is malformed or otherwise invalid.")
    if now < signed_at - 15 * 60:
        raise S3Refusal(403, "AccessDenied", "Request is not valid yet")
    if now > signed_at + expires:
        raise S3Refusal(403, "AccessDenied", "Request has expired")


class LocalUploads:
    """The endpoint: ``PUT /_local/uploads/<bucket>/<key>?X-Amz-...`` into moto's bucket."""

    def __init__(self, buckets: tuple[Bucket, ...], bucket_name: Callable[[str], str],
                 clock: Callable[[], float] = time.time,
                 credentials: Callable[[], Credentials | None] = process_credentials,
                 client: Callable[[], Any] | None = None) -> None:
        self.prefixes = {bucket_name(b.name): b.prefix for b in buckets}
        self.clock = clock
        self.credentials = credentials
        self._client = client

    def handles(self, path: str) -> bool:
        return path == MOUNT or path.startswith(MOUNT + "/")

    def body_limit(self, environ: Mapping[str, str] = os.environ) -> int:
        """The largest body a PUT here may carry: the uploads' cap (the runtime's ``INTERLOCK_UPLOAD_MAX_BYTES``)."""
        from interlock.topology import DeploymentSettings

        raw = environ.get("INTERLOCK_UPLOAD_MAX_BYTES") or DeploymentSettings().upload_max_bytes
        return int(raw) if raw.isdigit() else int(DeploymentSettings().upload_max_bytes)

    def handle(self, request: Request) -> Response:
        bucket, _, key = request.path[len(MOUNT):].lstrip("/").partition("/")
        if request.method in ("GET", "HEAD") and not key:
            return self.read(bucket)
        if request.method != "PUT":
            return s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        if bucket not in self.prefixes:
            return s3_error(404, "NoSuchBucket", "The specified bucket does not exist")
        if not key.startswith(self.prefixes[bucket]) or len(key) <= len(self.prefixes[bucket]):
            return s3_error(403, "AccessDenied", "Access Denied")  # the uploads function may put there only
        headers = {k.lower(): v for k, v in request.headers}
        query = {k: v[-1] for k, v in request.query.items() if v}
        try:
            verify_presigned("PUT", request.path, query, headers, self.credentials(), self.clock())
        except S3Refusal as refusal:
            return s3_error(refusal.status, refusal.code, refusal.message)
        if headers.get("content-length") != str(len(request.body)):  # the gateway read exactly Content-Length
            return s3_error(400, "IncompleteBody", "You did not provide the number of bytes specified by the "
                                                   "Content-Length HTTP header")
        answer = self.client().put_object(Bucket=bucket, Key=key, Body=request.body,
                                          ContentType=headers["content-type"])
        return Response(200, [("ETag", str(answer.get("ETag", ""))), ("Content-Type", "application/xml")], b"")

    def read(self, reference: str) -> Response:
        """An upload as a step reads it, or the reader's named error."""
        from interlock import uploads

        try:
            upload = uploads.fetch_upload(reference)
        except uploads.UploadError as exc:
            status = {uploads.InvalidUploadReference: 400, uploads.UploadMissing: 404, uploads.UploadTooLarge: 413,
                      uploads.UploadWrongType: 415, uploads.UploadExpired: 410}.get(type(exc), 400)
            return json_response(status, {"error": exc.code, "message": str(exc)})
        return Response(200, [("Content-Type", upload.content_type), ("Cache-Control", "no-store")], upload.body)

    def client(self) -> Any:
        if self._client is not None:
            return self._client()
        from interlock import aws

        return aws.client("s3")
