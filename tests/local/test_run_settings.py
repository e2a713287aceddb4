"""`interlock run` refuses settings the functions would refuse together, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_interlock_run_with_an_approval_link_shorter_than_its_wait_stops_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock import cli

    monkeypatch.setenv("INTERLOCK_APPROVAL_TTL_SECONDS", "600")
    monkeypatch.setenv("INTERLOCK_APPROVAL_TIMEOUT_SECONDS", "3600")

    status = cli.main(["run", "--state-dir", str(tmp_path), "--port", "0"])

    error = capsys.readouterr().err
    assert status == 1
    assert error.startswith("interlock: error: invalid setting(s) (INTERLOCK_APPROVAL_TIMEOUT_SECONDS, "
                            "INTERLOCK_APPROVAL_TTL_SECONDS): approval_ttl_seconds (600) must be at least "
                            "approval_timeout_seconds (3600)")
    assert "Traceback" not in error and error.count("\n") == 1
