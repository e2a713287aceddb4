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

ROOT = Path(__file__).resolve().parents[2]
PATHS = [str(ROOT / "functions"), str(ROOT / "layers" / "interlock")]

# What a deployed function finds in its environment (placeholders: nothing is called), with a key configured.
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "unit-test",
    "AWS_SECRET_ACCESS_KEY": "unit-test",
    "AWS_LAMBDA_FUNCTION_NAME": "unit-test",
    "POWERTOOLS_SERVICE_NAME": "unit-test",
    "POWERTOOLS_METRICS_NAMESPACE": "Interlock",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "INTERLOCK_TABLE_NAME": "interlock-timeline",
    "INTERLOCK_INGEST_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/ingest",
    "INTERLOCK_STATE_MACHINE_SUPPORT_TRIAGE": "arn:aws:states:us-east-1:123456789012:stateMachine:x",
    "INTERLOCK_PUBLIC_BASE_URL": "https://example.execute-api.us-east-1.amazonaws.com/prod",
    "INTERLOCK_APPROVER_EMAIL": "approver@example.com",
    "INTERLOCK_SENDER_EMAIL": "interlock@example.com",
    "INTERLOCK_CRM_BASE_URL": "https://crm.example.com",
    "INTERLOCK_HELPDESK_BASE_URL": "https://helpdesk.example.com",
    "OPENAI_API_KEY": "unit-test-not-a-key",
    "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # never reached: no call is made
}

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
    assert {"step_classify", "step_draft_reply"} <= set(modules)

    seen = _probe(modules)

    assert list(seen) == modules
    loaded_by = [module for module, loaded in seen.items() if loaded]
    assert not loaded_by, f"importing {loaded_by[0]} loaded openai (the first module after which it was there)"


def test_given_the_first_decision_then_the_ai_step_loads_openai() -> None:
    # The control: the probe does see openai once the classify step picks its provider (the client is built,
    # nothing is sent), so the test above cannot pass by looking in the wrong place.
    seen = _probe(["step_classify"], after=(
        "from interlock.wiring import decision_runner\n"
        "assert decision_runner().provider().name == 'openai'\n"
        "seen['after the first decision'] = 'openai' in sys.modules"))

    assert seen == {"step_classify": False, "after the first decision": True}
