"""Burst benchmark of the local runtime: 1,000 signed tickets, 10 % of them redeliveries, from 16 senders.

Against the runtime as ``make run`` starts it (``interlock run`` as a subprocess, on a free port with its own
``--state-dir``, the offline AI provider). The deliveries are ``form support_ticket`` samples signed as
``interlock send form`` signs them; a redelivery re-sends an event id already sent (a provider's retry), at a
random later place in the burst, so some arrive while the first delivery is still being handled. The senders post
as fast as the runtime answers (no pause, no waiting for runs), then the runs accepted are waited for until each is
terminal, or until the runtime has been idle for ``--stall`` seconds (a queue still being worked through is not a
loss). The runtime's RSS is sampled from /proc all along.

It prints: the runs created (distinct run ids answered; the ingest derives a run id from the event id, so exactly
one per distinct event is right), the duplicates answered, lost runs (accepted, and not terminal once the runtime
has stopped working), the answers that were 5xx (or no answer at all), ingest latency p50/p99 (POST to
answer), and the runtime's RSS at start, at its peak and at the end. ``--rounds`` repeats the burst with new
event ids, to show whether memory stays bounded however many runs the runtime has handled.

    python benchmarks/burst.py [--tickets 1000] [--redeliveries 0.1] [--senders 16] [--rounds 1] [--stall 60]

This is a benchmark, not a test: it prints numbers and never fails a build.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from interlock.models import TERMINAL_STATUSES
from local_harness import (
    PollBudget,
    RssSampler,
    RuntimeProcess,
    Tickets,
    cpu_seconds,
    mib,
    percentile,
    rss_bytes,
    run_status,
)

TERMINAL = {status.value for status in TERMINAL_STATUSES}


def deliveries(tickets: int, redelivery_share: float, prefix: str, rng: random.Random) -> list[str]:
    """The event ids to post, in order: distinct ids, and redeliveries of some of them placed after the first."""
    redeliveries = round(tickets * redelivery_share)
    distinct = [f"msg_{prefix}_{i:06d}" for i in range(tickets - redeliveries)]
    order = list(distinct)
    for event_id in rng.sample(distinct, min(redeliveries, len(distinct))):
        first = order.index(event_id)
        order.insert(rng.randint(first + 1, len(order)), event_id)
    return order


def burst(runtime: RuntimeProcess, order: list[str], senders: int) -> tuple[dict[str, str], Counter[str], list[float]]:
    """Post ``order`` from ``senders`` threads; the run id per event id, the answers by kind, the POST latencies."""
    tickets = Tickets(runtime.url)
    lock = threading.Lock()
    queue = list(reversed(order))
    runs: dict[str, str] = {}
    answers: Counter[str] = Counter()
    latencies: list[float] = []
    conflicts: list[tuple[str, str, str]] = []

    def sender() -> None:
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    event_id = queue.pop()
                try:
                    status, answer, elapsed = tickets.post(client, event_id)
                except httpx.HTTPError:
                    with lock:
                        answers["no answer"] += 1
                    continue
                with lock:
                    latencies.append(elapsed)
                    if status >= 500:
                        answers[f"{status}"] += 1
                    elif status == 202 and answer.get("run_id"):
                        answers["duplicate" if answer.get("duplicate") else "accepted"] += 1
                        previous = runs.setdefault(event_id, answer["run_id"])
                        if previous != answer["run_id"]:
                            answers["a second run for one event"] += 1
                            conflicts.append((event_id, previous, answer["run_id"]))
                    else:
                        answers[f"{status}"] += 1

    threads = [threading.Thread(target=sender, name=f"sender-{i}") for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for event_id, first, second in conflicts[:5]:
        print(f"  event {event_id} was answered with run {first}, then with run {second}")
    return runs, answers, latencies


def wait_all(runtime: RuntimeProcess, run_ids: list[str], stall: float, timeout: float,
             poll_rate: float = 10.0) -> dict[str, str]:
    """Wait until every run is terminal, or until the runtime has done nothing for ``stall`` seconds (under 5 % of
    a core: it has stopped working, so what is not terminal then never will be), or ``timeout`` has passed; the
    last status seen of each run. A queue still being worked through is not a loss.

    Meanwhile only the oldest runs not yet terminal are polled (the queue is worked through roughly in order), at
    most ``poll_rate`` polls a second (each is a Lambda invocation in the runtime); then every run once more."""
    last: dict[str, str] = {}
    pending = list(dict.fromkeys(run_ids))
    budget = PollBudget(poll_rate)
    began = time.monotonic()
    cpu: list[tuple[float, float]] = [(began, cpu_seconds(runtime.pid))]
    with httpx.Client(timeout=60) as client:

        def poll(run_id: str) -> bool:
            budget.acquire()
            status = run_status(client, runtime.url, run_id) or "missing"
            last[run_id] = status
            return status in TERMINAL

        while pending and time.monotonic() - began < timeout:
            while pending and poll(pending[0]):
                pending.pop(0)
            now = time.monotonic()
            cpu.append((now, cpu_seconds(runtime.pid)))
            window = [(t, c) for t, c in cpu if now - t <= stall]
            if now - began >= stall and window[-1][1] - window[0][1] < 0.05 * stall:
                break  # idle for the whole window
            time.sleep(1.0)
        for run_id in list(pending):
            if poll(run_id):
                pending.remove(run_id)
    return last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1000, help="deliveries per round, redeliveries included")
    parser.add_argument("--redeliveries", type=float, default=0.1, help="share of the deliveries that re-send an id")
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="bursts one after the other, each with new ids")
    parser.add_argument("--stall", type=float, default=60.0,
                        help="seconds of an idle runtime after which the runs not terminal are lost")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for every run to be terminal, at most")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--log", type=Path, help="copy the runtime's console log here when it stops")
    parser.add_argument("--state-dir", type=Path, help="where the runtime keeps its state (default: a temp dir)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="interlock-burst-") as temporary:
        state_dir = args.state_dir or Path(temporary) / "state"
        runtime = RuntimeProcess(state_dir).start()
        sampler = RssSampler(runtime.pid).start()
        start_rss = rss_bytes(runtime.pid)
        print(f"interlock run (pid {runtime.pid}) on {runtime.url}, state in {state_dir}; RSS at start "
              f"{mib(start_rss)}", flush=True)
        try:
            for round_number in range(1, args.rounds + 1):
                order = deliveries(args.tickets, args.redeliveries, f"burst{round_number}", rng)
                distinct = len(set(order))
                began = time.perf_counter()
                runs, answers, latencies = burst(runtime, order, args.senders)
                posted = time.perf_counter() - began
                statuses = wait_all(runtime, list(runs.values()), args.stall, args.timeout)
                settled = time.perf_counter() - began
                lost = sorted(run_id for run_id, status in statuses.items() if status not in TERMINAL)
                server_errors = sum(n for kind, n in answers.items() if kind[:1] == "5" or kind == "no answer")
                final = Counter(statuses.values())
                print(f"round {round_number}: {len(order)} deliveries ({distinct} distinct events) from "
                      f"{args.senders} senders in {posted:.1f} s; runs waited for until {settled:.0f} s", flush=True)
                print(f"  runs created {len(set(runs.values()))} (expected {distinct}), lost {len(lost)}, "
                      f"5xx or no answer {server_errors}; answers {dict(answers)}; final statuses {dict(final)}")
                p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
                print(f"  ingest p50 {p50:.0f} ms, p99 {p99:.0f} ms; RSS now {mib(rss_bytes(runtime.pid))}, "
                      f"peak so far {mib(sampler.peak)}", flush=True)
                if lost:
                    print(f"  lost runs (first 5): {lost[:5]}")
        finally:
            sampler.stop()
            runtime.stop()
            if args.log is not None and runtime.log_path is not None:
                shutil.copyfile(runtime.log_path, args.log)
        print(f"summary: RSS at start {mib(start_rss)}, peak {mib(sampler.peak)}, final {mib(sampler.last)} "
              f"over {args.rounds} round(s) of {args.tickets} deliveries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
