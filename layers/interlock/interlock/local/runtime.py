"""The embedded local cloud in one process: ``LocalRuntime(port, state_dir).serve_forever()``.

Start order matters and is the reverse of stop order:

0. the saved local state is read (an unusable file stops here, before anything started; see
:mod:`interlock.local.persistence`), 1. secrets (so the Secrets Manager secrets can be created), 2. the
HTTP socket (so the port, even an ephemeral one, is known before ``INTERLOCK_PUBLIC_BASE_URL`` and the
fakes' URLs are resolved), 3. moto and every resource, with the saved items and messages put back, then
the saved executions resumed and the local state's flusher started, 4. serving HTTP, 5. the SQS pollers
and the execution watches' pollers, 6. the outbox.

Stopping first closes the doors (HTTP, pollers), lets running invocations finish, stops running
executions and only then stops moto, so no handler is left talking to an AWS that is gone (and the
executions the runtime itself aborts on its way out are not announced to the watchdog). The local state is
saved once more between the two, when nothing changes it any more.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from interlock.local import get_logger
from interlock.local import secrets as local_secrets
from interlock.local.cloud import LocalCloud
from interlock.local.env import setting
from interlock.local.event_sources import SqsEventSource
from interlock.local.execution_events import ExecutionStatusEvents
from interlock.local.functions import LocalLambda
from interlock.local.gateway import Gateway
from interlock.local.outbox import Outbox
from interlock.local.persistence import LocalState, state_path
from interlock.local.scheduler import LocalScheduler, SkippableClock
from interlock.local.streams import LocalStreams
from interlock.local.trigger_endpoints import RuntimeLocalApps, TriggerEndpoints, keys_of
from interlock.topology import INGEST_QUEUE, TOPOLOGY, DeploymentSettings, Topology
from interlock.webhooks.base import SourceSecrets
from interlock.webhooks.registry import parse_enabled

log = get_logger(__name__)

OUTBOX_DIR = "outbox"
DEFAULT_PORT = 8000
DEFAULT_STATE_DIR = ".interlock"


def ai_line(environ: Mapping[str, str]) -> str:
    """Who makes the AI decisions here, in one line (never the key itself)."""
    from interlock.ai.choice import kind_of_provider

    provider = environ.get("INTERLOCK_AI_PROVIDER", "auto")
    kind = kind_of_provider(provider, bool(environ.get("OPENAI_API_KEY", "").strip()))
    if kind == "offline":
        why = "INTERLOCK_AI_PROVIDER=offline" if provider == "offline" else "no OPENAI_API_KEY"
        return f"offline provider ({why}): deterministic, no network; labelled 'offline' on the timeline"
    if kind == "no_key":
        return "INTERLOCK_AI_PROVIDER=openai but no OPENAI_API_KEY: decisions will fail as not configured"
    url = urlsplit(environ.get("OPENAI_BASE_URL", "").strip() or "https://api.openai.com/v1")
    endpoint = f"{url.scheme}://{url.hostname}{f':{url.port}' if url.port else ''}{url.path}"  # no credentials
    tiers = environ.get("INTERLOCK_AI_MODEL_TIERS", "").strip() or DeploymentSettings().ai_model_tiers
    return f"OpenAI-compatible endpoint {endpoint}, model tiers {tiers}"


def console(text: str) -> None:
    """The runtime's console: the banner and the outbox announcements (everything else is logging)."""
    print(text, flush=True)


class LocalRuntime:
    def __init__(
        self,
        port: int = DEFAULT_PORT,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        topology: Topology = TOPOLOGY,
        host: str = "127.0.0.1",
        functions: LocalLambda | None = None,
        echo: Callable[[str], None] | None = console,
        poll_idle_seconds: float = 0.2,
        watch_poll_seconds: float = 0.5,
        fresh: bool = False,
        keep_state: bool = True,
    ) -> None:
        self.port = port
        self.state_dir = Path(state_dir)
        self.topology = topology
        self.host = host
        self.functions = functions or LocalLambda(topology)
        self.echo = echo
        self.poll_idle_seconds = poll_idle_seconds
        self.watch_poll_seconds = watch_poll_seconds
        self.secrets: dict[str, SourceSecrets] = {}
        self.gateway: Gateway | None = None
        self.cloud: LocalCloud | None = None
        self.event_sources: list[SqsEventSource] = []
        self.execution_watches: list[ExecutionStatusEvents] = []
        self.outbox: Outbox | None = None
        # The triggers that are not webhooks: the local EventBridge Scheduler (on a clock that can be skipped
        # ahead, POST /_local/scheduler/advance) and the local DynamoDB Streams + Pipes.
        self.clock = SkippableClock()
        self.scheduler: LocalScheduler | None = None
        self.streams: LocalStreams | None = None
        self.apps = RuntimeLocalApps()
        self.fresh = fresh  # discard the saved local state (runs, approvals, queued events) at start
        self.keep_state = keep_state  # False: nothing is read or saved (an in-memory runtime)
        self.local_state: LocalState | None = None
        self._started = False
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        if self.gateway is None:
            raise RuntimeError("the runtime is not started")
        return self.gateway.url

    @property
    def outbox_dir(self) -> Path:
        return self.state_dir / OUTBOX_DIR

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> LocalRuntime:
        # Further webhook sources are configuration: declared before anything is built from the topology.
        self.topology = self.topology.with_extra_webhook_sources(
            setting("extra_webhook_sources", "", os.environ))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.keep_state:
            if self.fresh:
                state_path(self.state_dir).unlink(missing_ok=True)
            self.local_state = LocalState(self.state_dir)
            self.local_state.load()
        sources = {s.name: s.scheme for s in self.topology.webhook_sources}
        self.secrets = local_secrets.load_or_create(self.state_dir, sources)
        self.gateway = Gateway(self.topology, self.host, self.port, fakes=self.apps)
        try:
            self.cloud = LocalCloud(self.topology, self.functions, self.gateway.url, self.secrets,
                                    state=self.local_state)
            deployed = self.cloud.start()
            # Resumed before serving: an approval posted at once finds its execution waiting for its token
            # (the socket listens already, so a resumed step's call to a local fake waits in its backlog).
            self._resume()
            self.gateway.start(self.functions.invoke)
            sqs = self.cloud.client("sqs")
            for queue in self.topology.queues:
                source = SqsEventSource(queue, deployed.queue_urls[queue.name], self.cloud.queue_arns[queue.name],
                                        self.functions.invoke, sqs, self.cloud.region, self.poll_idle_seconds)
                source.start()
                self.event_sources.append(source)
            sfn = self.cloud.client("stepfunctions")
            for watch in self.topology.execution_watches:
                poller = ExecutionStatusEvents(
                    watch, deployed.state_machine_arns, self.functions.invoke, sfn, sqs,
                    self.cloud.watch_dlq_urls[watch.name], self.functions.arn(watch.function), self.cloud.region,
                    self.functions.account, self.watch_poll_seconds,
                )
                poller.start()
                self.execution_watches.append(poller)
            self._start_triggers(deployed.queue_urls, deployed.dlq_urls)
            self.outbox = Outbox(self.outbox_dir, self.echo)
            self.outbox.start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        self._stopped.clear()
        if self.echo is not None:
            self.echo(self.banner())
        return self

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        self.apps.triggers = None
        for producer in (self.scheduler, self.streams):
            if producer is not None:
                producer.stop()
        self.scheduler = self.streams = None
        for source in self.event_sources:
            source.stop()
        self.event_sources = []
        for poller in self.execution_watches:
            poller.stop()
        self.execution_watches = []
        if not self.functions.close(timeout=5):
            log.warning("some invocations were still running when the runtime stopped")
        if self.local_state is not None:
            # Saved once more, now that nothing changes it; not after a failed start (the file on disk is
            # then still the last good state, and must not be replaced by a partial one).
            try:
                self.local_state.stop(final=self._started and self.cloud is not None)
            except Exception:
                log.exception("could not save the local state to %s", self.local_state.path)
            self.local_state = None
        self._started = False
        if self.outbox is not None:
            self.outbox.stop()
            self.outbox = None
        if self.cloud is not None:
            self.cloud.stop()
            self.cloud = None
        self._stopped.set()

    def _start_triggers(self, queue_urls: Mapping[str, str], dlq_urls: Mapping[str, str]) -> None:
        """The schedules and the watched tables' streams, sending into the ingest queue (as Scheduler and Pipes
        send): started once the queue's consumer polls; the schedules' saved cursors in the state directory."""
        assert self.cloud is not None and self.cloud.deployed is not None
        sqs = self.cloud.client("sqs")
        targets = {s.queue for s in self.topology.schedules} | {p.queue for p in self.topology.status_pipes}
        if targets - {INGEST_QUEUE}:
            raise ValueError(f"schedules and status changes send to the {INGEST_QUEUE} queue, not {sorted(targets)}")

        def send(body: str) -> None:
            sqs.send_message(QueueUrl=queue_urls[INGEST_QUEUE], MessageBody=body)

        self.scheduler = LocalScheduler(self.topology.schedules, send, clock=self.clock,
                                        state_dir=self.state_dir if self.keep_state else None)
        self.streams = LocalStreams(self.topology.status_pipes, self.cloud.stream_arns, send, self.cloud.region)
        tables = self.topology.workflow_tables
        self.apps.triggers = TriggerEndpoints(
            self.scheduler, self.streams, dict(self.cloud.deployed.workflow_tables),
            {t.name: keys_of(t.partition_key, t.sort_key) for t in tables}, lambda: self.cloud_client("dynamodb"),
            queues={**queue_urls, **{q.dlq_name: dlq_urls[q.name] for q in self.topology.queues}},
            sqs=lambda: self.cloud_client("sqs"))
        self.streams.start()
        for firing in self.scheduler.catch_up():
            log.info("schedule %s missed while stopped: fired for %s", firing.schedule, firing.scheduled_time)
        self.scheduler.start()

    def cloud_client(self, service: str) -> Any:
        if self.cloud is None:
            raise RuntimeError("the runtime is not started")
        return self.cloud.client(service)

    def _resume(self) -> None:
        """Resume the saved executions and keep the state saved from now on."""
        if self.local_state is None or self.cloud is None:
            return
        self.cloud.resume_executions()
        self.local_state.attach(self.cloud.capture)
        self.local_state.start()
        restored = self.cloud.restored
        if self.local_state.saved is not None and self.echo is not None:
            self.echo(f"Restored the saved local state from {self.local_state.path}: {restored.get('items', 0)} "
                      f"items, {restored.get('messages', 0)} queued messages, {restored.get('executions', 0)} "
                      "executions resumed (start clean with `interlock run --fresh`)")

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run until SIGINT (Ctrl-C) or SIGTERM, then stop cleanly."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        requested = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            requested.set()

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            self.start()
            while not requested.wait(0.5):
                pass
            if self.echo is not None:
                self.echo("Stopping Interlock...")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- the banner -----------------------------------------------------------------------------------------

    def enabled_sources(self) -> dict[str, str]:
        """The webhook sources the ingest accepts, ``{name: scheme}`` (the topology's, or those
        ``INTERLOCK_ENABLED_SOURCES`` narrows them to)."""
        if self.cloud is None:
            raise RuntimeError("the runtime is not started")
        return parse_enabled(self.cloud.webhook_sources)

    def banner(self) -> str:
        url = self.url
        lines = [
            f"Interlock is running on the embedded local cloud at {url}",
            "",
            f"Webhook sources (each signed the way its provider signs; generated secrets are kept in "
            f"{self.state_dir / local_secrets.SECRETS_FILE}, INTERLOCK_SECRET_<SOURCE> overrides one):",
        ]
        enabled = self.enabled_sources()
        width = max((len(s.name) for s in self.topology.webhook_sources), default=0)
        for source in self.topology.webhook_sources:
            lines.append(f"  {source.name:<{width}}  " + self._source_line(source.name, source.scheme, enabled, width))
        lines += [
            "",
            f"Runs:            GET {url}/runs/<run_id>; {send_command()} runs | show <run_id> | approvals",
            f"Dead letters:    {send_command()} redrive --dry-run (rehearse: POST {url}/_local/queues/ingest-dlq/"
            "messages)",
            f"Approval emails: {self.outbox_dir.resolve()}/ (links are printed here too)",
            f"Local fakes:     {url}/_local/crm/accounts?email=ada@example.com, {url}/_local/helpdesk/replies",
            f"                 {url}/_local/crm/crm/v3/objects/contacts (and deals, tasks), "
            f"{url}/_local/slack/messages",
            f"                 {url}/_local/erp/ledger-entries (and vendors, purchase-orders, payments)",
            f"                 {url}/_local/graph/messages (WhatsApp messages sent through the Graph API)",
            f"AI decisions:    {ai_line(os.environ)}",
            *self._trigger_lines(),
            "",
            f"Try it:  {self._send_hint('form support_ticket')}    (Ctrl-C stops)",
            f"         {self._send_hint('<source>')}    (its provider's sample, signed as the provider signs)",
        ]
        return "\n".join(lines)

    def _trigger_lines(self) -> list[str]:
        """The schedules (with their next firing) and the watched tables, when any workflow declares them."""
        lines: list[str] = []
        if self.apps.triggers is not None and self.topology.schedules:
            lines += ["", f"Schedules (fire one now: {send_command()} trigger <workflow>.<schedule>; skip time: "
                          f"POST {self.url}/_local/scheduler/advance {{\"seconds\": N}}):"]
            for entry in self.apps.triggers.overview()["schedules"]:
                lines.append(f"  {entry['schedule']}  {entry['expression']} ({entry['timezone']})  "
                             f"next: {entry['next'] or 'never'}")
        if self.topology.status_pipes:
            lines += ["", f"Status changes (change a record: {send_command()} change <table> --key <name>=<value> "
                          f"--set status=<status>, or PATCH {self.url}/_local/tables/<table>/items):"]
            for pipe in self.topology.status_pipes:
                pattern = json.loads(pipe.pattern)["dynamodb"]
                attribute = next(iter(pattern["NewImage"]))
                lines.append(f"  {pipe.id}  table {pipe.table}: {attribute} "
                             f"{pattern['OldImage'][attribute]['S'][0]} -> {pattern['NewImage'][attribute]['S'][0]}")
        return lines

    def _source_line(self, name: str, scheme: str, enabled: dict[str, str], width: int) -> str:
        if name not in enabled:
            return "disabled (not in INTERLOCK_ENABLED_SOURCES): answers 404"
        value = self.secrets.get(name, local_secrets.NO_SECRET)
        origin = local_secrets.env_var(name)
        if not value:
            return f"no secret ({origin} is empty): answers 404"
        line = f"POST {self.url}/webhooks/{name:<{width}}  secret: {' '.join(value.signing)}"
        if value.extras.get("verify_token"):
            line += f"  verify token (Meta's GET): {value.extras['verify_token']}"
        if scheme != name:
            line += f"  ({scheme})"
        if origin in os.environ:
            line += f"  (from {origin})"
        return line

    def _send_hint(self, what: str) -> str:
        assert self.gateway is not None
        hint = f"{send_command()} send {what}"
        if self.gateway.port != DEFAULT_PORT:
            hint += f" --url {self.url}"
        if self.state_dir != Path(DEFAULT_STATE_DIR):
            hint += f" --state-dir {self.state_dir}"
        return hint


def send_command(environ: Mapping[str, str] = os.environ, executable: str = sys.executable,
                 prefix: str = sys.prefix, base_prefix: str = sys.base_prefix, cwd: Path | None = None) -> str:
    """How to run ``interlock`` from another terminal: ``interlock`` only where that finds this very script in a
    shell of the user's (an activated virtualenv, or an install outside any), else the script's path
    (``.venv/bin/interlock``: ``make run`` puts ``.venv/bin`` on its own PATH, not on the user's), or
    ``python -m interlock.cli`` when there is no script (running from a source tree)."""
    script = Path(executable).parent / "interlock"  # the interpreter's own scripts directory (not resolved)
    if not script.is_file():
        return f"{_shortest(Path(executable), cwd)} -m interlock.cli"
    found = shutil.which("interlock", path=environ.get("PATH"))
    in_venv = Path(prefix) != Path(base_prefix)
    activated = bool(environ.get("VIRTUAL_ENV")) and Path(environ["VIRTUAL_ENV"]).resolve() == Path(prefix).resolve()
    if found and Path(found).resolve() == script.resolve() and (activated or not in_venv):
        return "interlock"
    return _shortest(script, cwd)


def _shortest(path: Path, cwd: Path | None) -> str:
    """``path`` relative to the working directory when it is inside it (``.venv/bin/interlock``), else absolute."""
    base = (cwd or Path.cwd()).resolve()
    absolute = path if path.is_absolute() else base / path
    try:
        return str(absolute.relative_to(base))
    except ValueError:
        return str(absolute)
