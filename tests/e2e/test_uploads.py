"""Uploads through the local runtime over real HTTP: the two steps a sender takes (POST /uploads signed with the
form source's secret, then the PUT to the presigned URL), the read-back through the reader a step uses, every
refusal a 4xx, and ``interlock upload``."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from interlock.webhooks.standard import signed_headers

from tests.e2e.conftest import SECRET, Runtime

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + b"% padding\n" * 12_000  # ~120 KB


def presign(rt: Runtime, payload: Any, *, secret: str = SECRET, at: int | None = None,
            headers: dict[str, str] | None = None) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signed = signed_headers(secret, f"msg_{uuid.uuid4().hex}", at or int(time.time()), body)
    return httpx.post(f"{rt.url}/uploads", content=body, timeout=10,
                      headers={"Content-Type": "application/json", **signed, **(headers or {})})


def put(answer: dict[str, Any], body: bytes, *, url: str | None = None, **headers: str) -> httpx.Response:
    return httpx.put(url or answer["url"], content=body, headers={**answer["headers"], **headers}, timeout=10)


def read_back(rt: Runtime, reference: str) -> httpx.Response:
    return httpx.get(f"{rt.url}/_local/uploads/{reference}", timeout=10)


def test_given_a_pdf_larger_than_a_webhook_body_when_uploaded_in_two_steps_then_the_reader_returns_it(
    runtime: Runtime,
) -> None:
    answer = presign(runtime, {"content_type": "application/pdf", "size": len(PDF)})
    assert answer.status_code == 201, answer.text
    grant = answer.json()
    assert grant["upload"].startswith("upload_") and grant["upload"] not in grant["url"]
    assert grant["url"].startswith(f"{runtime.url}/_local/uploads/")
    assert (grant["expires_in"], grant["content_type"], grant["size"]) == (300, "application/pdf", len(PDF))
    assert grant["max_bytes"] >= len(PDF) > 64 * 1024  # more than any webhook body may carry
    stored = put(grant, PDF)
    assert stored.status_code == 200, stored.text
    back = read_back(runtime, grant["upload"])
    assert back.status_code == 200 and back.content == PDF
    assert back.headers["content-type"] == "application/pdf"
    signature = dict(parse_qsl(urlsplit(grant["url"]).query))["X-Amz-Signature"]
    assert signature not in runtime.log_tail(400)  # the URL's credential never reaches the console


def test_given_text_when_uploaded_then_read_back_as_utf8_text(runtime: Runtime) -> None:
    text = "Rechnung 2027-0042\nSumme: 1.234,56 €\n".encode()
    grant = presign(runtime, {"content_type": "text/plain", "size": len(text)}).json()
    assert put(grant, text).status_code == 200
    back = read_back(runtime, grant["upload"])
    assert (back.status_code, back.content, back.headers["content-type"]) == (200, text, "text/plain; charset=utf-8")


def test_given_too_large_or_the_wrong_type_then_refused_at_presign_and_at_the_put(runtime: Runtime) -> None:
    too_large = presign(runtime, {"content_type": "application/pdf", "size": 20 * 1024 * 1024 + 1})
    assert (too_large.status_code, too_large.json()["error"]) == (413, "upload_too_large")
    wrong = presign(runtime, {"content_type": "image/png", "size": 100})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_request")
    grant = presign(runtime, {"content_type": "application/pdf", "size": 100}).json()
    longer = put(grant, PDF[:101], **{"Content-Length": "101"})
    assert longer.status_code == 403 and "SignatureDoesNotMatch" in longer.text
    other_type = put(grant, PDF[:100], **{"Content-Type": "text/html"})
    assert other_type.status_code == 403 and "SignatureDoesNotMatch" in other_type.text
    assert read_back(runtime, grant["upload"]).json()["error"] == "upload_missing"


def test_given_a_pdf_that_is_not_one_when_read_then_wrong_type(runtime: Runtime) -> None:
    fake = b"<html>an invoice, honestly</html>"
    grant = presign(runtime, {"content_type": "application/pdf", "size": len(fake)}).json()
    assert put(grant, fake).status_code == 200  # S3 stores what the URL allows: the reader checks the bytes
    back = read_back(runtime, grant["upload"])
    assert (back.status_code, back.json()["error"]) == (415, "upload_wrong_type")


def _swap(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    return parts._replace(query=urlencode([(k, value if k == name else v) for k, v in parse_qsl(parts.query)])).geturl()


def test_given_a_tampered_url_then_403_and_nothing_stored(runtime: Runtime) -> None:
    grant = presign(runtime, {"content_type": "application/pdf", "size": 100}).json()
    body = PDF[:100]
    key = urlsplit(grant["url"]).path.rsplit("/", 1)[1]
    tampered = [
        _swap(grant["url"], "X-Amz-Expires", "604800"),
        _swap(grant["url"], "X-Amz-Signature", "0" * 64),
        grant["url"].replace(key, key[:-1] + ("A" if key[-1] != "A" else "B")),
        grant["url"].replace("/uploads/", "/elsewhere/", 2),
        grant["url"].split("?")[0],
    ]
    for url in tampered:
        answer = put(grant, body, url=url)
        assert 400 <= answer.status_code < 500, (url, answer.status_code, answer.text)
    assert read_back(runtime, grant["upload"]).status_code == 404


def test_given_an_expired_url_then_403(short_approvals: Runtime) -> None:
    grant = presign(short_approvals, {"content_type": "application/pdf", "size": 100}).json()
    assert grant["expires_in"] == 1
    time.sleep(2.1)  # the URL's one second has passed (a clock the runtime's process does not share)
    answer = put(grant, PDF[:100])
    assert answer.status_code == 403 and "Request has expired" in answer.text
    assert read_back(short_approvals, grant["upload"]).status_code == 404


def test_given_an_unauthenticated_or_stale_request_then_401_and_other_methods_405(runtime: Runtime) -> None:
    payload = {"content_type": "application/pdf", "size": 100}
    unsigned = httpx.post(f"{runtime.url}/uploads", json=payload, timeout=10)
    assert (unsigned.status_code, unsigned.json()["error"]) == (401, "invalid_signature")
    assert presign(runtime, payload, secret="whsec_" + "b3RoZXI=").status_code == 401
    assert presign(runtime, payload, at=int(time.time()) - 3600).status_code == 401
    assert httpx.get(f"{runtime.url}/uploads", timeout=10).status_code == 405
    assert httpx.put(f"{runtime.url}/uploads", content=b"x", timeout=10).status_code == 405


def test_given_the_cli_when_it_uploads_a_file_then_it_prints_the_reference_that_reads_back(
    runtime: Runtime, tmp_path: Any,
) -> None:
    document = tmp_path / "invoice.pdf"
    document.write_bytes(PDF)
    done = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "upload", str(document), "--url", runtime.url, "--state-dir",
         str(runtime.state_dir)], capture_output=True, text=True, timeout=60, env=runtime.env, check=False)
    assert done.returncode == 0, done.stderr
    reference = done.stdout.strip()
    assert reference.startswith("upload_") and f'"upload": "{reference}"' in done.stderr
    assert "X-Amz" not in done.stdout + done.stderr  # the presigned URL is used, never printed
    assert read_back(runtime, reference).content == PDF


# -- fuzz: whatever is sent to the new routes, a 4xx, never a 5xx -------------------------------------------------

SEED = 20261202


def _fuzz_bodies(rng: random.Random) -> list[bytes]:
    return [
        b"", b"{}", b"null", b"[]", b"\xff\xfe", b"[" * 3000, b'{"content_type": "\\ud800", "size": 1}',
        b'{"content_type": "application/pdf", "size": ' + b"9" * 2000 + b"}", b"x" * 5000,
        json.dumps({"content_type": "application/pdf", "size": rng.randint(-10, 0)}).encode(),
        json.dumps({"content_type": rng.choice(["text/html", "", "application/pdf;x", "TEXT/PLAIN"]),
                    "size": rng.randint(1, 10)}).encode(),
        json.dumps({"content_type": "application/pdf", "size": 10, "bucket": "other"}).encode(),
    ]


def test_given_malformed_requests_to_the_upload_routes_then_4xx_never_5xx(runtime: Runtime) -> None:
    rng = random.Random(SEED)
    grant = presign(runtime, {"content_type": "application/pdf", "size": 10}).json()
    path = urlsplit(grant["url"]).path
    failures: list[str] = []
    with httpx.Client(timeout=10) as client:
        for body in _fuzz_bodies(rng):
            for signed in (True, False):
                headers = signed_headers(SECRET, f"msg_{uuid.uuid4().hex}", int(time.time()), body) if signed else {}
                answer = client.post(f"{runtime.url}/uploads", content=body, headers=headers)
                if not 400 <= answer.status_code < 500:
                    failures.append(f"POST /uploads {body[:40]!r} signed={signed}: {answer.status_code}")
        queries = ["", "X-Amz-Signature=", "X-Amz-Algorithm=x&X-Amz-Credential=%00&X-Amz-Date=&X-Amz-Expires=x"
                   "&X-Amz-SignedHeaders=host&X-Amz-Signature=zz", urlsplit(grant["url"]).query + "&extra=%ff",
                   urlsplit(grant["url"]).query.replace("X-Amz-Expires=300", "X-Amz-Expires=99999999999999")]
        paths = [path, "/_local/uploads", "/_local/uploads/", "/_local/uploads/interlock-uploads",
                 "/_local/uploads/nope/uploads/x", "/_local/uploads/interlock-uploads/../etc",
                 "/_local/uploads/%ff%fe", "/_local/uploads/interlock-uploads/uploads/" + "x" * 3000]
        for _ in range(60):
            method = rng.choice(["PUT", "PUT", "GET", "HEAD", "POST", "DELETE", "OPTIONS"])
            target = rng.choice(paths) + ("?" + q if (q := rng.choice(queries)) else "")
            body = rng.choice([b"", b"%PDF-12345", b"\xff" * 10, b"x" * 70_000])
            answer = client.request(method, runtime.url + target, content=body,
                                    headers={"Content-Type": rng.choice(["application/pdf", "text/plain", ""])})
            if not 400 <= answer.status_code < 500:
                failures.append(f"{method} {target[:80]}: {answer.status_code} {answer.text[:80]!r}")
        for reference in ["x", "upload_", "upload_" + "a" * 43, "upload_%00", "%ff", "upload_" + "a" * 5000]:
            answer = client.get(f"{runtime.url}/_local/uploads/{reference}")
            if not 400 <= answer.status_code < 500:
                failures.append(f"GET /_local/uploads/{reference[:40]}: {answer.status_code}")
    assert not failures, "\n".join(failures) + "\n" + runtime.log_tail()
