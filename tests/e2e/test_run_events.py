"""GET /runs/{run_id}/events over real HTTP on the local runtime: a run's timeline as Server-Sent Events, resumed
after the last id seen (``Last-Event-ID`` or ``?after=``) with every entry exactly once, then ``event: end``."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.conftest import LOW_RISK, NEEDS_APPROVAL, Runtime


def read(runtime: Runtime, run_id: str, last: str | None = None, via: str = "header") -> httpx.Response:
    headers = {"Last-Event-ID": last} if last and via == "header" else {}
    params = {"after": last} if last and via == "query" else None
    return httpx.get(f"{runtime.url}/runs/{run_id}/events", headers=headers, params=params, timeout=40)


def parse(body: str) -> list[dict[str, str]]:
    blocks = []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in filter(None, block.split("\n")):
            name, _, value = line.partition(": ")
            fields[name] = value
        if fields:
            blocks.append(fields)
    return blocks


def read_then_leave(runtime: Runtime, run_id: str, quiet: float = 3.0) -> list[str]:
    """The entry ids a client gets on one live connection until nothing has come for ``quiet`` seconds, then it
    disconnects; the stream must still be open (the run is not over)."""
    ids: list[str] = []
    with httpx.stream("GET", f"{runtime.url}/runs/{run_id}/events",
                      timeout=httpx.Timeout(10, read=quiet)) as response:
        assert response.status_code == 200 and response.headers["x-interlock-stream"] == "live"
        try:
            for line in response.iter_lines():
                assert line != "event: end", "the run ended while the client was connected"
                if line.startswith("id: "):
                    ids.append(line[4:])
        except httpx.ReadTimeout:
            pass  # the client goes away mid-run
    return ids


def follow(runtime: Runtime, run_id: str, last: str | None = None, via: str = "header",
           reads: int = 10) -> tuple[list[str], dict[str, str] | None]:
    """Reconnect as EventSource does (after the last id seen) until ``end``: the ids seen and the end's data."""
    ids: list[str] = []
    for _ in range(reads):
        response = read(runtime, run_id, last, via)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        assert response.text.startswith("retry: 1000\n\n")
        for event in parse(response.text):
            if event.get("event") == "entry":
                ids.append(event["id"])
                last = event["id"]
                json.loads(event["data"])
            elif event.get("event") == "end":
                # a short response that ends the stream says so; locally a stream is live, one response throughout
                assert response.headers.get("x-interlock-stream") in ("end", "live")
                return ids, json.loads(event["data"])
    return ids, None


def test_given_a_completed_run_then_its_stream_sends_every_entry_once_then_end(runtime: Runtime) -> None:
    run_id = runtime.send(LOW_RISK).json()["run_id"]
    run = runtime.wait_status(run_id, "completed")

    ids, end = follow(runtime, run_id)

    assert end == {"run_id": run_id, "status": "completed"}
    assert len(ids) == len(set(ids)) == len(run["timeline"])
    assert ids == sorted(ids)


@pytest.mark.parametrize("via", ["header", "query"])
def test_given_a_run_waiting_for_approval_when_a_client_reconnects_after_its_last_id_then_it_gets_the_rest_once(
        runtime: Runtime, via: str) -> None:
    run_id = runtime.send(NEEDS_APPROVAL).json()["run_id"]
    runtime.wait_status(run_id, "pending_approval")

    # A client reads what has settled so far, then goes away mid-run: locally the stream is live (one response,
    # kept open while the run waits), so it reads until the entries stop coming
    seen = read_then_leave(runtime, run_id)
    assert seen

    # The approver decides; the client reconnects after the last id it saw
    link = runtime.approval_link(run_id)
    assert httpx.post(link, data={"decision": "approve"}, timeout=30).status_code < 400
    rest, end = follow(runtime, run_id, last=seen[-1], via=via)

    assert end is not None and end["run_id"] == run_id and end["status"] in {"completed", "escalated", "failed"}
    run = runtime.run(run_id)
    everything = seen + rest
    assert len(everything) == len(set(everything)) == len(run["timeline"])
    assert everything == sorted(everything)
    # the whole stream again, from the start: the same ids
    assert follow(runtime, run_id)[0] == everything


def test_given_bad_run_ids_or_cursors_then_4xx_never_5xx(runtime: Runtime) -> None:
    run_id = runtime.send(LOW_RISK).json()["run_id"]
    runtime.wait_status(run_id, "completed")
    assert httpx.get(f"{runtime.url}/runs/{run_id}/events", params={"after": ""}, timeout=40).status_code == 200
    cursors = ["1", "x" * 4000, "é" * 30, "../../etc/passwd", "' OR '1'='1", "00000000000000000000#zz",
               "TL#00000000000000000001#0000000a", "%00", "\u202e" * 5]
    for cursor in cursors:
        by_query = httpx.get(f"{runtime.url}/runs/{run_id}/events", params={"after": cursor}, timeout=40)
        assert by_query.status_code == 400, (cursor, by_query.text)
        assert by_query.json()["error"] == "bad_event_id"
        if cursor.isascii() and cursor.isprintable():
            by_header = httpx.get(f"{runtime.url}/runs/{run_id}/events", headers={"Last-Event-ID": cursor},
                                  timeout=40)
            assert 400 <= by_header.status_code < 500, (cursor, by_header.text)
    for bad_run in ["nope", "x" * 3000, "é" * 40, "..%2F..%2Fetc", "' OR 1=1 --", "%E2%80%AE", "00000000"]:
        response = httpx.get(f"{runtime.url}/runs/{quote(bad_run, safe='%')}/events", timeout=40)
        assert 400 <= response.status_code < 500, (bad_run, response.status_code, response.text)


def test_given_interlock_watch_then_it_prints_each_entry_once_as_written_and_the_end(
        runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI follows the stream over real HTTP, reconnecting after the last entry seen, across an approval."""
    import threading

    from interlock import cli

    run_id = runtime.send(NEEDS_APPROVAL).json()["run_id"]
    runtime.wait_status(run_id, "pending_approval")
    codes: list[int] = []
    watcher = threading.Thread(target=lambda: codes.append(cli.main(["watch", run_id, "--url", runtime.url])))
    watcher.start()
    link = runtime.approval_link(run_id)
    assert httpx.post(link, data={"decision": "approve"}, timeout=30).status_code < 400
    watcher.join(timeout=90)

    assert codes == [0]
    lines = capsys.readouterr().out.strip().splitlines()
    run = runtime.run(run_id)
    assert lines[-1] == f"Run {run_id} ended {run['status']}."
    entries = lines[:-1]
    assert len(entries) == len(run["timeline"])  # each entry once, across the reconnections
    # the same entries (the stream sends them in write order, GET /runs in their own times' order)
    assert sorted(line.split()[1:3] for line in entries) == sorted([e["step"], e["state"]] for e in run["timeline"])


def test_given_interlock_watch_of_an_unknown_run_or_nothing_listening_then_a_one_line_error(
        runtime: Runtime, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock import cli

    assert cli.main(["watch", "00000000-0000-4000-8000-000000000000", "--url", runtime.url]) == 1
    assert "cannot watch run" in capsys.readouterr().err
    assert cli.main(["watch", "x", "--url", runtime.url, "--after", "nonsense"]) == 1
    monkeypatch.setattr(cli, "WATCH_ATTEMPTS", 1)
    assert cli.main(["watch", "x", "--url", "http://127.0.0.1:9"]) == 1
    assert "nothing answers" in capsys.readouterr().err
