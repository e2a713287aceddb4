"""The cost benchmark runs (one run per path) and reports every path with a total: a smoke check that it executes.
No price or timing is asserted: that is the benchmark's to print (docs/cost.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_cost_benchmark_runs_each_path_and_prints_its_line_items() -> None:
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cost.py"), "--runs", "1", "--json"],
                         capture_output=True, text=True, timeout=240, check=False, cwd=REPO)

    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout)
    assert {"support_triage/automatic", "support_triage/approval", "sales_lead/automatic", "sales_lead/approval"} \
        <= set(results)
    for path, result in results.items():
        assert result["runs"] == 1, path
        assert result["per_run"]["lambda_invocations"] > 0 and result["per_run"]["dynamodb_wru"] > 0, path
        assert set(result["per_1m_runs"]) >= {"api_gateway", "lambda_duration", "dynamodb_writes", "ses"}, path
    for workflow in ("support_triage", "sales_lead"):
        assert results[f"{workflow}/approval"]["per_run"]["emails"] == 1, workflow
    assert results["support_triage/approval"]["per_run"]["standard_transitions"] > 0
    assert results["support_triage/automatic"]["per_run"]["standard_transitions"] == 0
