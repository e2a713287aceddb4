"""Cold start is a feature: the openai SDK (about a second to import) loads only when a step calls a model.

Importing a handler module is what Lambda does at cold start, so every handler of the topology is imported
in a fresh interpreter, with an API key configured (the case where a model will be called), and ``openai``
must not be in ``sys.modules`` afterwards: not for the functions that never call a model, and not for
the AI steps either until their first decision. This is a correctness property, not a timing
(``benchmarks/cold_start.py`` has the timings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from interlock.topology import TOPOLOGY

from benchmarks import cold_start

ROOT = Path(__file__).resolve().parents[2]
PATHS = [str(ROOT / "functions"), str(ROOT / "layers" / "interlock")]

# What a deployed function finds in its environment (the benchmark's placeholders: nothing is called), with a
# key configured and an endpoint no call will reach.
ENV = {**cold_start.ENV, "POWERTOOLS_TRACE_DISABLED": "true", "OPENAI_API_KEY": "unit-test-not-a-key",
       "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}

# Imports the modules one after another; after each, whether openai has been loaded. One JSON line.
PROBE = """
import importlib, json, sys
sys.path[:0] = {paths!r}
seen = {{}}
for module in {modules!r}:
    importlib.import_module(module)
    seen[module] = "openai" in sys.modules
{after}
print(json.dumps(seen))
"""


def _probe(modules: list[str], after: str = "") -> dict[str, bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLOCK_", "POWERTOOLS_", "AWS_", "OPENAI_"))}
    env.update(ENV)
    code = PROBE.format(paths=PATHS, modules=modules, after=after)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_given_a_key_configured_when_every_handler_module_is_imported_then_openai_is_not_loaded() -> None:
    modules = [fn.module for fn in TOPOLOGY.functions]
    assert "job_decide" in modules

    seen = _probe(modules)

    assert list(seen) == modules
    loaded_by = [module for module, loaded in seen.items() if loaded]
    assert not loaded_by, f"importing {loaded_by[0]} loaded openai (the first module after which it was there)"


def test_given_the_first_decision_then_the_ai_step_loads_openai() -> None:
    # The control: the probe does see openai once the classify step picks its provider (the client is built,
    # nothing is sent), so the test above cannot pass by looking in the wrong place.
    seen = _probe(["job_decide"], after=(
        "from interlock.wiring import decision_runner\n"
        "assert decision_runner().provider().name == 'openai'\n"
        "seen['after the first decision'] = 'openai' in sys.modules"))

    assert seen == {"job_decide": False, "after the first decision": True}
