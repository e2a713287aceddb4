"""The ingest DLQ's inspection and redrive through the local runtime over real HTTP, and ``interlock redrive``: the
dry run plans each message and moves nothing; the redrive then does what the dry run said, and the router starts
the run it said would start."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from interlock.kit.triggers import parse_message, schedule_message, trigger_envelope

from tests.e2e.conftest import Runtime, ticket
from tests.e2e.test_invoice_payables import run_of
from tests.e2e.test_operator import cli

DLQ = "ingest-dlq"


def dead_letter(runtime: Runtime, body: str, **attributes: str) -> str:
    answer = httpx.post(f"{runtime.url}/_local/queues/{DLQ}/messages", json={"body": body, "attributes": attributes},
                        timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["message_id"])


def depth(runtime: Runtime) -> int:
    queues = httpx.get(f"{runtime.url}/_local/queues", timeout=10).json()["queues"]
    (found,) = [q["messages"] for q in queues if q["name"] == DLQ]
    return int(found)


def plans(answer: dict[str, Any], ids: list[str]) -> dict[str, dict[str, Any]]:
    batches = answer.get("batches", [answer])
    found = {m["message_id"]: m for batch in batches for m in batch["messages"]}
    return {i: found[i] for i in ids if i in found}


def test_given_dead_letters_when_dry_run_then_redriven_then_the_plan_is_what_happens(runtime: Runtime) -> None:
    done = runtime.send(ticket("Invoice question", "I was charged twice on my last invoice, can you check?"))
    finished = done.json()["run_id"]
    runtime.wait_status(finished, "completed")
    event = httpx.get(f"{runtime.url}/runs/{finished}/event", timeout=10).text
    # A past-due check of a day long gone that never got through (no invoice was past due then).
    firing = schedule_message("invoice_intake", "past_due_check",
                              datetime(2020, 1, 1 + uuid.uuid4().int % 28, 7, 0, tzinfo=UTC))
    envelope = trigger_envelope(parse_message(firing), datetime.now(UTC))  # type: ignore[arg-type]
    assert envelope is not None
    marker = uuid.uuid4().hex
    ids = [dead_letter(runtime, event), dead_letter(runtime, firing), dead_letter(runtime, json.dumps({"x": marker}))]
    held = depth(runtime)
    assert held >= 3

    dry = cli(runtime, "redrive", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    said = plans(json.loads(dry.stdout), ids)
    assert [(said[i]["verdict"], said[i]["run_id"]) for i in ids] == [
        ("duplicate", finished), ("start", envelope.run_id), ("poison", None)]
    assert said[ids[0]]["run_status"] == "completed" and said[ids[1]]["kind"] == "schedule"
    assert said[ids[1]]["outcome"] == "creates its run and starts workflow invoice_intake"
    assert depth(runtime) == held  # nothing moved
    assert httpx.get(f"{runtime.url}/runs/{envelope.run_id}", timeout=10).status_code == 404

    text = cli(runtime, "redrive", "--dry-run", columns=200)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[1].split() == ["SENT", "(UTC)", "KIND", "RUN", "STATUS", "VERDICT", "ACTION", "OUTCOME"]
    (line,) = [x for x in lines if finished in x]
    assert line.split()[2:7] == ["envelope", finished, "completed", "duplicate", "remove"]
    assert "Dry run, nothing moved" in text.stdout

    real = cli(runtime, "redrive", "--json")
    assert real.returncode == 0, real.stderr
    acted = plans(json.loads(real.stdout), ids)
    assert [(acted[i]["verdict"], acted[i]["done"]) for i in ids] == [
        ("duplicate", "removed"), ("start", "moved"), ("poison", "kept")]
    started = run_of(runtime, envelope.run_id, "completed")  # the router started exactly that one
    assert started["timeline"][0]["details"]["event_source"] == "schedule"
    redriven = runtime.run(finished)["timeline"][-1]
    assert (redriven["state"], redriven["step"], redriven["details"]["reason"]) == (
        "duplicate", "redrive", "already_started")
    assert runtime.run(finished)["status"] == "completed"

    again = cli(runtime, "redrive", "--dry-run", "--json")
    left = plans(json.loads(again.stdout), ids)
    assert list(left) == [ids[2]]  # the poison, for a person to read


def test_given_bad_redrive_requests_then_4xx_and_the_cli_says_why(runtime: Runtime) -> None:
    assert httpx.post(f"{runtime.url}/dlqs/nope/redrive", timeout=10).status_code == 404
    answer = httpx.post(f"{runtime.url}/dlqs/ingest/redrive", content=b'{"dry_run": "no"}', timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_request")
    listed = httpx.get(f"{runtime.url}/dlqs", timeout=10).json()["dlqs"]
    assert [q["name"] for q in listed] == ["ingest"]
    wrong = cli(runtime, "redrive", "--dlq", "nope", "--dry-run")
    assert wrong.returncode == 1
    assert "no DLQ named 'nope'; the DLQs are: ingest (404 unknown_dlq)" in wrong.stderr
    for body in ({"body": ""}, {"body": "x", "attributes": {"a": 1}}, {"nobody": "x"}, {"body": "x", "extra": 1}):
        assert httpx.post(f"{runtime.url}/_local/queues/{DLQ}/messages", json=body, timeout=10).status_code == 400
    assert httpx.post(f"{runtime.url}/_local/queues/nope/messages", json={"body": "x"}, timeout=10).status_code == 404
    deep = b"[" * 5000 + b"]" * 5000
    for path in ("/dlqs/ingest/redrive", f"/_local/queues/{DLQ}/messages"):
        for body in (deep, b'{"body": "\\ud800"}'):
            answer = httpx.post(f"{runtime.url}{path}", content=body, timeout=10)
            assert answer.status_code == 400, (path, body[:20], answer.status_code, answer.text)


def test_given_a_dead_letter_nested_too_deep_to_read_then_it_is_planned_poison_and_kept(runtime: Runtime) -> None:
    letter = dead_letter(runtime, '{"x": ' + "[" * 5000 + "]" * 5000 + "}")

    dry = cli(runtime, "redrive", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    said = plans(json.loads(dry.stdout), [letter])
    assert (said[letter]["verdict"], said[letter]["outcome"]) == ("poison", "the message is nested too deep to read")
