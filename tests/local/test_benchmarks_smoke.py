"""Smoke runs of the local runtime's benchmarks at tiny sizes: each starts `interlock run`, does its work and prints
its summary. Nothing here measures anything: the numbers are the benchmarks' to print (docs/local-performance.md)."""

from __future__ import annotations

import pytest

from benchmarks import burst, stream_latency, throughput

pytestmark = [pytest.mark.smoke, pytest.mark.e2e]


def test_the_throughput_benchmark_runs_each_level_fresh_and_with_runs_stored(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert throughput.main(["--concurrency", "1,2", "--runs", "2", "--warmup", "0", "--stored", "25",
                            "--sustained", "4", "--timeout", "90"]) == 0

    out = capsys.readouterr().out
    summary = out.split("summary:", 1)[1].splitlines()[1:]
    assert [line.split("senders=")[0].strip() for line in summary] == [
        "fresh", "fresh", "fresh, sustained", "25 stored", "25 stored", "25 stored, sustained"]
    assert all("runs/s" in line and "p50" in line for line in summary)
    assert all("runs=4 " in line and "steady" in line for line in summary if "sustained" in line)


def test_the_burst_benchmark_sends_its_deliveries_and_reports_every_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert burst.main(["--tickets", "10", "--senders", "2", "--timeout", "90"]) == 0

    out = capsys.readouterr().out
    assert "runs created 9 (expected 9)" in out  # one run per distinct event: the redelivery is a duplicate
    assert "summary: RSS at start" in out


def test_the_stream_latency_benchmark_follows_a_streamed_answer_to_its_end(capsys: pytest.CaptureFixture[str]) -> None:
    assert stream_latency.main(["--messages", "1", "--timeout", "90"]) == 0

    out = capsys.readouterr().out
    assert "message 1: 21 pieces in " in out and "first piece  p50 " in out and "the design's bound" in out
