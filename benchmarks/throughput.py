"""Throughput benchmark of the local runtime: completed automatic runs per second at 1, 4 and 16 senders.

``interlock run`` is started as ``make run`` starts it (a subprocess, on a free port, with a state directory of
its own and the offline AI provider). Each sender is a closed loop: it posts a signed ``form support_ticket``
(what ``interlock send form`` posts; it completes on the automatic path), polls ``GET /runs/<id>`` until the run
is terminal, and sends the next one. The polls of all senders together are held to ``--poll-rate`` a second
(20): each is a Lambda invocation and a query in the runtime, and unbounded polling would be the load measured;
the end-to-end time is therefore measured to within about ``senders / poll-rate`` seconds. Per concurrency
level it prints the completed runs per second over the level (first send to last completion), the end-to-end
time of a run (POST sent to terminal status seen) at p50 and p95, and the runtime process's CPU seconds per run
(from /proc).

Then the same again with ``--stored`` runs already stored (10,000 by default). They are seeded through the saved
local state, the way a restart finds them: the runtime is stopped (Ctrl-C: it saves its state), each run the
first phase completed is cloned under new event ids (every item that names its run, its timeline, its kept
event, its dedupe record, with the run id and event id replaced, the run id derived from the new dedupe key as
the ingest derives it) until the state holds ``--stored`` runs, and the runtime is started again on it.

    python benchmarks/throughput.py [--concurrency 1,4,16] [--runs 100] [--stored 10000] [--timeout 120]

This is a benchmark, not a test: it prints numbers and never fails a build (a run that does not finish within
``--timeout`` is counted as not completed, and said so).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from interlock.local.persistence import state_path
from interlock.models import run_id_for
from local_harness import (
    TERMINAL,
    PollBudget,
    RuntimeProcess,
    Tickets,
    cpu_seconds,
    mib,
    percentile,
    rss_bytes,
    run_status,
    wait_terminal,
)


@dataclass
class Level:
    senders: int
    completed: int
    not_completed: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu: float
    rss: int
    run_ids: dict[str, str]  # run id -> the event id it was sent with

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def line(self, label: str) -> str:
        p50 = percentile(self.latencies, 50)
        p95 = percentile(self.latencies, 95)
        cpu = self.cpu / self.completed if self.completed else float("nan")
        extra = ""
        if self.not_completed or self.errors:
            extra = f"  ({self.not_completed} not terminal in time, {self.errors} not accepted)"
        return (f"{label:<14} senders={self.senders:<3} runs={self.completed:<5} {self.per_second:6.2f} runs/s  "
                f"p50 {p50:6.3f} s  p95 {p95:6.3f} s  cpu {cpu * 1000:6.1f} ms/run  rss {mib(self.rss)}{extra}")


class Quota:
    """The tickets a level sends, shared by its senders: :meth:`take` is True while one is left (and takes it)."""

    def __init__(self, tickets: int) -> None:
        self._left = tickets
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def post_ticket(tickets: Tickets, client: httpx.Client) -> tuple[int, dict[str, Any], str]:
    """POST one ticket with a new event id: its status (0 if it could not be sent), its answer and its event id."""
    event_id = f"msg_bench_{time.time_ns()}_{threading.get_ident()}"
    try:
        status, answer, _ = tickets.post(client, event_id)
    except httpx.HTTPError:
        return 0, {}, event_id
    return status, answer, event_id


def run_level(runtime: RuntimeProcess, senders: int, runs: int, timeout: float, poll_rate: float = 20.0) -> Level:
    """``runs`` tickets from ``senders`` closed-loop senders, polling at most ``poll_rate`` times a second in all;
    what it measured."""
    tickets = Tickets(runtime.url)
    budget = PollBudget(poll_rate)
    lock = threading.Lock()
    quota = Quota(runs)
    latencies: list[float] = []
    run_ids: dict[str, str] = {}
    counts = {"completed": 0, "not_completed": 0, "errors": 0}
    finished_at = [0.0]

    def sender() -> None:
        with httpx.Client(timeout=60) as client:
            while quota.take():
                started = time.perf_counter()
                status, answer, event_id = post_ticket(tickets, client)
                run_id = answer.get("run_id")
                if status != 202 or not run_id:
                    with lock:
                        counts["errors"] += 1
                    continue
                try:
                    final = wait_terminal(client, runtime.url, run_id, timeout, budget)
                except httpx.HTTPError:
                    final = None
                done = time.perf_counter()
                with lock:
                    if final is None:
                        counts["not_completed"] += 1
                    else:
                        counts["completed"] += 1
                        latencies.append(done - started)
                        run_ids[run_id] = event_id
                        finished_at[0] = max(finished_at[0], done)

    cpu_before = cpu_seconds(runtime.pid)
    began = time.perf_counter()
    threads = [threading.Thread(target=sender, name=f"sender-{i}") for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = finished_at[0] or time.perf_counter()
    return Level(senders, counts["completed"], counts["not_completed"], counts["errors"], ended - began,
                 latencies, cpu_seconds(runtime.pid) - cpu_before, rss_bytes(runtime.pid), run_ids)


@dataclass
class Sustained:
    senders: int
    accepted: int
    completed: int
    errors: int
    seconds: float  # first ticket accepted to last run completed, by the runtime's own timestamps
    steady: float  # completed runs per second between the 10th and the 90th percentile completion
    latencies: list[float]  # received to completed, by the runtime's timestamps (queueing included)
    cpu: float

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def line(self, label: str) -> str:
        cpu = self.cpu / self.completed if self.completed else float("nan")
        extra = ""
        if self.completed < self.accepted or self.errors:
            extra = f"  ({self.accepted - self.completed} not terminal in time, {self.errors} not accepted)"
        return (f"{label:<14} senders={self.senders:<3} runs={self.completed:<5} {self.per_second:6.2f} runs/s  "
                f"steady {self.steady:6.2f} runs/s  received-to-done p50 {percentile(self.latencies, 50):6.3f} s  "
                f"p95 {percentile(self.latencies, 95):6.3f} s  cpu {cpu * 1000:6.1f} ms/run{extra}")


def _when(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def run_sustained(runtime: RuntimeProcess, senders: int, runs: int, timeout: float) -> Sustained:
    """``runs`` tickets from ``senders`` senders posting as a webhook provider posts (the next one as soon as the
    last is answered 202, not waiting for its run), then every run read once it is done: how many runs a second
    the runtime completes when it has more than it can do. The times are the runtime's own (each run's
    ``created_at`` and, once terminal, ``updated_at``), so no poll's timing is in them, and the only polls while
    it works are one a second on the last run accepted."""
    tickets = Tickets(runtime.url)
    lock = threading.Lock()
    quota = Quota(runs)
    accepted: list[str] = []
    errors = [0]

    def sender() -> None:
        with httpx.Client(timeout=60) as client:
            while quota.take():
                status, answer, _ = post_ticket(tickets, client)
                with lock:
                    if status == 202 and answer.get("run_id"):
                        accepted.append(str(answer["run_id"]))
                    else:
                        errors[0] += 1

    cpu_before = cpu_seconds(runtime.pid)
    threads = [threading.Thread(target=sender, name=f"sender-{i}") for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done: dict[str, tuple[float, float]] = {}  # run id -> (received, completed)
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=60) as client:
        pending = list(accepted)
        while pending and time.monotonic() < deadline:
            last = pending[-1]  # the runs are worked through about in order: the last one done, (nearly) all are
            if run_status(client, runtime.url, last) not in TERMINAL:
                time.sleep(1.0)
                continue
            still: list[str] = []
            for run_id in pending:
                view = client.get(f"{runtime.url}/runs/{run_id}").json()
                if view.get("status") in TERMINAL:
                    done[run_id] = (_when(view["created_at"]), _when(view["updated_at"]))
                else:
                    still.append(run_id)
            pending = still
            if pending:
                time.sleep(1.0)
    cpu = cpu_seconds(runtime.pid) - cpu_before
    if not done:
        return Sustained(senders, len(accepted), 0, errors[0], 0.0, 0.0, [], cpu)
    first = min(received for received, _ in done.values())
    ends = sorted(completed for _, completed in done.values())
    low, high = ends[len(ends) // 10], ends[(len(ends) * 9) // 10]
    in_window = sum(1 for end in ends if low < end <= high)
    steady = in_window / (high - low) if high > low else 0.0
    latencies = [completed - received for received, completed in done.values()]
    return Sustained(senders, len(accepted), len(done), errors[0], ends[-1] - first, steady, latencies, cpu)


# -- seeding stored runs --------------------------------------------------------------------------------------------


def seed_stored_runs(state_file: Path, templates: dict[str, str], target: int) -> int:
    """Clone the completed runs ``templates`` (run id -> event id) in the saved state until it holds ``target``
    runs; the number of runs it holds then."""
    document = json.loads(state_file.read_text())
    # The timeline table; the workflows' own tables (interlock-table-<name>) are left as they are.
    timelines = [items for name, items in document["tables"].items() if not name.startswith("interlock-table-")]
    if len(timelines) != 1:
        raise SystemExit("the saved state does not have exactly one timeline table")
    (table,) = timelines
    stored = sum(1 for item in table if item["sk"]["S"] == "#RUN")
    items_of: dict[str, list[str]] = {}
    for run_id in templates:
        texts = [json.dumps(item) for item in table]
        items_of[run_id] = [text for text in texts if run_id in text or templates[run_id] in text]
    sources = [(run_id, event_id) for run_id, event_id in templates.items() if items_of[run_id]]
    if not sources:
        raise SystemExit("no completed run to clone was found in the saved state")
    clone = 0
    while stored < target:
        run_id, event_id = sources[clone % len(sources)]
        new_event = f"msg_seed_{clone:07d}"
        dedupe = _dedupe_key(items_of[run_id], event_id)
        new_run = run_id_for(dedupe.replace(event_id, new_event))
        for text in items_of[run_id]:
            table.append(json.loads(text.replace(run_id, new_run).replace(event_id, new_event)))
        stored += 1
        clone += 1
    state_file.write_text(json.dumps(document))
    return stored


def _dedupe_key(texts: list[str], event_id: str) -> str:
    for text in texts:
        item: dict[str, Any] = json.loads(text)
        pk = item["pk"]["S"]
        if pk.startswith("DEDUPE#") and event_id in pk:
            return str(pk.removeprefix("DEDUPE#"))
    raise SystemExit(f"no dedupe record names {event_id}")


# -- main -------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,4,16", help="sender counts, comma-separated (1,4,16)")
    parser.add_argument("--runs", type=int, default=100, help="runs per level (at least the level's senders)")
    parser.add_argument("--warmup", type=int, default=5, help="runs sent first and not counted (warm functions)")
    parser.add_argument("--stored", type=int, default=10_000,
                        help="runs already stored in the second phase (0: skip it)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a run may take to finish")
    parser.add_argument("--poll-rate", type=float, default=20.0,
                        help="GET /runs/<id> per second, all senders together (the polls are load too)")
    parser.add_argument("--sustained", type=int, default=600,
                        help="tickets posted as providers post them, at the highest sender count (0: skip it)")
    parser.add_argument("--state-dir", type=Path, help="where the runtime keeps its state (default: a temp dir)")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]

    with tempfile.TemporaryDirectory(prefix="interlock-throughput-") as temporary:
        state_dir = args.state_dir or Path(temporary) / "state"
        print(f"interlock run: state in {state_dir}; {args.runs} runs per level, senders {levels}", flush=True)
        results: list[tuple[str, Level | Sustained]] = []
        templates: dict[str, str] = {}
        runtime = RuntimeProcess(state_dir).start()
        try:
            if args.warmup:
                run_level(runtime, 1, args.warmup, args.timeout)
            for senders in levels:
                level = run_level(runtime, senders, max(args.runs, senders), args.timeout, args.poll_rate)
                templates.update(level.run_ids)
                results.append(("fresh", level))
                print(level.line("fresh"), flush=True)
            if args.sustained > 0:
                sustained = run_sustained(runtime, max(levels), args.sustained, max(args.timeout, 600.0))
                results.append(("fresh, sustained", sustained))
                print(sustained.line("fresh, sustained"), flush=True)
        finally:
            runtime.stop()
        if args.stored > 0 and templates:
            started = time.perf_counter()
            held = seed_stored_runs(state_path(state_dir), dict(list(templates.items())[:50]), args.stored)
            runtime = RuntimeProcess(state_dir, port=runtime.port).start(timeout=600)
            print(f"seeded the saved state to {held} stored runs and restarted on it in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            try:
                if args.warmup:
                    run_level(runtime, 1, args.warmup, args.timeout)
                for senders in levels:
                    level = run_level(runtime, senders, max(args.runs, senders), args.timeout, args.poll_rate)
                    results.append((f"{held} stored", level))
                    print(level.line(f"{held} stored"), flush=True)
                if args.sustained > 0:
                    sustained = run_sustained(runtime, max(levels), args.sustained, max(args.timeout, 600.0))
                    results.append((f"{held} stored, sustained", sustained))
                    print(sustained.line(f"{held} stored, sustained"), flush=True)
            finally:
                runtime.stop()
        print("\nsummary: completed runs/s, end-to-end p50/p95, runtime CPU per run")
        for label, measured in results:
            print("  " + measured.line(label))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
