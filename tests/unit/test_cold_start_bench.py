"""``benchmarks/cold_start.py`` runs, on the layer as built (a smoke test: tiny sizes, no timing asserted).

It needs a CPython 3.13 (the Lambda runtime's) and builds its twin of the layer with pip on the first run, as
``make bench`` does; without the interpreter it fails and says why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from interlock.topology import TOPOLOGY

from benchmarks import cold_start

ROOT = Path(__file__).resolve().parents[2]


def test_given_the_topology_then_every_function_has_its_probes_and_only_the_deciders_an_openai_one() -> None:
    setup = cold_start.Setup(python=None, layer=Path("/opt/python"), runtime=Path("/var/runtime"),  # type: ignore[arg-type]
                             task=Path("/var/task"))
    probes = cold_start.candidates(setup)

    ai = set(cold_start.deciders())
    expected = {"floor", "openai_sdk"}
    for fn in TOPOLOGY.functions:
        expected |= {fn.name, f"{fn.name}+client"}
        if fn.name in ai:
            expected |= {f"{fn.name}+openai", f"{fn.name}+openai+client"}
    assert set(probes) == expected
    assert probes["floor"][1] == ["/var/task", "/var/runtime"]  # boto3 alone: no layer
    assert all(paths == ["/var/task", "/opt/python", "/var/runtime"] for name, (_, paths, _) in probes.items()
               if name != "floor")  # Lambda's order
    assert cold_start.ingest_functions() <= {fn.name for fn in TOPOLOGY.functions}
    assert cold_start.ingest_functions()


def test_the_benchmark_runs_on_the_built_layer_and_the_layer_bytecode_is_used() -> None:
    some = sorted(cold_start.ingest_functions())[:1] + cold_start.deciders()[:1]
    done = subprocess.run([sys.executable, "benchmarks/cold_start.py", "--runs", "1", "--json", "--functions", *some],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)

    assert report["python"].startswith("3.13.")
    assert "with bytecode" in report["layer"]
    rows = report["functions"]
    assert set(rows) == set(some) | {f"{name}+openai" for name in some if name in cold_start.deciders()}
    # Not timings: whether each probe imported the layer's bytecode (nothing compiled from source outside
    # /var/task), and whether openai stayed out of every handler import.
    assert report["floor_compiled"] == 0
    assert {name: row["compiled"] for name, row in rows.items()} == dict.fromkeys(rows, 0)
    assert report["openai_loaded_by_import"] == []
    assert all(row["openai_loaded"] for name, row in rows.items() if name.endswith("+openai"))
