"""The operator's lists and the CLI that reads them, through the local runtime over real HTTP: GET /runs (filters,
cursor), GET /approvals, ``interlock runs | show | approvals``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.conftest import Runtime, ticket


def cli(runtime: Runtime, *args: str, columns: int = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "INTERLOCK_URL": runtime.url}
    env.pop("INTERLOCK_SIGV4_REGION", None)
    return subprocess.run([sys.executable, "-m", "interlock.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def listed(runtime: Runtime, path: str, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{runtime.url}{path}", params=params, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_given_tickets_when_listed_then_filters_cursor_and_the_approvals_waiting_are_right(runtime: Runtime) -> None:
    marker = f"zq{uuid.uuid4().hex[:10]}"
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    quick = [runtime.send(ticket(f"Invoice question {marker} {i}", "I was charged twice on my last invoice, can you "
                                 "check the payment?", customer_email=f"ops{i}@{marker}.example")).json()["run_id"]
             for i in range(3)]
    refund = runtime.send(ticket(f"Refund request {marker}", "Please refund my last payment, I cancelled before "
                                 "renewal.", customer_email=f"ana@{marker}.example")).json()["run_id"]
    for run_id in quick:
        runtime.wait_status(run_id, "completed")
    runtime.wait_status(refund, "pending_approval")

    everything = listed(runtime, "/runs", q=marker)
    assert [r["run_id"] for r in everything["runs"]] == [refund, *reversed(quick)]
    assert everything["cursor"] is None
    first = everything["runs"][-1]
    assert (first["status"], first["workflow"], first["source"]) == ("completed", "support_triage", "form")
    assert first["subject"] == f"Invoice question {marker} 0" and first["customer"] == f"ops0@{marker}.example"
    # The customer is searched too, case-insensitively; a status narrows it; a time range bounds it.
    assert [r["run_id"] for r in listed(runtime, "/runs", q=f"ANA@{marker}")["runs"]] == [refund]
    assert [r["run_id"] for r in listed(runtime, "/runs", q=marker, status="pending_approval")["runs"]] == [refund]
    assert listed(runtime, "/runs", q=marker, until=since)["runs"] == []
    assert len(listed(runtime, "/runs", q=marker, since=since, workflow="support_triage")["runs"]) == 4

    seen, cursor = [], None
    while True:
        page = listed(runtime, "/runs", q=marker, limit="1", order="oldest", **({"cursor": cursor} if cursor else {}))
        seen += [r["run_id"] for r in page["runs"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == [*quick, refund]

    waiting = [a for a in listed(runtime, "/approvals", limit="100")["approvals"] if a["run_id"] == refund]
    assert len(waiting) == 1
    assert waiting[0]["subject"] == f"Refund request {marker}" and waiting[0]["required"] == 1
    assert waiting[0]["seconds_left"] > 0 and waiting[0]["age_seconds"] >= 0 and waiting[0]["deadline"]

    assert httpx.post(runtime.approval_link(refund), data={"decision": "approve"}).status_code == 200
    runtime.wait_status(refund, "completed")
    assert refund not in [a["run_id"] for a in listed(runtime, "/approvals", limit="100")["approvals"]]


def test_given_bad_list_parameters_when_asked_then_400_with_what_is_wrong(runtime: Runtime) -> None:
    for path, params, code in [("/runs", {"status": "done"}, "bad_status"), ("/runs", {"limit": "500"}, "bad_limit"),
                               ("/runs", {"workflow": "nope"}, "unknown_workflow"),
                               ("/runs", {"cursor": "e30"}, "bad_cursor"), ("/approvals", {"q": "x"},
                                                                            "unknown_parameter")]:
        response = httpx.get(f"{runtime.url}{path}", params=params, timeout=10)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["error"] == code


def test_given_runs_when_the_cli_lists_shows_and_asks_what_waits_then_it_prints_readable_tables(
        runtime: Runtime) -> None:
    marker = f"zc{uuid.uuid4().hex[:10]}"
    done = runtime.send(ticket(f"Invoice question {marker}", "I was charged twice on my last invoice, can you check "
                               "the payment?")).json()["run_id"]
    waiting = runtime.send(ticket(f"Refund request {marker} " + "with a long subject " * 8, "Please refund my last "
                                  "payment, I cancelled before renewal.")).json()["run_id"]
    runtime.wait_status(done, "completed")
    runtime.wait_status(waiting, "pending_approval")

    table = cli(runtime, "runs", "--search", marker, columns=100)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["CREATED", "(UTC)", "STATUS", "WORKFLOW", "SUBJECT", "RUN"]
    assert [line.split()[-1] for line in lines[1:3]] == [waiting, done]
    assert "pending_approval" in lines[1] and "…" in lines[1] and all(len(line) <= 100 for line in lines)

    as_json = json.loads(cli(runtime, "runs", "--search", marker, "--status", "completed", "--json").stdout)
    assert [r["run_id"] for r in as_json["runs"]] == [done] and as_json["cursor"] is None
    paged = cli(runtime, "runs", "--search", marker, "--limit", "1", "--all", "--json")
    assert [r["run_id"] for r in json.loads(paged.stdout)["runs"]] == [waiting, done]
    assert "so far" in paged.stderr  # progress while it follows the cursors

    shown = cli(runtime, "show", done)
    assert shown.returncode == 0, shown.stderr
    head, *rest = shown.stdout.splitlines()
    assert head == f"Run {done}  completed  workflow support_triage"
    classify = [line for line in rest if " classify " in line and "category=" in line]
    assert len(classify) == 1 and "category=billing" in classify[0] and "confidence=" in classify[0]
    assert any(line.split()[2:4] == ["completed", "send_reply"] for line in rest if len(line.split()) > 3)
    assert "interlock show --prompts" in shown.stdout and "system:" not in shown.stdout
    assert "system:" in cli(runtime, "show", done, "--prompts").stdout
    assert json.loads(cli(runtime, "show", done, "--json").stdout)["run_id"] == done

    asked = cli(runtime, "approvals")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.splitlines()[0].split() == ["WAITING", "DUE", "IN", "WORKFLOW", "SUBJECT", "NEEDS", "RUN"]
    assert any(line.endswith(waiting) for line in asked.stdout.splitlines())


def test_given_wrong_input_when_the_cli_is_used_then_one_line_errors_and_exit_1(runtime: Runtime) -> None:
    for args, says in [(("runs", "--status", "done"), "status is one or more of"),
                       (("show", str(uuid.uuid4())), "no run with id"),
                       (("runs", "--url", "http://127.0.0.1:9"), "nothing answers at")]:
        answer = cli(runtime, *args)
        assert answer.returncode == 1, (args, answer.stdout)
        assert answer.stderr.startswith("interlock: error: ") and says in answer.stderr, answer.stderr
        assert "Traceback" not in answer.stderr
