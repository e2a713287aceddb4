"""``interlock send``: signs as the source's provider would (with its plug-in's ``sender_headers``), and
says clearly what went wrong."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interlock import cli
from interlock.local.functions import Invocation
from interlock.local.gateway import Gateway
from interlock.local.secrets import env_var, load_or_create
from interlock.topology import TOPOLOGY
from interlock.webhooks.standard import verify


class Receiver:
    """Plays the ingest function: verifies a form delivery's signature over the raw body and answers like it
    does; answers WhatsApp's GET handshake when the verify token is right."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        self.events: list[dict[str, Any]] = []

    def __call__(self, function: str, event: dict[str, Any]) -> Invocation:
        self.events.append(event)
        if event["httpMethod"] == "GET":
            query = event["queryStringParameters"] or {}
            ok = query.get("hub.mode") == "subscribe" and query.get("hub.verify_token") == "let-me-in"
            return Invocation(function, "r", payload={"statusCode": 200 if ok else 403,
                                                      "body": query["hub.challenge"] if ok else "no"})
        headers = {k.lower(): v for k, v in event["headers"].items()}
        msg_id = headers.get("x-test-event-id") or verify(self.secrets, headers, event["body"].encode(), time.time())
        body = json.dumps({"run_id": "run-123", "event_id": msg_id, "duplicate": False})
        return Invocation(function, "r", payload={"statusCode": 202, "body": body})


class FakePlugin:
    """A provider's plug-in module, as far as ``interlock send`` uses one."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def sender_headers(self, secret: str, body: bytes, *, now: int, event_id: str, url: str = "") -> dict[str, str]:
        self.calls.append({"secret": secret, "body": body, "now": now, "event_id": event_id, "url": url})
        return {"X-Test-Signature": f"signed-with-{secret}", "X-Test-Event-Id": event_id}


@pytest.fixture(autouse=True)
def _no_interlock_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [env_var(s.name) for s in TOPOLOGY.webhook_sources] + ["INTERLOCK_URL", "INTERLOCK_PORT",
                                                                         "INTERLOCK_STATE_DIR"]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    secrets = load_or_create(tmp_path, {"form": "standard-webhooks"}, environ={})["form"].signing
    gateway = Gateway(TOPOLOGY, port=0)
    received = Receiver(secrets)
    gateway.start(received)
    yield gateway.url, received
    gateway.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_send_signs_a_sample_that_the_receiver_verifies(receiver, tmp_path: Path, capsys) -> None:
    url, received = receiver

    status = cli.main(["send", "form", "refund_request", "--url", url, "--state-dir", str(tmp_path),
                       "--id", "msg_fixed", "--type", "support.refund"])

    assert status == 0
    out = capsys.readouterr().out
    assert "-> 202 Accepted" in out
    assert f"curl -s {url}/runs/run-123" in out
    event = received.events[0]
    assert event["path"] == "/webhooks/form"
    assert event["headers"]["webhook-id"] == "msg_fixed"
    payload = json.loads(event["body"])
    assert payload["type"] == "support.refund"
    assert payload["data"]["customer_email"] == "grace@example.com"


def test_send_posts_a_file_byte_for_byte(receiver, tmp_path: Path) -> None:
    url, received = receiver
    file = tmp_path / "mine.json"
    file.write_bytes(b'{"type": "support.ticket",   "data": {}}')

    assert cli.main(["send", "form", str(file), "--url", url, "--state-dir", str(tmp_path)]) == 0
    assert cli.main(["send", str(file), "--url", url, "--state-dir", str(tmp_path)]) == 0

    assert [e["body"] for e in received.events] == ['{"type": "support.ticket",   "data": {}}'] * 2


def test_send_with_only_a_sample_name_uses_the_default_source(receiver, tmp_path: Path) -> None:
    url, received = receiver

    assert cli.main(["send", "refund_request", "--url", url, "--state-dir", str(tmp_path)]) == 0

    assert received.events[0]["path"] == "/webhooks/form"
    assert json.loads(received.events[0]["body"])["data"]["customer_email"] == "grace@example.com"


def test_send_signs_with_the_providers_plug_in_for_the_url_it_posts_to(
    receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
) -> None:
    url, received = receiver
    plugin = FakePlugin()
    monkeypatch.setattr(cli, "_scheme_module", lambda scheme: plugin if scheme == "github" else None)
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB", "new-secret old-secret")
    file = tmp_path / "push.json"
    file.write_bytes(b'{"ref": "refs/heads/main"}')

    status = cli.main(["send", "github", str(file), "--url", url, "--state-dir", str(tmp_path), "--id", "d-1"])

    assert status == 0, capsys.readouterr()
    (call,) = plugin.calls
    assert call["secret"] == "new-secret"  # the first of a rotation's secrets
    assert call["body"] == file.read_bytes()
    assert call["url"] == f"{url}/webhooks/github"
    assert call["event_id"] == "d-1" and abs(call["now"] - time.time()) < 5
    event = received.events[0]
    assert event["path"] == "/webhooks/github" and event["body"] == file.read_text()
    assert event["headers"]["X-Test-Signature"] == "signed-with-new-secret"
    assert event["headers"]["Content-Type"] == "application/json"


def test_send_signs_whatsapp_with_the_app_secret_of_its_json_secret(
    receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = receiver
    plugin = FakePlugin()
    monkeypatch.setattr(cli, "_scheme_module", lambda scheme: plugin)
    monkeypatch.setenv("INTERLOCK_SECRET_WHATSAPP", '{"signing": ["app-secret"], "verify_token": "let-me-in"}')
    file = tmp_path / "message.json"
    file.write_bytes(b'{"object": "whatsapp_business_account", "entry": []}')

    assert cli.main(["send", "whatsapp", str(file), "--url", url]) == 0

    assert plugin.calls[0]["secret"] == "app-secret"


def test_send_handshake_makes_metas_get_verification_with_the_stored_verify_token(
    receiver, monkeypatch: pytest.MonkeyPatch, capsys,
) -> None:
    url, received = receiver
    monkeypatch.setenv("INTERLOCK_SECRET_WHATSAPP", '{"signing": ["app-secret"], "verify_token": "let-me-in"}')

    assert cli.main(["send", "whatsapp", "--handshake", "--url", url]) == 0
    assert "The challenge came back" in capsys.readouterr().out
    event = received.events[0]
    assert (event["httpMethod"], event["path"]) == ("GET", "/webhooks/whatsapp")
    assert event["queryStringParameters"]["hub.verify_token"] == "let-me-in"

    monkeypatch.setenv("INTERLOCK_SECRET_WHATSAPP", '{"signing": ["app-secret"], "verify_token": "wrong"}')
    assert cli.main(["send", "whatsapp", "--handshake", "--url", url]) == 1
    assert "-> 403" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["send", "pigeon"], "unknown webhook source 'pigeon'; the sources are: form, stripe, slack, whatsapp, "
                         "hubspot, github"),
    (["send", "form", "nope"], "the samples for 'form' are: refund_request, support_ticket"),
    (["send", "form"], "no webhook secret for 'form': set INTERLOCK_SECRET_FORM"),
    (["send", "stripe"], "no webhook secret for 'stripe': set INTERLOCK_SECRET_STRIPE"),
])
def test_send_explains_what_is_wrong(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert cli.main([*argv, "--state-dir", str(tmp_path / "empty")]) == 1

    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["send", "github", "--type", "push"], "--type applies to Standard Webhooks sources"),
    (["send", "github", "--handshake"], "'github' (github) has no GET handshake"),
    (["send", "whatsapp", "--handshake"], "has no verify_token"),
])
def test_send_explains_what_does_not_apply_to_a_source(argv: list[str], message: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB", "s3cret")
    monkeypatch.setenv("INTERLOCK_SECRET_WHATSAPP", "app-secret")

    assert cli.main([*argv, "--url", f"http://127.0.0.1:{_closed_port()}"]) == 1

    assert message in capsys.readouterr().err


def test_send_says_when_nothing_is_running(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_FORM", "whsec_" + "A" * 32)

    status = cli.main(["send", "--url", f"http://127.0.0.1:{_closed_port()}"])

    assert status == 1
    assert "is Interlock running? Start it with `interlock run`" in capsys.readouterr().err


@pytest.mark.parametrize("source", [s.name for s in TOPOLOGY.webhook_sources])
def test_send_imports_neither_moto_nor_boto3(tmp_path: Path, source: str) -> None:
    """Signing with any provider's plug-in stays light. (Powertools, which some plug-ins log with, imports
    the bare ``botocore`` package for its user agent, about a millisecond; no session or client loads.)"""
    code = (
        "import sys\nfrom interlock import cli\n"
        f"cli.main(['send', '{source}', '--url', 'http://127.0.0.1:{_closed_port()}'])\n"
        "print(sorted(m for m in ('moto', 'boto3', 'botocore.session', 'botocore.client', 'httpx') "
        "if m in sys.modules))\n"
    )
    env = {"INTERLOCK_SECRET_FORM": "whsec_" + "A" * 32, "PATH": "",
           **{env_var(s.name): "s3cret" for s in TOPOLOGY.webhook_sources if s.name != "form"}}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30,
                          cwd=tmp_path, check=False)

    assert "is Interlock running?" in done.stderr, done.stderr  # it signed, then found nothing to post to
    assert done.stdout.strip().splitlines()[-1] == "['httpx']", done.stderr
