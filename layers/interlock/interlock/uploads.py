"""Documents larger than a webhook's body: a presigned upload to the uploads bucket, then a reference to it.

A sender that wants to hand Interlock a document too large for an event (an invoice PDF; a webhook body is at
most ``max_body_bytes``, 64 KiB) does two things, the same on AWS and on a laptop:

1. ``POST /uploads`` with ``{"content_type": "application/pdf", "size": <bytes>}``, signed as a Standard Webhooks
   delivery with the secret of the ``form`` source (the sender that posts the events), and gets back
   ``{"upload": "<reference>", "url": "<presigned PUT URL>", "method": "PUT", "headers": {...},
   "expires_in": N, "max_bytes": M, "content_type": "application/pdf", "size": <bytes>}``;
2. ``PUT``\\s the document's bytes to ``url`` with exactly those ``headers`` before the URL expires, and puts the
   reference in its event (``"document": {"upload": "<reference>"}``).

What holds whom to what:

* **Who may ask.** Only a holder of the ``form`` source's signing secret: an unsigned presign endpoint would be
  an open write into the bucket. The sender of ``invoice.received`` holds it already and has no AWS
  credentials, which IAM (SigV4) authorisation would need. A disabled or unconfigured ``form`` source answers
  404 here too, as its webhooks do.
* **The key** is made here, ``<prefix><random>``: the sender names nothing in the bucket. The **reference**,
  ``upload_<random>``, is 256 random bits, not the URL and not a key anybody could guess; the URL (a credential
  for one PUT) is never logged.
* **Size and type are enforced by S3 itself**: the URL is signed (SigV4) over ``Content-Length`` and
  ``Content-Type``, so S3 refuses a PUT of any other length or type (``SignatureDoesNotMatch``), and the declared
  size may not exceed ``upload_max_bytes``. A presigned PUT cannot take a size *range*; an exact signed length can
  be enforced, and the sender knows its file's size.
* **Expiry**: the URL works for ``upload_url_ttl_seconds``; the object is kept ``upload_retention_days`` (the
  bucket's lifecycle rule deletes it after; the reader refuses an older one meanwhile, since S3's lifecycle runs
  up to a day late).
* **Reading** (:func:`read_upload`, for the steps) checks everything again: the reference's shape, the object's
  size against the cap (before reading its body), its type (stored type, and the bytes: a PDF starts ``%PDF-``,
  text is UTF-8) and its age, each failure a named :class:`UploadError`.

Locally the presign client points at the runtime's own S3-shaped endpoint (``upload_endpoint_url``,
``/_local/uploads``, :mod:`interlock.local.uploads`), which checks the same signature, expiry, length and type and
stores the object into the local cloud's bucket.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from interlock.aws import once_per_process
from interlock.settings import load

PDF = "application/pdf"
TEXT = "text/plain; charset=utf-8"
# What a sender may declare -> the exact Content-Type the URL is signed for (and the PUT must carry).
CONTENT_TYPES = {PDF: PDF, "text/plain": TEXT, TEXT: TEXT}
REFERENCE_PREFIX = "upload_"
_TOKEN_BYTES = 32
_REFERENCE = re.compile(rf"^{REFERENCE_PREFIX}([A-Za-z0-9_-]{{43}})$")  # token_urlsafe(32): 43 characters
MAX_REQUEST_BYTES = 4096  # the presign request is a small JSON object
MIB = 1024 * 1024
DAY = 24 * 3600


# -- settings -------------------------------------------------------------------------------------------------


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class UploadReadSettings(_Settings):
    """What reading an upload needs (the steps that read one: ``Access.BUCKET_READ``)."""

    uploads_bucket: str = Field(min_length=1)
    upload_prefix: str = Field(default="uploads/", pattern=r"^[a-z0-9-]+/$")
    # The largest upload accepted: declared at presign, signed into the URL, checked again on reading.
    upload_max_bytes: int = Field(default=20 * MIB, gt=0, le=100 * MIB)
    # Days an upload is kept: the bucket's lifecycle expiry; the reader refuses an older one meanwhile.
    upload_retention_days: int = Field(default=3, ge=1, le=30)


class UploadApiSettings(UploadReadSettings):
    """What ``POST /uploads`` needs."""

    upload_url_ttl_seconds: int = Field(default=300, ge=1, le=3600)
    # Empty: S3's own (regional) endpoint. Locally: the runtime's /_local/uploads.
    upload_endpoint_url: str = ""
    # The webhook source whose signing secret authorises an upload (its sender posts the events that refer to it).
    upload_source: str = "form"
    secret_prefix: str = "interlock/webhooks/"
    enabled_sources: str = "form"
    timestamp_tolerance_seconds: int = Field(default=300, gt=0)
    secret_cache_seconds: int = Field(default=300, ge=0)


# -- references and keys --------------------------------------------------------------------------------------


def new_reference(token: Callable[[int], str] = secrets.token_urlsafe) -> str:
    """A fresh upload reference: ``upload_`` and 256 random bits (URL-safe base64)."""
    return REFERENCE_PREFIX + token(_TOKEN_BYTES)


def is_reference(value: object) -> bool:
    return isinstance(value, str) and _REFERENCE.fullmatch(value) is not None


def object_key(reference: str, prefix: str) -> str:
    """The object key of ``reference``'s upload: ``<prefix><random part>``; :class:`InvalidUploadReference` for a
    value that is not a reference Interlock made."""
    match = _REFERENCE.fullmatch(reference) if isinstance(reference, str) else None
    if match is None:
        raise InvalidUploadReference("not an upload reference (upload_ followed by 43 URL-safe characters)")
    return prefix + match.group(1)


# -- errors ---------------------------------------------------------------------------------------------------


class UploadError(Exception):
    """An upload that cannot be used; ``code`` names why (for a step's flag or reason) and is safe to log."""

    code = "upload_error"


class InvalidUploadReference(UploadError):
    code = "invalid_upload_reference"


class UploadMissing(UploadError):
    """Nothing was uploaded for the reference (never uploaded, or removed after its retention)."""

    code = "upload_missing"


class UploadTooLarge(UploadError):
    code = "upload_too_large"


class UploadWrongType(UploadError):
    code = "upload_wrong_type"


class UploadExpired(UploadError):
    """Uploaded longer ago than the retention: the lifecycle rule will delete it, and it is not read."""

    code = "upload_expired"


# -- the presign request --------------------------------------------------------------------------------------


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    content_type: Literal["application/pdf", "text/plain", "text/plain; charset=utf-8"]
    size: int = Field(gt=0, strict=True)  # a JSON integer: not "12", not true


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": code, "message": message})


class Presigner(Protocol):
    def put_url(self, bucket: str, key: str, content_type: str, size: int, expires_in: int) -> str:
        """A URL that lets whoever holds it PUT exactly ``size`` bytes of ``content_type`` at ``key``."""


class SourceSecretsLookup(Protocol):
    def get(self, source: str, *, free_text: bool = False) -> Any:
        """The source's secrets (``interlock.webhooks.base.SourceSecrets``); empty when it has none."""


class UploadsApi:
    """``POST /uploads``: check who asks and what, then answer a presigned PUT URL and a reference."""

    def __init__(self, settings: UploadApiSettings, secrets: SourceSecretsLookup, presigner: Presigner,
                 clock: Callable[[], float] = time.time,
                 reference: Callable[[], str] = new_reference) -> None:
        self.settings = settings
        self.secrets = secrets
        self.presigner = presigner
        self.clock = clock
        self.reference = reference

    def enabled(self) -> bool:
        from interlock.webhooks.registry import parse_enabled

        return self.settings.upload_source in parse_enabled(self.settings.enabled_sources)

    def handle(self, method: str, headers: Mapping[str, str], body: str | None, is_base64: bool) -> Answer:
        """Answer one request; ``headers`` keyed by lower-case names."""
        from interlock.observability import logger
        from interlock.webhooks import standard

        if method != "POST":
            return _error(405, "method_not_allowed", "uploads are asked for with POST")
        if not self.enabled():
            return _refused(_error(404, "uploads_disabled", "uploads are not enabled"), "source_not_enabled")
        try:
            source_secrets = self.secrets.get(self.settings.upload_source)
        except Exception:
            logger.exception("could not read the upload source's secrets")
            return _error(503, "unavailable", "the request could not be verified right now; retry later")
        if not source_secrets:
            return _refused(_error(404, "uploads_disabled", "uploads are not enabled"), "no_secret_configured")
        raw = _raw_body(body, is_base64)
        if raw is None:
            return _refused(_error(400, "bad_body", "the body is marked base64 but is not valid base64"), "bad_base64")
        if len(raw) > MAX_REQUEST_BYTES:
            message = (f"the request is {len(raw)} bytes; an upload request is at most {MAX_REQUEST_BYTES} (the "
                       "document itself goes to the URL)")
            return _refused(_error(413, "body_too_large", message), "body_too_large")
        try:
            standard.verify(source_secrets.signing, headers, raw, self.clock(),
                            self.settings.timestamp_tolerance_seconds)
        except standard.SignatureError as exc:
            return _refused(_error(401, "invalid_signature", "the request's signature or timestamp did not verify"),
                            exc.reason)
        from interlock.webhooks.base import read_json

        try:
            request = UploadRequest.model_validate(read_json(raw))
        except (ValueError, ValidationError) as exc:  # read_json's PayloadError is a ValueError
            return _refused(_error(400, "invalid_request", _message(exc)), "invalid_request")
        if request.size > self.settings.upload_max_bytes:
            return _refused(_error(413, "upload_too_large", f"the document is {request.size} bytes; the limit is "
                                                            f"{self.settings.upload_max_bytes}"), "upload_too_large")
        reference = self.reference()
        content_type = CONTENT_TYPES[request.content_type]
        ttl = self.settings.upload_url_ttl_seconds
        url = self.presigner.put_url(self.settings.uploads_bucket, object_key(reference, self.settings.upload_prefix),
                                     content_type, request.size, ttl)
        logger.info("upload presigned", extra={"content_type": content_type, "size": request.size})
        return Answer(201, {
            "upload": reference,
            "url": url,
            "method": "PUT",
            "headers": {"Content-Type": content_type, "Content-Length": str(request.size)},
            "expires_in": ttl,
            "max_bytes": self.settings.upload_max_bytes,
            "content_type": content_type,
            "size": request.size,
        })


def _refused(answer: Answer, reason: str) -> Answer:
    from interlock.observability import count, logger

    logger.warning("upload request refused", extra={"status": answer.status, "reason": reason})
    count("UploadRejected")
    return answer


def _raw_body(body: str | None, is_base64: bool) -> bytes | None:
    if body is None:
        return b""
    if not is_base64:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors())
    return str(exc)


class S3Presigner:
    """SigV4 presigned ``put_object`` URLs, signed over ``Content-Type`` and ``Content-Length`` (so S3 enforces
    both), by the function's own credentials: the URL can do what the function's role may (``s3:PutObject``
    under the uploads prefix) and no more, until it expires."""

    def __init__(self, endpoint_url: str = "", client: Any | None = None) -> None:
        self.endpoint_url = endpoint_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _presign_client(self.endpoint_url)
        return self._client

    def put_url(self, bucket: str, key: str, content_type: str, size: int, expires_in: int) -> str:
        return str(self.client.generate_presigned_url(
            "put_object", HttpMethod="PUT", ExpiresIn=expires_in,
            Params={"Bucket": bucket, "Key": key, "ContentType": content_type, "ContentLength": size}))


@once_per_process
def _presign_client(endpoint_url: str) -> Any:
    import boto3
    from botocore.config import Config

    # SigV4 (the only signature new regions take, and the one that signs Content-Length); virtual-hosted URLs on
    # S3 itself, path-style on another endpoint (the local runtime's, whose host is not the bucket's).
    config = Config(signature_version="s3v4", s3={"addressing_style": "path" if endpoint_url else "virtual"})
    return boto3.client("s3", endpoint_url=endpoint_url or None, config=config)


# -- reading an upload ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    content_type: str
    size: int
    last_modified: datetime
    read: Callable[[int], bytes]  # at most n bytes of the body
    close: Callable[[], None] = lambda: None


class ObjectStore(Protocol):
    def open(self, bucket: str, key: str) -> StoredObject:
        """The object's metadata and its body to read; :class:`UploadMissing` when there is none."""


class S3ObjectStore:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    def open(self, bucket: str, key: str) -> StoredObject:
        from botocore.exceptions import ClientError

        from interlock import aws

        client = self._client or aws.client("s3")
        try:
            answer = client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            # 404 needs s3:ListBucket (without it S3 answers 403 for a missing key): Access.BUCKET_READ grants it.
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise UploadMissing("nothing was uploaded for this reference (or it was removed after its "
                                    "retention)") from None
            raise
        body = answer["Body"]
        return StoredObject(content_type=str(answer.get("ContentType", "")), size=int(answer["ContentLength"]),
                            last_modified=answer["LastModified"], read=body.read, close=body.close)


@dataclass(frozen=True)
class Upload:
    reference: str
    content_type: str  # application/pdf or text/plain; charset=utf-8
    body: bytes


class UploadReader:
    """Reads an upload by its reference for a step, every rule checked again (``docs/finance.md``)."""

    def __init__(self, settings: UploadReadSettings, store: ObjectStore,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    def fetch(self, reference: str) -> Upload:
        key = object_key(reference, self.settings.upload_prefix)
        stored = self.store.open(self.settings.uploads_bucket, key)
        try:
            limit = self.settings.upload_max_bytes
            if stored.size > limit:
                raise UploadTooLarge(f"the upload is {stored.size} bytes; the limit is {limit}")
            age = (self.clock() - stored.last_modified).total_seconds()
            if age > self.settings.upload_retention_days * DAY:
                raise UploadExpired(f"uploaded more than {self.settings.upload_retention_days} days ago")
            content_type = _stored_type(stored.content_type)
            body = stored.read(limit + 1)
        finally:
            stored.close()
        if len(body) > limit:  # the body is longer than its metadata said: never trust one over the other
            raise UploadTooLarge(f"the upload is over the limit of {limit} bytes")
        check_content(content_type, body)
        return Upload(reference=reference, content_type=content_type, body=body)


def _stored_type(value: str) -> str:
    normalised = ";".join(part.strip() for part in value.lower().split(";"))
    for allowed in (PDF, TEXT):
        if normalised == ";".join(part.strip() for part in allowed.split(";")):
            return allowed
    raise UploadWrongType("the upload is neither a PDF nor UTF-8 text")


def check_content(content_type: str, body: bytes) -> None:
    """The bytes are what their type says: a PDF starts with ``%PDF-``; text is UTF-8."""
    if content_type == PDF:
        if not body.startswith(b"%PDF-"):
            raise UploadWrongType("the upload is declared a PDF but does not start with %PDF-")
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadWrongType("the upload is declared UTF-8 text but is not UTF-8") from None


@once_per_process
def upload_reader() -> UploadReader:
    return UploadReader(load(UploadReadSettings), S3ObjectStore())


def fetch_upload(reference: str) -> Upload:
    """The upload ``reference`` names, with its type; raises a named :class:`UploadError` when it cannot be used."""
    return upload_reader().fetch(reference)


def read_upload(reference: str) -> bytes:
    """The bytes of the upload ``reference`` names (size-capped, type-checked, within its retention); raises
    :class:`InvalidUploadReference`, :class:`UploadMissing`, :class:`UploadTooLarge`, :class:`UploadWrongType` or
    :class:`UploadExpired`."""
    return fetch_upload(reference).body


@once_per_process
def uploads_api() -> UploadsApi:
    from interlock.ingest.ports import SecretsManagerWebhookSecrets

    settings = load(UploadApiSettings)
    return UploadsApi(settings, SecretsManagerWebhookSecrets(settings.secret_prefix, settings.secret_cache_seconds),
                      S3Presigner(settings.upload_endpoint_url))
