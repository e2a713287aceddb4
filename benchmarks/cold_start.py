"""Cold-start benchmark: each function's init from the layer as built, against the boto3 floor, in the same run.

What is measured is what Lambda runs: CPython 3.13 (the runtime's; found as ``infra/build_layer.py`` finds the
interpreter that compiles the layer), with only these on ``sys.path`` before the standard library, in
Lambda's order:

- a copy of ``functions/`` without any ``.pyc`` (the ``/var/task`` of a function: its code asset excludes
  bytecode, so the handler module itself is compiled at each cold start, as on Lambda);
- the layer, built by ``infra/build_layer.py`` with the same pins and the same bytecode step as the deployed
  one, but for this machine's platform (``.build/bench/layer``): the deployed layer's binary wheels
  (pydantic_core, jiter, wrapt) are for arm64 and cannot be imported here. The ``/opt/python`` of a function;
- what the Lambda runtime provides and the layer leaves out: boto3, botocore and s3transfer at the venv's
  versions (with their dependencies at the venv's versions), installed with pip for python3.13 and compiled,
  outside the layer (``.build/bench/runtime``).

Each probe is a fresh ``python3.13 -I -S -B``: no site-packages of any kind (neither the dev venv's nor the
interpreter's), and no bytecode written, as on Lambda's read-only ``/opt`` and ``/var/task``. The probe counts
the modules it compiles from source outside ``/var/task`` (``compiled``): 0 when the layer's bytecode is used.
``--without-bytecode`` measures a twin built without the bytecode step (the layer as it was before it had one).

For every function of the topology, a fresh interpreter imports its handler module (what Lambda does
at cold start, before the first invoke); the floor is a fresh interpreter running
``import boto3; boto3.client("sqs")`` with the runtime's boto3 and no layer. Runs are interleaved
(floor, f1, f2, ..., floor, f1, ...) so that machine noise hits every candidate alike, and the median of each
is reported as a ratio to the floor's.

Three numbers per function: ``import`` (time inside the interpreter around the import: the goal's
measure), ``+client`` (the import followed by ``boto3.client("dynamodb")``, which every function needs on
its first invoke: Interlock loads boto3 lazily, so this is the fuller picture of a cold start), and
``process`` (the whole interpreter for the import, start to exit). Goals (on ``import``): ingest <= 1.3x
the floor, every other function <= 1.6x.

The functions that call a model (granted ``AI_KEY_READ``) get a second row, ``<function>+openai``: the import
followed by what their first decision does on AWS before it sends anything. There it first reads the key from
Secrets Manager (``ProviderChoice._stored_key``: ``parameters.get_secret`` imports Powertools' parameters
utility and builds a ``SecretsProvider``, a secretsmanager client on a new boto3 session), then builds the
provider, ``decision_runner().provider()`` (imports the openai SDK and builds its client). The probe runs
exactly that: ``parameters.SecretsProvider()``, then ``provider()`` with ``INTERLOCK_AI_API_KEY_SECRET`` unset
and an API key in ``OPENAI_API_KEY``, so the provider takes the key from the environment and nothing touches
the network. The GetSecretValue round trip itself (TLS to Secrets Manager and back) is not measured.

No step that calls a model can start faster than the SDK it imports, so the goal of a ``+openai`` row is the
SDK alone (``import openai`` and a client, measured in the same run and printed under the floor) plus the 1.6x
every other function is allowed: the step may pay for the SDK, and for nothing heavier than any other
function. The goal makes no allowance for the secret's client (boto3's import and a client, about the
floor), which the plain rows' ``import`` column does not include (see docs/cold-start.md).

Importing a handler must not load openai, the AI steps' included (it loads on the first decision): the
probe reports whether ``openai`` is in ``sys.modules`` after each import, and one line sums it up.

The Powertools Tracer (X-Ray SDK) is off by default (see ``interlock.observability``); ``--sdk-tracing``
measures with it on.

    python benchmarks/cold_start.py [--runs 9] [--json] [--sdk-tracing] [--without-bytecode] [--functions NAME ...]

This is a benchmark, not a test: it prints numbers and never fails a build.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "interlock"))
sys.path.insert(0, str(ROOT))

from interlock.topology import TOPOLOGY, Access  # noqa: E402

from infra import build_layer  # noqa: E402

INGEST_GOAL = 1.3  # the function(s) behind POST /webhooks/{source}
DEFAULT_GOAL = 1.6

BENCH_DIR = build_layer.BUILD_DIR / "bench"
TASK_DIR = BENCH_DIR / "task"  # /var/task: a copy of functions/ without bytecode
RUNTIME_DIR = BENCH_DIR / "runtime"  # what the Lambda runtime provides: boto3, botocore, s3transfer
RUNTIME_STAMP = BENCH_DIR / "runtime.stamp"

FLOOR = "import boto3; boto3.client('sqs')"
OPENAI_SDK = "import openai; openai.OpenAI(max_retries=0)"
# What an AI step's first decision does on AWS before it sends anything, in its order: the secret's client
# (what parameters.get_secret builds before its GetSecretValue call, which is not made here), then choose the
# provider and build its client (the key from OPENAI_API_KEY, INTERLOCK_AI_API_KEY_SECRET being unset).
SECRET_CLIENT = "from aws_lambda_powertools.utilities import parameters; parameters.SecretsProvider()"
FIRST_DECISION = f"{SECRET_CLIENT}; from interlock.wiring import decision_runner; decision_runner().provider()"
CLIENT = "import boto3; boto3.client('dynamodb')"
# Run by python3.13 -I -S -B: sys.path is the standard library only, then the probe puts Lambda's directories
# first. Every module compiled from source (SourceFileLoader.source_to_code: its .pyc is missing or unusable)
# outside /var/task is counted.
PROBE = """
import sys, time
from importlib.machinery import SourceFileLoader
sys.path[:0] = {paths!r}
compiled = []
_source_to_code = SourceFileLoader.source_to_code
def _counted(self, data, path, *args, **kwargs):
    compiled.append(path)
    return _source_to_code(self, data, path, *args, **kwargs)
SourceFileLoader.source_to_code = _counted
t0 = time.perf_counter()
{statement}
elapsed = time.perf_counter() - t0
import json
print(json.dumps({{"seconds": elapsed, "openai": "openai" in sys.modules,
                  "compiled": [p for p in compiled if not p.startswith({task!r})],
                  "writes_bytecode": not sys.dont_write_bytecode}}))
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
# With a key configured, the AI steps use the openai SDK (it reads the key itself; nothing is sent). No
# INTERLOCK_AI_API_KEY_SECRET (_one drops every INTERLOCK_ variable but ENV's): with it, provider() would call
# Secrets Manager.
WITH_KEY = {"OPENAI_API_KEY": "benchmark"}


def deciders() -> list[str]:
    """The functions that call a model: those granted the AI provider's key."""
    return TOPOLOGY.granted(Access.AI_KEY_READ)


def ingest_functions() -> set[str]:
    """The functions that receive the providers' webhooks (their goal is tighter: a sender waits on them)."""
    return {r.function for r in TOPOLOGY.routes if r.method == "POST" and r.path.startswith("/webhooks/")}


# -- what the probes import: twins of Lambda's directories -----------------------------------------------------


def _runtime_distributions() -> dict[str, str]:
    """What the Lambda runtime provides (boto3, botocore, s3transfer) and what they need, at the versions of
    the venv running this (the versions the tests run with)."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = {key: str(value) for key, value in default_environment().items()}
    env.update(python_version=build_layer.PYTHON_VERSION, extra="")
    found: dict[str, str] = {}
    todo = list(build_layer.RUNTIME_PROVIDED)
    while todo:
        name = build_layer._canonical(todo.pop())
        if name in found:
            continue
        found[name] = metadata.version(name)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return dict(sorted(found.items()))


def build_runtime(python: build_layer.RuntimePython, platform_args: tuple[str, ...]) -> Path:
    """``.build/bench/runtime``: the runtime's boto3 for python3.13 on this platform, compiled (cached)."""
    pins = [f"{name}=={version}" for name, version in _runtime_distributions().items()]
    digest = json.dumps({"pins": pins, "pip": platform_args, "bytecode": python.bytecode_settings()})
    if RUNTIME_DIR.is_dir() and RUNTIME_STAMP.is_file() and RUNTIME_STAMP.read_text() == digest:
        return RUNTIME_DIR
    print(f"[bench] installing the runtime's {', '.join(pins)} into {RUNTIME_DIR.relative_to(ROOT)}",
          file=sys.stderr, flush=True)
    shutil.rmtree(RUNTIME_DIR, ignore_errors=True)
    RUNTIME_STAMP.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
           "--no-deps", "--target", str(RUNTIME_DIR), *platform_args, *pins]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pip could not install the runtime's boto3 for the benchmark:\n{done.stderr}")
    shutil.rmtree(RUNTIME_DIR / "bin", ignore_errors=True)
    build_layer.compile_bytecode(python, RUNTIME_DIR, RUNTIME_DIR, prefix="/var/runtime")
    build_layer.check_bytecode(RUNTIME_DIR, python)
    RUNTIME_STAMP.write_text(digest)
    return RUNTIME_DIR


def build_task() -> Path:
    """``.build/bench/task``: the functions' code as its asset ships (no bytecode), afresh."""
    shutil.rmtree(TASK_DIR, ignore_errors=True)
    shutil.copytree(ROOT / "functions", TASK_DIR, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    return TASK_DIR


@dataclass(frozen=True)
class Setup:
    """The interpreter and the directories the probes use."""

    python: build_layer.RuntimePython
    layer: Path  # /opt/python
    runtime: Path  # the runtime's boto3
    task: Path  # /var/task


def prepare(with_bytecode: bool) -> Setup:
    """Build (or reuse) the twins; the interpreter and the directories the probes use."""
    try:
        python = build_layer.runtime_python(allow_uncompiled=False)
        assert python is not None
        root = BENCH_DIR if with_bytecode else BENCH_DIR / "without-bytecode"
        target = build_layer.host_twin(root)
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the results' (--json)
            layer = build_layer.build(target=target, with_bytecode=with_bytecode) / "python"
    except build_layer.LayerBuildError as exc:
        raise SystemExit(f"[bench] cannot build the layer to measure: {exc}") from None
    return Setup(python, layer, build_runtime(python, target.pip_args), build_task())


# -- the probes --------------------------------------------------------------------------------------------------


def _one(setup: Setup, statement: str, paths: list[str], sdk_tracing: bool = False,
         extra_env: dict[str, str] | None = None) -> tuple[float, float, bool, int]:
    """One fresh interpreter: seconds inside it for ``statement``, seconds for the whole process, whether
    ``openai`` was in ``sys.modules`` afterwards, and how many modules it compiled outside /var/task."""
    code = PROBE.format(paths=paths, statement=statement, task=str(setup.task))
    # A developer's own OPENAI_* variables never reach a probe: only the +openai rows have a (fake) key.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("INTERLOCK_", "POWERTOOLS_", "AWS_", "OPENAI_", "PYTHON"))}
    env.update(ENV)
    env.update(extra_env or {})
    env["POWERTOOLS_TRACE_DISABLED"] = "false" if sdk_tracing else "true"
    start = time.perf_counter()
    out = subprocess.run([setup.python.executable, "-I", "-S", "-B", "-c", code], capture_output=True, text=True,
                         env=env, check=False)
    process = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"probe failed for {statement!r}:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["writes_bytecode"]:
        raise SystemExit("the probe's interpreter would write bytecode (Lambda's /opt and /var/task are read-only)")
    return float(result["seconds"]), process, bool(result["openai"]), len(result["compiled"])


def candidates(setup: Setup, only: set[str] | None = None,
               ) -> dict[str, tuple[str, list[str], dict[str, str]]]:
    """Every probe of a run, by name: its statement, its sys.path and the environment it adds."""
    task, layer, runtime = str(setup.task), str(setup.layer), str(setup.runtime)
    function = [task, layer, runtime]  # /var/task, /opt/python, the runtime's boto3: Lambda's order
    found: dict[str, tuple[str, list[str], dict[str, str]]] = {
        "floor": (FLOOR, [task, runtime], {}),  # a function with boto3 and no layer
        "openai_sdk": (OPENAI_SDK, function, WITH_KEY),
    }
    ai = set(deciders())
    for fn in TOPOLOGY.functions:
        if only is not None and fn.name not in only:
            continue
        found[fn.name] = (f"import {fn.module}", function, {})
        found[f"{fn.name}+client"] = (f"import {fn.module}; {CLIENT}", function, {})
        if fn.name in ai:
            found[f"{fn.name}+openai"] = (f"import {fn.module}; {FIRST_DECISION}", function, WITH_KEY)
            found[f"{fn.name}+openai+client"] = (f"import {fn.module}; {FIRST_DECISION}; {CLIENT}", function,
                                                 WITH_KEY)
    return found


def measure(setup: Setup, runs: int, sdk_tracing: bool, only: set[str] | None = None,
            ) -> dict[str, dict[str, float]]:
    probes = candidates(setup, only)
    samples: dict[str, list[tuple[float, float, bool, int]]] = {name: [] for name in probes}
    for statement, paths, extra_env in probes.values():  # warm the page cache once (nothing is written)
        _one(setup, statement, paths, sdk_tracing, extra_env)
    for i in range(runs):
        print(f"run {i + 1}/{runs}", file=sys.stderr, flush=True)
        for name, (statement, paths, extra_env) in probes.items():
            samples[name].append(_one(setup, statement, paths, sdk_tracing, extra_env))
    return {
        name: {"import_s": statistics.median(v[0] for v in values),
               "process_s": statistics.median(v[1] for v in values),
               "openai_loaded": any(v[2] for v in values),
               "compiled": max(v[3] for v in values)}
        for name, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--sdk-tracing", action="store_true", help="with the Powertools Tracer (X-Ray SDK) on")
    parser.add_argument("--without-bytecode", action="store_true",
                        help="measure a twin of the layer built without its bytecode (as it was before)")
    parser.add_argument("--functions", nargs="+", metavar="NAME", help="only these functions of the topology")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    only = set(args.functions) if args.functions else None
    unknown = (only or set()) - {fn.name for fn in TOPOLOGY.functions}
    if unknown:
        parser.error(f"no function named {', '.join(sorted(unknown))} in the topology")
    setup = prepare(with_bytecode=not args.without_bytecode)
    python = setup.python
    raw = measure(setup, args.runs, args.sdk_tracing, only)
    floor, sdk = raw["floor"], raw["openai_sdk"]

    def row(name: str, goal: float) -> dict[str, float | bool]:
        r, c = raw[name], raw[f"{name}+client"]
        return {
            "import_ms": r["import_s"] * 1000, "import_ratio": r["import_s"] / floor["import_s"],
            "client_ms": c["import_s"] * 1000, "client_ratio": c["import_s"] / floor["import_s"],
            "process_ms": r["process_s"] * 1000, "process_ratio": r["process_s"] / floor["process_s"],
            "goal": goal, "openai_loaded": r["openai_loaded"], "compiled": r["compiled"],
        }

    ai = set(deciders())
    ingest = ingest_functions()
    sdk_ratio = sdk["import_s"] / floor["import_s"]
    ai_goal = round(DEFAULT_GOAL + sdk_ratio, 1)  # the SDK alone, plus what any function may add
    rows = {}
    plain = [fn.name for fn in TOPOLOGY.functions if only is None or fn.name in only]
    for name in plain:
        rows[name] = row(name, INGEST_GOAL if name in ingest else DEFAULT_GOAL)
        if name in ai:
            rows[f"{name}+openai"] = row(f"{name}+openai", ai_goal)
    loaded = [name for name in plain if rows[name]["openai_loaded"]]
    not_loaded = [name for name in rows if name.endswith("+openai") and not rows[name]["openai_loaded"]]
    layer = (f"{setup.layer.relative_to(ROOT)} "
             f"({'WITHOUT' if args.without_bytecode else 'with'} bytecode)")
    if args.json:
        print(json.dumps({"python": python.version, "layer": layer, "floor_ms": floor["import_s"] * 1000,
                          "floor_compiled": floor["compiled"], "openai_sdk_ms": sdk["import_s"] * 1000,
                          "openai_sdk_ratio": sdk_ratio,
                          "functions": rows, "openai_loaded_by_import": loaded}, indent=2))
        return
    print(f"python {python.version} -I -S -B ({python.executable}); layer {layer}; "
          f"SDK tracing {'on' if args.sdk_tracing else 'off'}")
    print(f"floor: {floor['import_s'] * 1000:.0f} ms import, {floor['process_s'] * 1000:.0f} ms process "
          f"({FLOOR!r}, the runtime's boto3, no layer)")
    print(f"openai SDK alone: {sdk['import_s'] * 1000:.0f} ms import, ratio {sdk_ratio:.2f} ({OPENAI_SDK!r}); "
          f"+openai rows: the import, then {FIRST_DECISION!r} with OPENAI_API_KEY set (no GetSecretValue), goal "
          f"{DEFAULT_GOAL} + {sdk_ratio:.2f}")
    width = max(22, *(len(name) + 1 for name in rows))
    print(f"{'function':<{width}}{'import ms':>10}{'ratio':>7}{'+client ms':>12}{'ratio':>7}"
          f"{'process ms':>12}{'ratio':>7}{'goal':>6}{'compiled':>10}  verdict")
    for name, r in rows.items():
        verdict = "ok" if r["import_ratio"] <= r["goal"] else "OVER"
        print(f"{name:<{width}}{r['import_ms']:>10.0f}{r['import_ratio']:>7.2f}{r['client_ms']:>12.0f}"
              f"{r['client_ratio']:>7.2f}{r['process_ms']:>12.0f}{r['process_ratio']:>7.2f}"
              f"{r['goal']:>6.1f}{r['compiled']:>10}  {verdict}")
    print("\ncompiled: modules compiled from source outside /var/task during the probe (0: the layer's bytecode "
          "was used; the handler module itself is compiled, as on Lambda)")
    if loaded:
        print(f"openai in sys.modules after importing a handler: YES, {', '.join(loaded)} (must be none)")
    else:
        print(f"openai in sys.modules after importing a handler: no, for all {len(plain)} functions (ok)")
    if not_loaded:  # the +openai rows would measure nothing
        print(f"openai NOT loaded by the first decision of: {', '.join(not_loaded)} (the +openai rows are wrong)")
    print(f"median of {args.runs} fresh interpreters each; python {python.version}")


if __name__ == "__main__":
    main()
