"""Webhook ingest end to end: what a sender sees, and that refused requests leave nothing behind."""

from __future__ import annotations

import base64
import json
import time

import httpx

from tests.e2e.conftest import LOW_RISK, SECRET, Runtime


def test_given_the_same_webhook_id_twice_then_one_run_and_a_duplicate_entry(runtime: Runtime) -> None:
    first = runtime.send(LOW_RISK, msg_id="msg_e2e_duplicate")
    second = runtime.send(LOW_RISK, msg_id="msg_e2e_duplicate")

    assert first.status_code == second.status_code == 202
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    assert first.json()["run_id"] == second.json()["run_id"]
    run = runtime.wait_status(first.json()["run_id"], "completed")
    timeline_states = [e["state"] for e in run["timeline"]]
    assert timeline_states.count("duplicate") == 1
    assert timeline_states.count("received") == 1
    assert [e["step"] for e in run["timeline"]].count("router") == 1


def _nothing_recorded(runtime: Runtime, response: httpx.Response) -> None:
    assert "run_id" not in response.json()


def test_given_a_bad_signature_then_401_and_nothing_recorded(runtime: Runtime) -> None:
    wrong = "whsec_" + base64.b64encode(b"not-the-right-secret-at-all!!").decode()
    response = runtime.send(LOW_RISK, secret=wrong, msg_id="msg_e2e_badsig")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    # The same id with the right signature is a fresh event: the refused one left no dedupe key.
    accepted = runtime.send(LOW_RISK, msg_id="msg_e2e_badsig")
    assert accepted.status_code == 202 and accepted.json()["duplicate"] is False


def test_given_a_stale_or_future_timestamp_then_401(runtime: Runtime) -> None:
    assert runtime.send(LOW_RISK, timestamp=int(time.time()) - 600).status_code == 401
    assert runtime.send(LOW_RISK, timestamp=int(time.time()) + 600).status_code == 401


def test_given_missing_signature_headers_then_401(runtime: Runtime) -> None:
    response = httpx.post(f"{runtime.url}/webhooks/form", content=json.dumps(LOW_RISK))
    assert response.status_code == 401


def test_given_a_malformed_body_then_400_with_the_reason(runtime: Runtime) -> None:
    response = runtime.send(b'{"type": "support.ticket", "data": ', msg_id="msg_e2e_malformed")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert "JSON" in response.json()["message"]
    no_type = runtime.send({"data": {}}, msg_id="msg_e2e_notype")
    assert no_type.status_code == 400
    assert "type" in no_type.json()["message"]
    # nothing was kept for either id
    assert runtime.send(LOW_RISK, msg_id="msg_e2e_malformed").json()["duplicate"] is False


def test_given_an_unknown_source_then_404(runtime: Runtime) -> None:
    assert runtime.send(LOW_RISK, source="nosuchsource").status_code == 404


def test_given_an_oversized_body_then_413(runtime: Runtime) -> None:
    huge = {"type": "support.ticket", "data": {"body": "x" * (300 * 1024)}}
    assert runtime.send(huge).status_code == 413


def test_given_an_unknown_run_then_404(runtime: Runtime) -> None:
    assert httpx.get(f"{runtime.url}/runs/00000000-0000-0000-0000-000000000000").status_code == 404


def test_secret_is_never_in_the_runtime_log_after_refusals(runtime: Runtime) -> None:
    runtime.send(LOW_RISK, timestamp=int(time.time()) - 600)
    log = runtime.log_path.read_text(errors="replace")
    key = SECRET.removeprefix("whsec_")
    # The banner prints the secret once by design (the developer needs it); no log line carries it.
    assert [line for line in log.splitlines() if key in line and line.lstrip().startswith("{")] == []
