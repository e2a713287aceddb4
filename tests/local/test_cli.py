"""``interlock send``: signs as a Standard Webhooks sender would, and says clearly what went wrong."""

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
from interlock.local.secrets import load_or_create
from interlock.topology import TOPOLOGY
from interlock.webhooks.standard import verify


class Receiver:
    """Plays the ingest function: verifies the signature over the raw body and answers like it does."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.events: list[dict[str, Any]] = []

    def __call__(self, function: str, event: dict[str, Any]) -> Invocation:
        self.events.append(event)
        headers = {k.lower(): v for k, v in event["headers"].items()}
        msg_id = verify(self.secrets, headers, event["body"].encode(), time.time())
        body = json.dumps({"run_id": "run-123", "event_id": msg_id, "duplicate": False})
        return Invocation(function, "r", payload={"statusCode": 202, "body": body})


@pytest.fixture(autouse=True)
def _no_interlock_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTERLOCK_SECRET_FORM", "INTERLOCK_URL", "INTERLOCK_PORT", "INTERLOCK_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    secrets = load_or_create(tmp_path, ["form"], environ={})["form"]
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


@pytest.mark.parametrize(("argv", "message"), [
    (["send", "stripe"], "unknown webhook source 'stripe'"),
    (["send", "form", "nope"], "the samples for 'form' are: refund_request, support_ticket"),
    (["send", "form"], "no webhook secret for 'form': set INTERLOCK_SECRET_FORM"),
])
def test_send_explains_what_is_wrong(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert cli.main([*argv, "--state-dir", str(tmp_path / "empty")]) == 1

    assert message in capsys.readouterr().err


def test_send_says_when_nothing_is_running(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_FORM", "whsec_" + "A" * 32)

    status = cli.main(["send", "--url", f"http://127.0.0.1:{_closed_port()}"])

    assert status == 1
    assert "is Interlock running? Start it with `interlock run`" in capsys.readouterr().err


def test_send_imports_neither_moto_nor_boto3(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom interlock import cli\n"
        f"cli.main(['send', '--url', 'http://127.0.0.1:{_closed_port()}'])\n"
        "print(sorted(m for m in ('moto', 'boto3', 'botocore') if m in sys.modules))\n"
    )
    env = {"INTERLOCK_SECRET_FORM": "whsec_" + "A" * 32, "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30,
                          cwd=tmp_path, check=False)

    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr
