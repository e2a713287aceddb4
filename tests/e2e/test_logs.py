"""At INTERLOCK_LOG_LEVEL=DEBUG, the runtime's log holds no customer address, approval token or webhook secret.

The runtime's console shares the log file: its banner shows the webhook secrets and its outbox lines show the
approval links, deliberately (they are for the person at the laptop). Those lines are taken out first, and the
test checks that they were there, so that what remains is every log record the runtime wrote.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import httpx
import pytest
from interlock import cli

from tests.e2e.conftest import SECRET, Runtime, _start, accepted, ticket


@pytest.fixture(scope="module")
def debug_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A runtime whose every logger is at DEBUG (root, Powertools' and the local cloud's)."""
    yield from _start(tmp_path_factory.mktemp("debug"), INTERLOCK_LOG_LEVEL="DEBUG")


def _without_console(text: str) -> tuple[str, list[str]]:
    """The log with the console's own blocks (the banner, each outbox announcement) cut out, and those blocks."""
    kept: list[str] = []
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("Interlock is running on the embedded local cloud"):
            end = next(j for j in range(i, len(lines)) if "(its provider's sample" in lines[j])
            blocks.append("\n".join(lines[i:end + 1]))
            i = end + 1
            continue
        if line.startswith("Approval email to "):
            end = i + 1
            while end < len(lines) and lines[end].startswith("  "):
                end += 1
            blocks.append("\n".join(lines[i:end]))
            i = end
            continue
        kept.append(line)
        i += 1
    return "\n".join(kept), blocks


def _spellings(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}


def test_given_debug_logging_when_tickets_call_the_crm_and_ask_for_approval_then_the_log_holds_none_of_it(
    debug_runtime: Runtime,
) -> None:
    runtime = debug_runtime
    refund = json.loads(cli._scheme_samples("standard-webhooks")["refund_request"].read_text())
    unknown = f"nobody-{uuid.uuid4().hex[:12]}@example.net"
    lookup = ticket("Invoice question", "Why was I charged twice on my last invoice?", customer_email=unknown)

    # When a ticket that needs approval (its customer is in the CRM) and one whose customer is not are sent
    refund_run = accepted(runtime.send(refund))[0]["run_id"]
    lookup_run = accepted(runtime.send(lookup))[0]["run_id"]
    waiting = runtime.wait_status(refund_run, "pending_approval")
    runtime.wait_for(lookup_run, lambda r: any(e["step"] == "fetch_account" for e in r["timeline"]),
                     what="the CRM lookup")
    # ... and the approver opens the emailed link and approves
    link = runtime.approval_link(refund_run)
    token = link.rsplit("/", 1)[1]
    assert httpx.get(link, timeout=10).status_code == 200
    assert httpx.post(link, data={"decision": "approve"}, timeout=10).status_code == 200
    runtime.wait_status(refund_run, "completed")

    # Then the log records (the console's banner and announcements aside) hold no address, token or secret
    logs, console = _without_console(runtime.log_path.read_text(errors="replace"))
    assert any(SECRET in block for block in console) and any(token in block for block in console)
    customer = refund["data"]["customer_email"]
    assert customer in json.dumps(waiting)  # the run itself has it: only the logs must not
    leaked = sorted(form for secret in (customer, unknown, token, SECRET) for form in _spellings(secret)
                    if form in logs)
    assert leaked == [], _context(logs, leaked)
    # ... and they were there to be read: DEBUG records of Interlock's own and of the local cloud's
    assert '"level":"DEBUG"' in logs or " DEBUG " in logs
    assert "webhook_ingest" in logs


def _context(logs: str, leaked: list[str]) -> str:
    out = []
    for form in leaked:
        for match in re.finditer(re.escape(form), logs):
            out.append(logs[max(0, match.start() - 300):match.end() + 100])
            break
    return "\n---\n".join(out)


def test_given_a_source_name_with_control_characters_when_it_is_logged_then_every_line_shows_them_escaped(
    debug_runtime: Runtime,
) -> None:
    # Given a request whose source name (outsider text: a path segment) holds a terminal escape, a C1 control and a
    # bidi override. (An event type like it is refused before anything logs it: docs/input-limits.md.)
    hostile = "form\x1b[2J\x9b31m\u202eevil"

    # When it is posted (no source has such a name: 404), and the gateway's console line logs it
    answer = httpx.post(f"{debug_runtime.url}/webhooks/{quote(hostile, safe='')}", content=b"{}", timeout=10)
    assert answer.status_code == 404

    # Then the log holds it only escaped, every character of it (JSON lines: tests/unit/test_log_safety.py)
    logs = debug_runtime.log_path.read_text(errors="replace")
    assert "\x1b" not in logs and "\x9b" not in logs and "\u202e" not in logs
    assert "POST /webhooks/form\\x1b[2J\\x9b31m\\u202eevil -> 404" in logs


def test_the_banner_s_send_command_works_as_printed(debug_runtime: Runtime) -> None:
    # Given the command the banner prints (run from another terminal, whose PATH need not hold `interlock`)
    banner = debug_runtime.log_path.read_text(errors="replace")
    try_it = next(line for line in banner.splitlines() if line.startswith("Try it:"))
    command = try_it.removeprefix("Try it:").split("(Ctrl-C stops)")[0].strip()
    environ = {**debug_runtime.env, "PATH": "/usr/bin:/bin"}
    environ.pop("VIRTUAL_ENV", None)

    # When it is run as printed
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, env=environ, timeout=60)

    # Then it signs and posts the sample, which the runtime accepts
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert "-> 202 Accepted" in done.stdout
