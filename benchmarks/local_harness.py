"""What the local-runtime benchmarks share: ``interlock run`` as a subprocess, signed tickets, RSS from /proc.

The runtime is started exactly as ``make run`` starts it (``python -m interlock.cli run``), on a free port with a
state directory of its own, the offline AI provider and a known ``form`` secret. Tickets are the bundled
``form support_ticket`` sample, signed by the Standard Webhooks plug-in's ``sender_headers`` through the same
helpers ``interlock send`` uses (``interlock.cli._load_body`` and ``_sign``), so what the benchmark posts is what
``interlock send form`` posts.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "layers" / "interlock", ROOT / "functions", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import httpx  # noqa: E402
from interlock import cli  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"interlock-benchmark-secret-0123").decode()
SCHEME = "standard-webhooks"
TERMINAL = frozenset({"completed", "rejected", "failed", "escalated", "ignored"})
STARTUP_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int:
    """The resident set size of ``pid`` (``VmRSS`` in /proc/<pid>/status); 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (/proc/<pid>/stat, clock ticks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class RuntimeProcess:
    """``interlock run`` on a free port with its own ``--state-dir``; :meth:`stop` is Ctrl-C."""

    state_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = STARTUP_TIMEOUT) -> RuntimeProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
        env.pop("OPENAI_API_KEY", None)
        env.update({
            "INTERLOCK_PORT": str(self.port),
            "INTERLOCK_STATE_DIR": str(self.state_dir),
            "INTERLOCK_SECRET_FORM": SECRET,
            "INTERLOCK_AI_PROVIDER": "offline",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "interlock"), str(ROOT / "functions"), str(ROOT),
                                           env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        })
        self.log_path = self.state_dir.parent / f"{self.state_dir.name}-runtime.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "interlock.cli", "run", "--port", str(self.port), "--state-dir",
                 str(self.state_dir)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"interlock run exited {self.process.returncode}:\n{self.log_tail()}")
            try:
                httpx.get(f"{self.url}/runs/none", timeout=2)
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"interlock run did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 120.0) -> int:
        """Stop as Ctrl-C does (the local state is saved on the way out); the exit code."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            assert self.log_path is not None
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AssertionError):
            return "(no log)"


class Tickets:
    """Signed ``form support_ticket`` deliveries, as ``interlock send form`` makes them."""

    def __init__(self, url: str, secret: str = SECRET) -> None:
        self.endpoint = f"{url.rstrip('/')}/webhooks/form"
        self.secret = secret
        self.module = cli._scheme_module(SCHEME)

    def request(self, event_id: str | None = None) -> tuple[bytes, dict[str, str]]:
        body = cli._load_body("form", SCHEME, None, None)
        event_id = event_id or f"msg_{uuid.uuid4().hex}"
        headers = cli._sign(self.module, SCHEME, self.secret, body, origin="the sample", event_id=event_id,
                            url=self.endpoint, event=None)
        headers.setdefault("Content-Type", "application/json")
        return body, headers

    def post(self, client: httpx.Client, event_id: str | None = None) -> tuple[int, dict[str, Any], float]:
        """POST one ticket; its status, its JSON answer ({} if none) and how long the answer took (s)."""
        body, headers = self.request(event_id)
        started = time.perf_counter()
        response = client.post(self.endpoint, content=body, headers=headers)
        elapsed = time.perf_counter() - started
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        return response.status_code, answer if isinstance(answer, dict) else {}, elapsed


def run_status(client: httpx.Client, url: str, run_id: str) -> str | None:
    response = client.get(f"{url}/runs/{run_id}")
    if response.status_code != 200:
        return None
    return str(response.json().get("status"))


class PollBudget:
    """At most ``rate`` polls a second, shared by every sender: a ``GET /runs/<id>`` is a Lambda invocation and a
    DynamoDB query in the runtime, and sixteen senders polling freely would become the load they measure."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            slot = max(time.monotonic(), self._next)
            self._next = slot + self.interval
        pause = slot - time.monotonic()
        if pause > 0:
            time.sleep(pause)


def wait_terminal(client: httpx.Client, url: str, run_id: str, timeout: float, budget: PollBudget | None = None,
                  first_poll: float = 0.05) -> str | None:
    """Poll ``GET /runs/<id>`` until the run is terminal (its status), or None after ``timeout`` seconds; each
    poll waits for its turn in ``budget`` (and the first for ``first_poll`` seconds)."""
    deadline = time.monotonic() + timeout
    time.sleep(first_poll)
    while True:
        if budget is not None:
            budget.acquire()
        status = run_status(client, url, run_id)
        if status in TERMINAL:
            return status
        if time.monotonic() >= deadline:
            return None
        if budget is None:
            time.sleep(first_poll)


class RssSampler:
    """Samples a process's RSS on a thread every ``interval`` seconds: peak, last, and the samples."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            rss = rss_bytes(self.pid)
            if rss:
                self.samples.append((time.monotonic() - started, rss))
            self._stop.wait(self.interval)

    @property
    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=0)

    @property
    def last(self) -> int:
        return self.samples[-1][1] if self.samples else 0


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, by the inclusive method; NaN for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if 1 <= q <= 99 else (
        min(values) if q <= 0 else max(values))


def mib(value: int) -> str:
    return f"{value / (1024 * 1024):.0f} MiB"
