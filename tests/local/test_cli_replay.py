"""``interlock replay RUN_ID``: posts the replay to the runtime's API and says what happened in one line."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from interlock import cli
from interlock.local.functions import Invocation
from interlock.local.gateway import Gateway
from interlock.topology import TOPOLOGY

ORIGINAL = "862de862-90f6-5059-b982-a078360c48bb"
REPLAY = "5abe351a-8175-501b-86cf-f4aa79310b8a"


class ReplayApi:
    """Plays the replay function: answers each request with the next of ``answers`` (status, body)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.answers: list[tuple[int, str]] = []

    def __call__(self, function: str, event: dict[str, Any]) -> Invocation:
        self.events.append({"function": function, **event})
        status, body = self.answers.pop(0)
        return Invocation(function, "r", payload={"statusCode": status, "body": body,
                                                  "headers": {"Content-Type": "application/json"}})


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, ReplayApi]]:
    monkeypatch.delenv("INTERLOCK_URL", raising=False)
    gateway = Gateway(TOPOLOGY, port=0)
    fake = ReplayApi()
    gateway.start(fake)
    yield gateway.url, fake
    gateway.stop()


def test_replay_posts_to_the_runs_replay_route_and_prints_the_new_run(api, capsys) -> None:
    url, fake = api
    fake.answers.append((202, json.dumps({"run_id": REPLAY, "replay_of": ORIGINAL})))

    status = cli.main(["replay", ORIGINAL, "--url", url])

    assert status == 0
    [event] = fake.events
    assert (event["function"], event["httpMethod"], event["resource"]) == ("runs_replay", "POST",
                                                                          "/runs/{run_id}/replay")
    assert event["pathParameters"] == {"run_id": ORIGINAL}
    out = capsys.readouterr().out
    assert f"Run {ORIGINAL} replayed as run {REPLAY}." in out
    assert f"curl -s {url}/runs/{REPLAY}" in out


@pytest.mark.parametrize("status, body, expected", [
    (409, {"error": "already_replayed", "message": f"run {ORIGINAL} was replayed as run {REPLAY}; to try again, "
                                                   "replay that run", "replayed_as": REPLAY},
     f"was replayed as run {REPLAY}; to try again, replay that run (409 already_replayed)"),
    (409, {"error": "not_replayable", "message": f"run {ORIGINAL} is completed; only a run that is failed or "
                                                 "ignored can be replayed", "status": "completed"},
     "is completed; only a run that is failed or ignored can be replayed (409 not_replayable)"),
    (404, {"error": "unknown_run", "message": f"no run with id '{ORIGINAL}'"}, "(404 unknown_run)"),
])
def test_replay_refused_prints_one_line_and_fails(api, capsys, status, body, expected) -> None:
    url, fake = api
    fake.answers.append((status, json.dumps(body)))

    assert cli.main(["replay", ORIGINAL, "--url", url]) == 1

    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith(f"interlock: error: cannot replay {ORIGINAL}: ")
    assert line.endswith(expected)
    assert "Traceback" not in captured.err + captured.out


def test_replay_quotes_a_run_id_so_it_stays_one_path_segment(api, capsys) -> None:
    url, fake = api
    fake.answers.append((400, json.dumps({"error": "bad_run_id", "message": "a run id is a UUID"})))

    assert cli.main(["replay", "../webhooks/form", "--url", url]) == 1

    [event] = fake.events
    assert event["resource"] == "/runs/{run_id}/replay"  # not POST /webhooks/form
    assert "(400 bad_run_id)" in capsys.readouterr().err


def test_replay_with_nothing_listening_says_so_in_one_line(capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    assert cli.main(["replay", ORIGINAL, "--url", f"http://127.0.0.1:{port}"]) == 1

    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("interlock: error: nothing answers at http://127.0.0.1:")
