"""End-to-end fixtures: the real ``interlock run`` in a subprocess, driven over real HTTP.

Each runtime gets its own free port, state directory (secrets + outbox) and settings, so tests that
need short approval windows don't slow the others down. ``Runtime.send_as`` signs a delivery the way the
source's provider does (its plug-in's ``sender_headers``), with the secret the runtime holds for it.
"""

from __future__ import annotations

import base64
import email
import importlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from email import policy
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from interlock.local.secrets import env_var, generate, lookup
from interlock.topology import TOPOLOGY
from interlock.webhooks.base import SourceSecrets
from interlock.webhooks.registry import SCHEMES
from interlock.webhooks.standard import signed_headers

pytestmark = pytest.mark.e2e

SECRET = "whsec_" + base64.b64encode(b"interlock-e2e-secret-0123456789").decode()
STARTUP_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Further sources declared by configuration (INTERLOCK_EXTRA_WEBHOOK_SOURCES), in the `narrowed` runtime
EXTRA_SOURCES = "typeform=standard-webhooks,billing=stripe"
_SOURCES = TOPOLOGY.with_extra_webhook_sources(EXTRA_SOURCES)


def scheme_of(source: str) -> str:
    return _SOURCES.webhook_source(source).scheme


def plugin(source: str) -> Any:
    """The source's plug-in module (``interlock.webhooks.sources.<scheme>``)."""
    return importlib.import_module(f"interlock.webhooks.sources.{SCHEMES[scheme_of(source)]}")


def sample(source: str) -> bytes:
    """The provider's bundled sample, ``interlock/samples/<scheme>.json``, byte for byte."""
    return (resources.files("interlock") / "samples" / f"{scheme_of(source)}.json").read_bytes()


@dataclass
class Runtime:
    url: str
    state_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    # -- webhooks ----------------------------------------------------------------------------------------

    def send(
        self,
        payload: dict[str, Any] | bytes,
        *,
        msg_id: str | None = None,
        timestamp: int | None = None,
        secret: str = SECRET,
        source: str = "form",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        signed = signed_headers(secret, msg_id, timestamp or int(time.time()), body)
        return httpx.post(
            f"{self.url}/webhooks/{source}",
            content=body,
            headers={"content-type": "application/json", **signed, **(headers or {})},
            timeout=10,
        )

    def secrets(self, source: str) -> SourceSecrets:
        """The secret the runtime holds for ``source``: from its environment, else its secrets.json."""
        found = lookup(self.state_dir, source, scheme_of(source), environ=self.env)
        assert found, f"the runtime has no secret for {source}"
        return found

    def send_as(
        self,
        source: str,
        body: bytes,
        *,
        event_id: str | None = None,
        now: int | None = None,
        secret: str | None = None,
        url: str | None = None,
        sent_body: bytes | None = None,
        headers: dict[str, str] | None = None,
        without: Collection[str] = (),
        names: Callable[[str], str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` to ``/webhooks/<source>`` signed as the provider signs it, with the runtime's secret.

        ``url`` signs for another URL than the one posted to; ``sent_body`` posts other bytes than the ones
        signed (a tamper); ``headers`` are added last; the headers named in ``without`` are left out (each must
        be one the provider sends); ``names`` rewrites every header name (``str.upper``): httpx sends names
        exactly as given.
        """
        endpoint = f"{self.url}/webhooks/{source}"
        signed = plugin(source).sender_headers(
            secret if secret is not None else self.secrets(source).signing[0], body,
            now=now if now is not None else int(time.time()), event_id=event_id or str(uuid.uuid4()),
            url=url or endpoint)
        request_headers = httpx.Headers(signed)
        request_headers.setdefault("content-type", "application/json")
        request_headers.update(headers or {})
        for name in without:
            del request_headers[name]  # KeyError if the provider does not send it: the test would prove nothing
        if names is not None:
            request_headers = httpx.Headers([(names(k.decode()), v.decode()) for k, v in request_headers.raw])
        return httpx.post(endpoint, content=body if sent_body is None else sent_body, headers=request_headers,
                          timeout=10)

    def run(self, run_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/runs/{run_id}", timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_for(self, run_id: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 45.0,
                 what: str = "condition") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.run(run_id)
            if predicate(last):
                return last
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} never reached {what}; last seen:\n{json.dumps(last, indent=2)}\n"
                             f"runtime log tail:\n{self.log_tail()}")

    def wait_status(self, run_id: str, status: str, timeout: float = 45.0) -> dict[str, Any]:
        return self.wait_for(run_id, lambda r: r["status"] == status, timeout, f"status {status!r}")

    # -- approvals ---------------------------------------------------------------------------------------

    def emails(self) -> list[email.message.EmailMessage]:
        outbox = self.state_dir / "outbox"
        if not outbox.exists():
            return []
        return [
            email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for p in sorted(outbox.glob("*.eml"))
        ]

    def wait_emails(self, matches: Callable[[email.message.EmailMessage], bool], count: int,
                    timeout: float = 15.0) -> list[email.message.EmailMessage]:
        """The outbox's emails that ``matches`` accepts, once there are ``count`` of them (the outbox copies
        what SES sent a moment after the step that sent it has written its entry)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.emails() if matches(m)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def approval_links(self, run_id: str) -> list[tuple[str, str]]:
        """(to, link) of every approval email for ``run_id`` in the outbox, oldest first."""
        found = []
        for message in self.emails():
            text = message.get_body(preferencelist=("plain",))
            content = text.get_content() if text else ""  # decoded: parts may be base64 on the wire
            if f"Run: {run_id}" in content:
                match = re.search(r"https?://\S+/approvals/[A-Za-z0-9_-]+", content)
                assert match, content
                found.append((str(message["To"]), match.group(0)))
        return found

    def approval_link(self, run_id: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if links := self.approval_links(run_id):
                return links[0][1]
            time.sleep(0.2)
        raise AssertionError(f"no approval email for run {run_id}; outbox has {len(self.emails())} emails")

    def approval_email(self, run_id: str, timeout: float = 30.0) -> str:
        """The plain-text body of the approval email for ``run_id`` (decoded), once it is in the outbox."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.emails():
                text = message.get_body(preferencelist=("plain",))
                content = text.get_content() if text else ""
                if f"Run: {run_id}" in content:
                    return str(content)
            time.sleep(0.2)
        raise AssertionError(f"no approval email for run {run_id}; outbox has {len(self.emails())} emails")

    def replies(self, run_id: str) -> list[dict[str, Any]]:
        """What the local helpdesk fake received for ``run_id`` (the replies sent to the customer)."""
        replies = httpx.get(f"{self.url}/_local/helpdesk/replies", timeout=10).json()["replies"]
        return [r for r in replies if r["run_id"] == run_id]

    # -- restarts ----------------------------------------------------------------------------------------

    def restart(self, crash: bool = False) -> None:
        """Stop ``interlock run`` as Ctrl-C does (or kill it, ``crash``), then start it again on the same port
        and state directory (so the links already emailed point at it)."""
        self.process.send_signal(signal.SIGKILL if crash else signal.SIGINT)
        self.process.wait(timeout=30)
        if not crash:
            assert self.process.returncode == 0, f"interlock run exited {self.process.returncode}:\n{self.log_tail()}"
        with self.log_path.open("ab") as log:
            self.process = _spawn(self.env, log)
        _wait_until_answering(self)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _start(tmp: Path, **settings: str) -> Iterator[Runtime]:
    port = _free_port()
    state_dir = tmp / "state"
    log_path = tmp / "runtime.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env.update({
        "INTERLOCK_PORT": str(port),
        "INTERLOCK_STATE_DIR": str(state_dir),
        "INTERLOCK_SECRET_FORM": SECRET,
        "INTERLOCK_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **settings,
    })
    log = log_path.open("wb")
    process = _spawn(env, log)
    runtime = Runtime(url=f"http://127.0.0.1:{port}", state_dir=state_dir, process=process, log_path=log_path,
                      env=env)
    _wait_until_answering(runtime)
    try:
        yield runtime
    finally:
        runtime.process.send_signal(signal.SIGINT)
        try:
            runtime.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            runtime.process.kill()
            runtime.process.wait()
        log.close()


def _spawn(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    """``interlock run`` on the port and state directory of ``env``."""
    return subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", "run", "--port", env["INTERLOCK_PORT"],
         "--state-dir", env["INTERLOCK_STATE_DIR"]],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )


def _wait_until_answering(runtime: Runtime) -> None:
    process = runtime.process
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"interlock run exited with {process.returncode}:\n{runtime.log_tail()}")
        try:
            if httpx.get(f"{runtime.url}/runs/not-a-run", timeout=1).status_code == 404:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"interlock run did not answer within {STARTUP_TIMEOUT}s:\n{runtime.log_tail()}")
        time.sleep(0.2)


ASSISTANT_DEBOUNCE = "1"


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """The default runtime: default settings, approval windows of hours; the assistant's debounce 1 s instead of 3
    (a test's burst is sent well within it, and each of its turns waits that long)."""
    yield from _start(tmp_path_factory.mktemp("runtime"), INTERLOCK_ASSISTANT_DEBOUNCE_SECONDS=ASSISTANT_DEBOUNCE)


@pytest.fixture(scope="session")
def narrowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """Two further sources declared by configuration (typeform, billing); only form, stripe, github and typeform
    accepted; github deliberately given no secret."""
    yield from _start(
        tmp_path_factory.mktemp("narrowed"),
        INTERLOCK_EXTRA_WEBHOOK_SOURCES=EXTRA_SOURCES,
        INTERLOCK_ENABLED_SOURCES="form,stripe,github,typeform",
        INTERLOCK_SECRET_GITHUB="",
    )


# Sources whose several signing secrets are given as JSON {"signing": [...]}: GitHub's secrets are free text
# (spaces and all), so spacing cannot separate them; WhatsApp's secret also holds its verify token.
_JSON_SECRETS = {"github", "whatsapp"}


def _rotating_secret(source: str) -> str:
    """``INTERLOCK_SECRET_<SOURCE>`` mid-rotation: an old and a new signing secret, each shaped like the
    provider's (``generate``), as the source's Secrets Manager secret holds them."""
    old, new = (generate(scheme_of(source)) for _ in range(2))
    if source in _JSON_SECRETS:
        return json.dumps({"signing": [*old.signing, *new.signing], **new.extras})
    return " ".join([*old.signing, *new.signing])


ROTATING = ("form", "stripe", "slack", "whatsapp", "hubspot", "github")


@pytest.fixture(scope="session")
def rotating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """Every source mid-rotation: its secret holds two signing secrets, old and new
    (``rotating.secrets(source).signing``), and a delivery signed with either verifies."""
    yield from _start(tmp_path_factory.mktemp("rotating"),
                      **{env_var(source): _rotating_secret(source) for source in ROTATING})


@pytest.fixture(scope="session")
def short_approvals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """Approval links that expire after 2 s, and a workflow that escalates after the same 2 s without a decision
    (a link may not expire before the wait ends); presigned upload URLs that expire after 1 s."""
    yield from _start(
        tmp_path_factory.mktemp("short"),
        INTERLOCK_APPROVAL_TTL_SECONDS="2",
        INTERLOCK_APPROVAL_TIMEOUT_SECONDS="2",
        INTERLOCK_UPLOAD_URL_TTL_SECONDS="1",
    )


def ticket(subject: str, body: str, customer_email: str = "ada@example.com", **extra: Any) -> dict[str, Any]:
    return {
        "type": "support.ticket",
        "timestamp": "2026-11-22T10:00:00Z",
        "data": {"subject": subject, "body": body, "customer_email": customer_email, **extra},
    }


LOW_RISK = ticket("Invoice question", "I was charged twice on my last invoice, can you check the payment?")
NEEDS_APPROVAL = ticket("Refund request", "Please refund my last payment, I cancelled before renewal.")


def states(run: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["state"], e["step"]) for e in run["timeline"]]


def accepted(response: httpx.Response) -> list[dict[str, Any]]:
    """What an accepted delivery answered for each event it carried (one, or ``{"events": [...]}``)."""
    assert response.is_success, f"{response.status_code} {response.text}"
    answer = response.json()
    events: list[dict[str, Any]] = answer.get("events", [answer])
    return events
