"""Nothing is lost to a missing route: every accepted event is kept with its run, and an operator replays a failed
or ignored run (``interlock replay`` or ``POST /runs/{run_id}/replay``) as a new run linked to it, through the
queue and the router again. Informational events (WhatsApp delivery statuses) end ``ignored``, not ``failed``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import LOW_RISK, Runtime, accepted, sample, states


def _cli(runtime: Runtime, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    return subprocess.run([sys.executable, "-m", "interlock.cli", *argv, "--url", runtime.url],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def replay(runtime: Runtime, run_id: str) -> httpx.Response:
    return httpx.post(f"{runtime.url}/runs/{run_id}/replay", timeout=10)


def kept_event(runtime: Runtime, run_id: str) -> dict[str, Any]:
    response = httpx.get(f"{runtime.url}/runs/{run_id}/event", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def new_stripe_event(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    payload = json.loads(sample("stripe"))
    payload["id"] = f"evt_{uuid.uuid4().hex[:24]}"
    file = tmp_path / "stripe.json"
    file.write_text(json.dumps(payload))
    return file, payload


def test_given_a_stripe_event_with_no_route_then_it_is_kept_and_replayed_as_a_linked_run_through_the_router(
    runtime: Runtime, tmp_path: Path
) -> None:
    # Given `interlock send stripe` with an event no workflow takes
    file, payload = new_stripe_event(tmp_path)
    sent = subprocess.run([sys.executable, "-m", "interlock.cli", "send", "stripe", str(file), "--url", runtime.url,
                           "--state-dir", str(runtime.state_dir)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")})
    assert sent.returncode == 0, sent.stdout + sent.stderr
    original = json.loads(sent.stdout[sent.stdout.index("{"):sent.stdout.rindex("}") + 1])["run_id"]

    # Then its run fails no_route, its payload out of the run's view but kept, on its own route
    run = runtime.wait_status(original, "failed")
    assert run["timeline"][-1]["details"]["reason"] == "no_route"
    assert "pi_3QkL9sJq2X8pYz7a1GZ0b5Qd" not in json.dumps(run)  # the payment intent: only in the payload
    assert kept_event(runtime, original)["payload"] == payload

    # When an operator replays it with the CLI
    done = _cli(runtime, "replay", original)

    # Then a new run, linked both ways, goes through the queue and the router again (and, still unrouted, fails)
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("Run ")]
    new = line.removesuffix(".").rsplit(" ", 1)[1]
    replayed = runtime.wait_status(new, "failed")
    assert replayed["replay_of"] == original
    assert states(replayed) == [("received", "replay"), ("failed", "router")]
    assert replayed["timeline"][-1]["details"] == {"reason": "no_route", "event_source": "stripe",
                                                   "event_type": "payment_intent.succeeded"}
    assert kept_event(runtime, new)["payload"] == payload
    before = runtime.run(original)
    assert (before["status"], before["replayed_as"]) == ("failed", new)
    assert states(before)[-1] == ("replayed", "replay")

    # And the original cannot be replayed twice: the CLI says by which run, in one line
    again = _cli(runtime, "replay", original)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [again.stderr.strip()]
    assert f"was replayed as run {new}" in again.stderr and "409 already_replayed" in again.stderr
    # but its replay can
    assert replay(runtime, new).status_code == 202


def test_given_a_ticket_that_failed_while_the_helpdesk_was_down_when_replayed_after_then_it_completes(
    runtime: Runtime,
) -> None:
    # Given a low-risk ticket whose reply could not be sent: the helpdesk was down through every retry
    assert httpx.post(f"{runtime.url}/_local/helpdesk/outage", json={"enabled": True}).status_code == 200
    try:
        original = runtime.send(LOW_RISK).json()["run_id"]
        failed = runtime.wait_status(original, "failed", timeout=90)
    finally:
        httpx.post(f"{runtime.url}/_local/helpdesk/outage", json={"enabled": False})
    assert runtime.replies(original) == []
    assert any(e["state"] == "retried" and e["step"] == "send_reply" for e in failed["timeline"])

    # When the helpdesk is back and an operator replays the run
    answer = replay(runtime, original)

    # Then the replay runs the workflow afresh and the customer gets one reply, under the new run
    assert answer.status_code == 202, answer.text
    new = answer.json()["run_id"]
    assert answer.json() == {"run_id": new, "replay_of": original}
    done = runtime.wait_status(new, "completed", timeout=60)
    assert done["workflow"] == "support_triage" and done["replay_of"] == original
    assert len(runtime.replies(new)) == 1
    assert runtime.run(original)["status"] == "failed"


def test_given_a_whatsapp_delivery_then_the_message_is_the_assistants_and_the_status_is_ignored_and_replayable(
    runtime: Runtime,
) -> None:
    # Given WhatsApp's sample (a message and a delivery status), as new events
    data = json.loads(sample("whatsapp"))
    tag = uuid.uuid4().hex[:16]
    for change in (c for entry in data["entry"] for c in entry["changes"]):
        for index, item in enumerate(change["value"].get("messages", []) + change["value"].get("statuses", [])):
            item["id"] = f"wamid.{tag}{index}"

    message, status = accepted(runtime.send_as("whatsapp", json.dumps(data).encode()))

    # Then the message is a turn of the assistant's, and the status is the assistant's too: of no message it sent
    turn = runtime.wait_status(message["run_id"], "completed")
    assert turn["workflow"] == "assistant" and turn["timeline"][-1]["step"] == "release"
    ignored = runtime.wait_status(status["run_id"], "ignored")
    assert states(ignored) == [("received", "ingest"), ("processing", "router"), ("ignored", "receive")]
    assert ignored["timeline"][-1]["details"]["reason"] == "not_a_sent_message"  # not a message the assistant sent
    # and an ignored run can be replayed; routed as before, it is ignored again
    answer = replay(runtime, status["run_id"])
    assert answer.status_code == 202, answer.text
    assert runtime.wait_status(answer.json()["run_id"], "ignored")["replay_of"] == status["run_id"]


def test_given_runs_that_cannot_be_replayed_then_409_404_and_400(runtime: Runtime) -> None:
    busy = runtime.send(LOW_RISK).json()["run_id"]
    runtime.wait_status(busy, "completed")

    refused = replay(runtime, busy)
    assert refused.status_code == 409
    assert refused.json()["error"] == "not_replayable" and refused.json()["status"] == "completed"
    unknown = replay(runtime, str(uuid.uuid4()))
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_run")
    bad = replay(runtime, "not-a-run-id")
    assert (bad.status_code, bad.json()["error"]) == (400, "bad_run_id")
    assert httpx.get(f"{runtime.url}/runs/{uuid.uuid4()}/event", timeout=10).status_code == 404
