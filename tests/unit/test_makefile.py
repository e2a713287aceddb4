"""``make run`` and ``make test`` say what they are doing while they install (read from ``make -n``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def planned(target: str) -> list[str]:
    """The commands ``make <target>`` would run from scratch (``-B``: as on a fresh clone)."""
    make = shutil.which("make")
    assert make, "make is what the README tells a user to run"
    done = subprocess.run([make, "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


@pytest.mark.parametrize("target", ["run", "test"])
def test_the_install_announces_each_stage_and_lets_pip_show_its_progress(target: str) -> None:
    commands = planned(target)

    install = next(i for i, c in enumerate(commands) if "pip install" in c and "-e '.[dev]'" in c)
    assert "--quiet" not in commands[install] and "-q" not in commands[install].split()
    stages = [c for c in commands if c.startswith("printf '\\n==> %s\\n'")]
    assert any("installing Interlock and its dependencies" in c for c in stages)
    assert any("installing Interlock" in c for c in commands[:install])  # said before the long wait
    if target == "run":
        assert any("starting Interlock" in c for c in stages)
    else:
        assert [s for s in ("lint", "typecheck", "tests") if any(f'"{s}' in c for c in stages)] == \
            ["lint", "typecheck", "tests"]
