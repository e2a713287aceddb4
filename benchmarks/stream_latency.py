"""How long a model's streamed answer takes to reach a client following the run (``GET /runs/{run_id}/events``).

``interlock run`` is started with its model endpoint pointed at the fake OpenAI endpoint of the tests
(``tests/fake_openai.py``, the real streaming protocol, on the loopback address), which streams each answer in pieces
``--piece-delay`` apart and notes when each piece went out. For each of ``--messages`` WhatsApp messages (signed as
WhatsApp signs them), one at a time, the benchmark follows the run's event stream as ``EventSource`` does
(reconnecting after the last id) and notes when each ``delta`` event arrived. A piece's latency is the arrival of the
delta that carries it minus the time the fake sent it; the first piece's latency is what a person watching waits
before words appear. Printed: p50 and p95 of both, and the bound the design gives (delta interval + settle + poll).

    .venv/bin/python benchmarks/stream_latency.py [--messages 10] [--piece-delay 0.05]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_harness import ROOT, RuntimeProcess

sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
from fake_openai import FakeOpenAI, Reply, Seen  # noqa: E402

from tests.assistant_messages import whatsapp  # noqa: E402

ANSWER_TEXT = ("You can change the delivery address in the app, under Settings, until the order ships. "
               "If it has shipped already, the carrier's own page lets you redirect it.")


def _answer(piece_delay: float) -> Any:
    def answer(body: dict[str, Any]) -> Reply:
        if Seen("", {}, body).schema_name != "TurnOutput":
            return Reply.error(400, message="no answer for this schema")
        content = {"confidence": 0.92, "reasoning": "benchmark", "action": {"action": "reply", "text": ANSWER_TEXT}}
        reply = Reply.answer(content, model=str(body.get("model", "")))
        reply.chunk_delay = piece_delay
        return reply
    return answer


def _post_message(runtime: RuntimeProcess, body: bytes) -> str:
    from interlock.local.secrets import lookup
    from interlock.webhooks.sources import whatsapp as plugin

    secret = lookup(runtime.state_dir, "whatsapp", "whatsapp", environ={})
    assert secret is not None, "the runtime made no WhatsApp secret"
    url = f"{runtime.url}/webhooks/whatsapp"
    headers = dict(plugin.sender_headers(secret.signing[0], body, now=int(time.time()), event_id=str(uuid.uuid4()),
                                         url=url))
    headers["content-type"] = "application/json"
    answer = httpx.post(url, content=body, headers=headers, timeout=10)
    answer.raise_for_status()
    return str(answer.json()["run_id"])


def _follow(url: str, run_id: str, timeout: float) -> list[tuple[float, str]]:
    """(arrival time, text) of each delta event of the run, until its stream ends: one live connection locally
    (reconnecting after the last id, as ``EventSource`` does, if it is cut)."""
    deltas: list[tuple[float, str]] = []
    last: str | None = None
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=httpx.Timeout(40, read=30)) as client:
        while time.monotonic() < deadline:
            headers = {"Last-Event-ID": last} if last else {}
            with client.stream("GET", f"{url}/runs/{run_id}/events", headers=headers) as response:
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line:
                        name, _, value = line.partition(": ")
                        fields[name] = value
                        continue
                    if "id" in fields:
                        last = fields["id"]
                    if fields.get("event") == "delta":
                        deltas.append((time.time(), json.loads(fields["data"])["details"]["text"]))
                    if fields.get("event") == "end":
                        return deltas
                    fields = {}
    raise TimeoutError(f"run {run_id} did not end within {timeout:.0f} s")


def _latencies(sent: list[tuple[float, str]], deltas: list[tuple[float, str]]) -> list[float]:
    """For each piece the fake sent, the arrival of the delta carrying it minus when it went out."""
    out: list[float] = []
    pieces = iter(sent)
    for arrived, text in deltas:
        consumed = ""
        while len(consumed) < len(text):
            at, piece = next(pieces)
            consumed += piece
            out.append(arrived - at)
        if consumed != text:
            raise AssertionError("the deltas do not carry the pieces in order")
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--piece-delay", type=float, default=0.05, help="seconds between the fake's pieces")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args(argv)

    from interlock.run_events import DELTA_EVERY_SECONDS
    from interlock.settings import env_seconds
    from interlock.timeline import events_settle_seconds

    firsts: list[float] = []
    every: list[float] = []
    with FakeOpenAI(default=_answer(args.piece_delay)) as fake, tempfile.TemporaryDirectory() as tmp:
        runtime = RuntimeProcess(Path(tmp) / "state", extra_env={
            "INTERLOCK_AI_PROVIDER": "openai", "OPENAI_API_KEY": "benchmark", "OPENAI_BASE_URL": fake.base_url,
            "INTERLOCK_ASSISTANT_DEBOUNCE_SECONDS": "0"}).start()
        try:
            for n in range(args.messages):
                fake.pieces_sent.clear()
                wa_id = f"4477009{n:05d}"
                run_id = _post_message(runtime, whatsapp("How do I change my delivery address?", wa_id=wa_id))
                deltas = _follow(runtime.url, run_id, args.timeout)
                latencies = _latencies(list(fake.pieces_sent), deltas)
                firsts.append(latencies[0])
                every += latencies
                print(f"message {n + 1}: {len(fake.pieces_sent)} pieces in {len(deltas)} deltas, first piece "
                      f"{latencies[0]:.2f} s, slowest {max(latencies):.2f} s", flush=True)
        finally:
            runtime.stop()
    settle, poll = events_settle_seconds(), env_seconds("INTERLOCK_EVENTS_POLL_SECONDS", 0.5)
    bound = DELTA_EVERY_SECONDS + settle + poll
    print("summary:")
    print(f"  first piece  p50 {_p(firsts, 0.5):.2f} s  p95 {_p(firsts, 0.95):.2f} s  ({len(firsts)} answers)")
    print(f"  every piece  p50 {_p(every, 0.5):.2f} s  p95 {_p(every, 0.95):.2f} s  ({len(every)} pieces)")
    print(f"  the design's bound: delta interval {DELTA_EVERY_SECONDS} s + settle {settle} s + poll {poll} s = "
          f"{bound:.2f} s; p50 / bound = {statistics.median(every) / bound:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
