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
from interlock.webhooks.sources import github, hubspot
from interlock.webhooks.standard import verify

HUBSPOT_SECRET = "hubspot-client-secret"


class Receiver:
    """Plays the ingest function: verifies a form delivery's signature over the raw body and answers like it
    does; answers WhatsApp's GET handshake when the verify token is right. Another provider's delivery is
    answered with the delivery id of its header (GitHub's), or 400 when its body is not JSON; a HubSpot
    delivery is verified, as the runtime does, for the URL ``public_url`` + its path."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        self.events: list[dict[str, Any]] = []
        self.public_url = ""

    def __call__(self, function: str, event: dict[str, Any]) -> Invocation:
        self.events.append(event)
        if event["httpMethod"] == "GET":
            query = event["queryStringParameters"] or {}
            ok = query.get("hub.mode") == "subscribe" and query.get("hub.verify_token") == "let-me-in"
            return Invocation(function, "r", payload={"statusCode": 200 if ok else 403,
                                                      "body": query["hub.challenge"] if ok else "no"})
        headers = {k.lower(): v for k, v in event["headers"].items()}
        if event["path"] != "/webhooks/form" and "x-test-event-id" not in headers:
            return self._provider(function, event["path"], headers, event["body"])
        msg_id = headers.get("x-test-event-id") or verify(self.secrets, headers, event["body"].encode(), time.time())
        body = json.dumps({"run_id": "run-123", "event_id": msg_id, "duplicate": False})
        return Invocation(function, "r", payload={"statusCode": 202, "body": body})

    def _provider(self, function: str, path: str, headers: dict[str, str], body: str) -> Invocation:
        if path == "/webhooks/hubspot":
            expected = hubspot.sign_v3(HUBSPOT_SECRET, "POST", self.public_url + path, body.encode(),
                                       headers.get("x-hubspot-request-timestamp", ""))
            if headers.get("x-hubspot-signature-v3") != expected:
                return Invocation(function, "r", payload={"statusCode": 401, "body": '{"error": "invalid_signature"}'})
        try:
            json.loads(body)
        except ValueError:
            return Invocation(function, "r", payload={"statusCode": 400, "body": '{"error": "invalid_payload"}'})
        answer = {"run_id": "run-123", "event_id": headers.get("x-github-delivery", "from-the-body"),
                  "duplicate": False}
        return Invocation(function, "r", payload={"statusCode": 200, "body": json.dumps(answer)})


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
    received.public_url = gateway.url  # the runtime's INTERLOCK_PUBLIC_BASE_URL: http://127.0.0.1:<port>
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
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB", '{"signing": ["new-secret", "old-secret"]}')
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
    (["send", "form", "nope"], "the samples for 'form' are: invoice_bank_change, invoice_clean, invoice_duplicate, "
                               "invoice_large, invoice_mismatch, invoice_pdf, invoice_scanned, lead_freemail, "
                               "lead_submitted, refund_request, support_ticket"),
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
    (["send", "stripe", "--id", "evt_1"], "'stripe' (stripe) identifies an event in its payload (its id, evt_…), "
                                          "not in a header, so --id does not apply: to send a new event, change "
                                          "that id in a copy of the file"),
    (["send", "slack", "--id", "Ev1"], "'slack' (slack) identifies an event in its payload (its event_id, Ev…)"),
    (["send", "whatsapp", "--id", "wamid.1"], "'whatsapp' (whatsapp) identifies an event in its payload"),
    (["send", "hubspot", "--id", "1"], "'hubspot' (hubspot) identifies an event in its payload (each event's "
                                       "eventId)"),
    (["send", "form", "--id", "msg 1"], "--id is sent in the webhook-id header: use printable ASCII"),
    (["send", "form", "--id", "msg_é"], "--id is sent in the webhook-id header: use printable ASCII"),
    (["send", "form", "--event", "push"], "--event applies to GitHub sources (the X-GitHub-Event header); a "
                                          "standard-webhooks event's type is part of its payload (set it with --type)"),
    (["send", "stripe", "--event", "push"], "--event applies to GitHub sources"),
    (["send", "github", "--event", "is sues"], "--event takes a GitHub event name"),
])
def test_send_explains_what_does_not_apply_to_a_source(argv: list[str], message: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB", "s3cret")
    monkeypatch.setenv("INTERLOCK_SECRET_WHATSAPP", "app-secret")

    assert cli.main([*argv, "--url", f"http://127.0.0.1:{_closed_port()}"]) == 1

    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("interlock: error: ") and err.count("\n") == 1


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


# -- the ids it prints, --event, payloads it cannot sign, HubSpot's URL -----------------------------------------------

PROVIDER_SECRETS = {"INTERLOCK_SECRET_STRIPE": "whsec_s3cret", "INTERLOCK_SECRET_SLACK": "s3cret",
                    "INTERLOCK_SECRET_WHATSAPP": "app-secret", "INTERLOCK_SECRET_HUBSPOT": HUBSPOT_SECRET,
                    "INTERLOCK_SECRET_GITHUB": "s3cret"}


@pytest.fixture
def provider_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PROVIDER_SECRETS.items():
        monkeypatch.setenv(name, value)


def _posted_line(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith("POST ")]
    return line


def test_send_prints_the_webhook_id_it_sends(receiver, tmp_path: Path, capsys) -> None:
    url, received = receiver

    assert cli.main(["send", "form", "--url", url, "--state-dir", str(tmp_path), "--id", "msg_fixed"]) == 0

    assert _posted_line(capsys.readouterr().out) == (
        f"POST {url}/webhooks/form  (standard-webhooks, webhook-id msg_fixed)")
    assert received.events[0]["headers"]["webhook-id"] == "msg_fixed"


def test_send_github_prints_the_delivery_guid_it_sends_not_the_id_it_was_given(
    receiver, provider_secrets, capsys,
) -> None:
    # Given an --id that is not a GUID: GitHub's delivery ids are, so the plug-in sends one made from it
    url, received = receiver

    assert cli.main(["send", "github", "--url", url, "--id", "msg_123"]) == 0

    sent = {k.lower(): v for k, v in received.events[0]["headers"].items()}["x-github-delivery"]
    assert sent == github.delivery_guid("msg_123") != "msg_123"
    out = capsys.readouterr().out
    assert _posted_line(out) == f"POST {url}/webhooks/github  (github, X-GitHub-Delivery {sent})"
    assert "msg_123" not in out


@pytest.mark.parametrize("source", ["stripe", "slack", "whatsapp", "hubspot"])
def test_send_prints_no_id_for_a_provider_whose_ids_are_in_the_payload(
    receiver, provider_secrets, source: str, capsys,
) -> None:
    url, _ = receiver

    assert cli.main(["send", source, "--url", url]) == 0

    out = capsys.readouterr().out
    assert _posted_line(out) == f"POST {url}/webhooks/{source}  ({source})"  # the answer below has the ids
    assert '"event_id": "from-the-body"' in out


def test_send_github_takes_the_event_name_it_cannot_tell_from_the_payload(
    receiver, provider_secrets, tmp_path: Path, capsys,
) -> None:
    # Given a payload with no keys that tell which event it is (a star)
    url, received = receiver
    file = tmp_path / "star.json"
    file.write_bytes(b'{"action": "created", "starred_at": null, "repository": {"id": 1}}')

    # When it is sent without --event: a one-line error that names --event, and nothing is posted
    assert cli.main(["send", "github", str(file), "--url", url]) == 1
    err = capsys.readouterr().err
    assert err == (f"interlock: error: cannot tell which GitHub event {file} is from its top-level keys: pass "
                   "--event NAME, the X-GitHub-Event header GitHub would send (push, issues, pull_request, …)\n")
    assert received.events == []

    # When it is sent with --event: that is the X-GitHub-Event header
    assert cli.main(["send", "github", str(file), "--url", url, "--event", "star"]) == 0
    headers = {k.lower(): v for k, v in received.events[0]["headers"].items()}
    assert headers["x-github-event"] == "star"
    assert received.events[0]["body"] == file.read_text()


def test_send_passes_event_to_the_plug_in_only_when_given(
    receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = receiver
    calls: list[dict[str, Any]] = []

    def sender_headers(secret: str, body: bytes, **kwargs: Any) -> dict[str, str]:
        calls.append(kwargs)
        return {"X-Test-Event-Id": kwargs["event_id"]}

    monkeypatch.setattr(cli, "_scheme_module", lambda scheme: type("Plugin", (), {
        "sender_headers": staticmethod(sender_headers)}))
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB", "s3cret")

    assert cli.main(["send", "github", "--url", url, "--event", "issues"]) == 0
    assert cli.main(["send", "github", "--url", url]) == 0

    assert calls[0]["event"] == "issues" and "event" not in calls[1]


@pytest.mark.parametrize(("content", "message"), [
    (b"ref=refs/heads/main", "is not JSON: Expecting value: line 1 column 1 (char 0); a GitHub payload is a JSON "
                             "object"),
    (b"\xff\xfe\x00{", "is not JSON"),
    (b"[1, 2]", "holds JSON that is not an object; a GitHub payload is a JSON object"),
])
def test_send_github_says_when_a_file_is_not_a_payload_it_can_sign(
    receiver, provider_secrets, tmp_path: Path, content: bytes, message: str, capsys,
) -> None:
    url, received = receiver
    file = tmp_path / "push.txt"
    file.write_bytes(content)

    assert cli.main(["send", "github", str(file), "--url", url]) == 1

    err = capsys.readouterr().err
    assert err.startswith(f"interlock: error: {file} ") and message in err and err.count("\n") == 1
    assert received.events == []


@pytest.mark.parametrize("source", ["form", "stripe", "slack", "whatsapp", "hubspot"])
def test_send_posts_a_file_that_is_not_json_byte_for_byte_and_reports_the_answer(
    receiver, provider_secrets, tmp_path: Path, source: str, capsys,
) -> None:
    # Given a file that is not JSON: signing it needs no parsing, so it is the runtime's to refuse
    url, received = receiver
    file = tmp_path / "note.txt"
    file.write_bytes(b"not json at all")

    status = cli.main(["send", source, str(file), "--url", url, "--state-dir", str(tmp_path)])

    out = capsys.readouterr().out
    assert received.events[0]["body"] == "not json at all"
    if source == "form":  # (the form receiver here verifies the signature only)
        assert status == 0 and "-> 202 Accepted" in out
    else:
        assert status == 1 and "-> 400 Bad Request" in out and "invalid_payload" in out


def test_send_says_when_it_cannot_read_a_file(
    receiver, provider_secrets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
) -> None:
    url, _ = receiver
    file = tmp_path / "stripe.json"
    file.write_bytes(b"{}")

    def unreadable(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", unreadable)

    assert cli.main(["send", "stripe", str(file), "--url", url]) == 1

    assert capsys.readouterr().err == f"interlock: error: cannot read {file}: Permission denied\n"


def test_send_says_when_the_url_is_not_one(provider_secrets, capsys) -> None:
    assert cli.main(["send", "stripe", "--url", "http://127.0.0.1:port"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("interlock: error: http://127.0.0.1:port is not a URL Interlock can be reached at")
    assert err.count("\n") == 1


def test_send_hubspot_explains_a_401_by_the_url_it_signed(receiver, provider_secrets, capsys) -> None:
    # Given the runtime verifies HubSpot's v3 signature for its own public URL, http://127.0.0.1:<port>
    url, _ = receiver
    elsewhere = url.replace("127.0.0.1", "localhost")

    # When the CLI posts to (and so signs) another URL of the same runtime: 401, and a hint says why
    assert cli.main(["send", "hubspot", "--url", elsewhere]) == 1
    out = capsys.readouterr().out
    assert "-> 401 Unauthorized" in out
    assert out.rstrip().splitlines()[-1] == (
        f"HubSpot signs the URL it calls ({elsewhere}/webhooks/hubspot): it must be exactly the runtime's "
        "public URL (INTERLOCK_PUBLIC_BASE_URL, locally http://127.0.0.1:<port>) + /webhooks/<source>.")

    # When it posts to the public URL itself: accepted, no hint
    assert cli.main(["send", "hubspot", "--url", url]) == 0
    assert "HubSpot signs the URL" not in capsys.readouterr().out


# -- interlock run's console logging -------------------------------------------------------------------------


def test_run_logs_one_escaped_line_per_record_with_the_wire_loggers_held_even_at_debug(monkeypatch) -> None:
    import io
    import logging

    monkeypatch.setenv("INTERLOCK_LOG_LEVEL", "DEBUG")
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        cli._configure_logging()
        (console,) = [h for h in root.handlers if h not in handlers]
        stream = io.StringIO()
        console.setStream(stream)  # type: ignore[attr-defined]

        logging.getLogger("localcloud.functions").warning("interlock-x raised ValueError: %s",
                                                          "subject\x1b[2J\r\nFAKE line")
        logging.getLogger("botocore.endpoint").debug("Response body: %s", "whsec_topsecret")
        logging.getLogger("httpx").info("HTTP Request: POST https://crm.example.com/accounts/search")
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith("WARNING localcloud.functions: interlock-x raised ValueError: "
                             "subject\\x1b[2J\\r\\nFAKE line")


def test_send_text_makes_a_new_whatsapp_message_of_the_sample_each_time() -> None:
    first = json.loads(cli._message_body("whatsapp", "Where is SO-10042?", None))
    second = json.loads(cli._message_body("whatsapp", "thanks", "14155550100"))
    (change,) = first["entry"][0]["changes"]  # the sample's status change is left out: one message
    (message,) = change["value"]["messages"]
    assert (message["from"], message["type"], message["text"]) == ("447700900123", "text",
                                                                     {"body": "Where is SO-10042?"})
    assert abs(int(message["timestamp"]) - time.time()) < 5
    other = second["entry"][0]["changes"][0]["value"]
    assert other["messages"][0]["from"] == other["contacts"][0]["wa_id"] == "14155550100"
    assert other["messages"][0]["id"] != message["id"]


def test_send_text_makes_a_slack_mention_of_the_app() -> None:
    body = json.loads(cli._message_body("slack", "hi there", "U0ADA0001"))
    assert body["event"]["text"] == "<@U0LAN0Z89> hi there" and body["event"]["user"] == "U0ADA0001"
    assert body["event"]["ts"] == body["event"]["event_ts"] and body["event_id"].startswith("Ev")


@pytest.mark.parametrize(("argv", "message"), [
    (["send", "stripe", "--text", "hi"], "--text makes a WhatsApp or Slack message; a stripe event is sent from"),
    (["send", "whatsapp", "--text", ""], "--text is 1 to 4096 characters"),
    (["send", "whatsapp", "--text", "hi", "--from", "+44 7700"], "--from is a wa_id (the phone number in digits"),
    (["send", "slack", "--text", "hi", "--from", "bob"], "--from is a Slack user id (U…), not 'bob'"),
    (["send", "whatsapp", "--from", "447700900123"], "--from goes with --text"),
    (["send", "whatsapp", "some.json", "--text", "hi"], "--text makes the message itself: give it or a file"),
])
def test_send_text_explains_what_is_wrong(argv: list[str], message: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_WHATSAPP", "app-secret")
    monkeypatch.setenv("INTERLOCK_SECRET_STRIPE", "whsec_x")
    monkeypatch.setenv("INTERLOCK_SECRET_SLACK", "slack-secret")

    assert cli.main([*argv, "--url", f"http://127.0.0.1:{_closed_port()}"]) == 1

    assert message in capsys.readouterr().err
