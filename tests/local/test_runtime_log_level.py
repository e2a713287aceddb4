"""The handlers' logger takes the local log level (INTERLOCK_LOG_LEVEL, default WARNING).

Powertools' Logger reads ``POWERTOOLS_LOG_LEVEL`` when ``interlock.observability`` is first imported, and the local
cloud sets that variable when it starts. A runtime module that imported it earlier (through a constant of a module
that logs) built the logger at Powertools' default, INFO, and every ``make run`` console filled with INFO lines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, tmp_path: Path) -> str:
    env = {"PYTHONPATH": f"{REPO / 'layers/interlock'}:{REPO / 'functions'}:{REPO}", "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_runtime_builds_no_handler_logger_before_the_cloud_sets_its_level(tmp_path: Path) -> None:
    loaded = _python("import sys, interlock.cli, interlock.local.runtime; "
                     "print('interlock.observability' in sys.modules)", tmp_path)
    assert loaded == "False"


def test_a_started_runtime_s_handlers_log_at_warning_by_default(tmp_path: Path) -> None:
    level = _python(
        "from interlock.local.runtime import LocalRuntime\n"
        "rt = LocalRuntime(port=0, state_dir='state', echo=None).start()\n"
        "try:\n"
        "    from interlock.observability import logger\n"
        "    print(logger.log_level)\n"
        "finally:\n"
        "    rt.stop()\n", tmp_path)
    assert level.splitlines()[-1] == "30"  # logging.WARNING
