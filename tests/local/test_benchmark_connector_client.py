"""The connector-client benchmark runs (tiny sizes; no timing is asserted: numbers are the benchmark's to print)."""

from __future__ import annotations

import json

import pytest

from benchmarks import connector_client


def test_the_connector_client_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert connector_client.main(["--calls", "2", "--rounds", "1", "--json"]) == 0

    assert set(json.loads(capsys.readouterr().out)) == {"new_client_ms", "shared_client_ms", "ratio"}
