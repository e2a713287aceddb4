"""Cold-start benchmark: each function's init against the boto3 floor, measured in the same run.

For every function of the topology, a fresh interpreter imports its handler module (what Lambda does
at cold start, before the first invoke); the floor is a fresh interpreter running
``import boto3; boto3.client("sqs")``. Runs are interleaved (floor, f1, f2, ..., floor, f1, ...) so that
machine noise hits every candidate alike, and the median of each is reported as a ratio to the floor's.

Three numbers per function: ``import`` (time inside the interpreter around the import: the goal's
measure), ``+client`` (the import followed by ``boto3.client("dynamodb")``, which every function needs on
its first invoke: Interlock loads boto3 lazily, so this is the fuller picture of a cold start), and
``process`` (the whole interpreter for the import, start to exit). Goals (on ``import``): ingest <= 1.3x
the floor, every other function <= 1.6x.

The Powertools Tracer (X-Ray SDK) is off by default (see ``interlock.observability``); ``--sdk-tracing``
measures with it on.

    python benchmarks/cold_start.py [--runs 9] [--json]

This is a benchmark, not a test: it prints numbers and never fails a build.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "interlock"))

from interlock.topology import TOPOLOGY  # noqa: E402

GOALS = {"webhook_ingest": 1.3}
DEFAULT_GOAL = 1.6

FLOOR = "import boto3; boto3.client('sqs')"
PROBE = """
import sys, time
sys.path[:0] = {paths!r}
t0 = time.perf_counter()
{statement}
print(time.perf_counter() - t0)
"""

# What a deployed function finds in its environment (values are placeholders; nothing is called).
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
    "AWS_LAMBDA_FUNCTION_NAME": "benchmark",
    "POWERTOOLS_SERVICE_NAME": "benchmark",
    "POWERTOOLS_METRICS_NAMESPACE": "Interlock",
    "POWERTOOLS_TRACE_DISABLED": "false",
    "INTERLOCK_TABLE_NAME": "interlock-timeline",
    "INTERLOCK_INGEST_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/ingest",
    "INTERLOCK_STATE_MACHINE_SUPPORT_TRIAGE": "arn:aws:states:us-east-1:123456789012:stateMachine:x",
    "INTERLOCK_PUBLIC_BASE_URL": "https://example.execute-api.us-east-1.amazonaws.com/prod",
    "INTERLOCK_APPROVER_EMAIL": "approver@example.com",
    "INTERLOCK_SENDER_EMAIL": "interlock@example.com",
    "INTERLOCK_CRM_BASE_URL": "https://crm.example.com",
    "INTERLOCK_HELPDESK_BASE_URL": "https://helpdesk.example.com",
}


def _one(statement: str, sdk_tracing: bool = False) -> tuple[float, float]:
    code = PROBE.format(paths=[str(ROOT / "functions"), str(ROOT / "layers" / "interlock")], statement=statement)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLOCK_", "POWERTOOLS_", "AWS_"))}
    env.update(ENV)
    env["POWERTOOLS_TRACE_DISABLED"] = "false" if sdk_tracing else "true"
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    process = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"probe failed for {statement!r}:\n{out.stderr}")
    return float(out.stdout.strip().splitlines()[-1]), process


def measure(runs: int, sdk_tracing: bool) -> dict[str, dict[str, float]]:
    candidates = {"floor": FLOOR}
    for fn in TOPOLOGY.functions:
        candidates[fn.name] = f"import {fn.module}"
        candidates[f"{fn.name}+client"] = f"import {fn.module}; import boto3; boto3.client('dynamodb')"
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
    for statement in candidates.values():  # compile .pyc files and warm the page cache once
        _one(statement, sdk_tracing)
    for i in range(runs):
        print(f"run {i + 1}/{runs}", file=sys.stderr, flush=True)
        for name, statement in candidates.items():
            samples[name].append(_one(statement, sdk_tracing))
    return {
        name: {"import_s": statistics.median(v[0] for v in values),
               "process_s": statistics.median(v[1] for v in values)}
        for name, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--sdk-tracing", action="store_true", help="with the Powertools Tracer (X-Ray SDK) on")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    raw = measure(args.runs, args.sdk_tracing)
    floor = raw["floor"]
    rows = {}
    for fn in TOPOLOGY.functions:
        r, c = raw[fn.name], raw[f"{fn.name}+client"]
        rows[fn.name] = {
            "import_ms": r["import_s"] * 1000, "import_ratio": r["import_s"] / floor["import_s"],
            "client_ms": c["import_s"] * 1000, "client_ratio": c["import_s"] / floor["import_s"],
            "process_ms": r["process_s"] * 1000, "process_ratio": r["process_s"] / floor["process_s"],
            "goal": GOALS.get(fn.name, DEFAULT_GOAL),
        }
    if args.json:
        print(json.dumps({"floor_ms": floor["import_s"] * 1000, "functions": rows}, indent=2))
        return
    print(f"floor: {floor['import_s'] * 1000:.0f} ms import, {floor['process_s'] * 1000:.0f} ms process "
          f"({FLOOR!r}); SDK tracing {'on' if args.sdk_tracing else 'off'}")
    print(f"{'function':<22}{'import ms':>10}{'ratio':>7}{'+client ms':>12}{'ratio':>7}"
          f"{'process ms':>12}{'ratio':>7}{'goal':>6}  verdict")
    for name, r in rows.items():
        verdict = "ok" if r["import_ratio"] <= r["goal"] else "OVER"
        print(f"{name:<22}{r['import_ms']:>10.0f}{r['import_ratio']:>7.2f}{r['client_ms']:>12.0f}"
              f"{r['client_ratio']:>7.2f}{r['process_ms']:>12.0f}{r['process_ratio']:>7.2f}"
              f"{r['goal']:>6.1f}  {verdict}")
    print(f"\nmedian of {args.runs} fresh interpreters each; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
