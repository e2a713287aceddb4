"""The ``interlock`` command: ``run`` the embedded local cloud, ``send`` it a signed webhook.

``send`` must start fast, so this module imports only the standard library at the top; the local
cloud (moto, boto3) is imported by ``run`` alone, and httpx by ``send`` when it sends.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8000
DEFAULT_STATE_DIR = ".interlock"
DEFAULT_SOURCE = "form"
DEFAULT_SAMPLE = "support_ticket"


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


# -- defaults from the environment -----------------------------------------------------------------------------


def _default_port() -> int:
    raw = os.environ.get("INTERLOCK_PORT", str(DEFAULT_PORT))
    try:
        return int(raw)
    except ValueError:
        raise CliError(f"INTERLOCK_PORT must be a port number, not {raw!r}") from None


def _default_state_dir() -> Path:
    return Path(os.environ.get("INTERLOCK_STATE_DIR", DEFAULT_STATE_DIR))


def _default_url() -> str:
    return os.environ.get("INTERLOCK_URL") or f"http://127.0.0.1:{_default_port()}"


# -- interlock run ---------------------------------------------------------------------------------------------


def _configure_logging() -> None:
    level = os.environ.get("INTERLOCK_LOG_LEVEL", "WARNING").upper()
    if not isinstance(logging.getLevelName(level), int):
        raise CliError(f"INTERLOCK_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    # One line per request on the console, whatever the level of the rest.
    logging.getLogger("localcloud.gateway").setLevel(min(logging.INFO, logging.getLogger().level))


def run(args: argparse.Namespace) -> int:
    _configure_logging()
    from interlock.local.env import EnvironmentConflict
    from interlock.local.runtime import LocalRuntime
    from interlock.local.secrets import SecretConfigError

    port = args.port if args.port is not None else _default_port()
    state_dir = args.state_dir or _default_state_dir()
    try:
        LocalRuntime(port=port, state_dir=state_dir).serve_forever()
    except OSError as exc:
        raise CliError(f"could not listen on 127.0.0.1:{port}: {exc.strerror or exc}. Is Interlock already "
                       "running? Pick another port with --port or INTERLOCK_PORT.") from exc
    except (SecretConfigError, EnvironmentConflict) as exc:
        raise CliError(str(exc)) from exc
    return 0


# -- interlock send --------------------------------------------------------------------------------------------


def _samples() -> dict[str, Any]:
    folder = resources.files("interlock") / "samples"
    return {entry.name.removesuffix(".json"): entry for entry in folder.iterdir() if entry.name.endswith(".json")}


def _sample_names(source: str) -> list[str]:
    prefix = f"{source}_"
    return sorted(name.removeprefix(prefix) for name in _samples() if name.startswith(prefix))


def _load_body(source: str, file: str | None, event_type: str | None) -> bytes:
    """The bytes to send: a file as it is (unless --type changes it), or a sample stamped with the time."""
    name = file or DEFAULT_SAMPLE
    if file is not None and Path(file).is_file():
        raw = Path(file).read_bytes()
        return raw if event_type is None else _with(raw, file, {"type": event_type})
    samples = _samples()
    key = name.removesuffix(".json")
    entry = samples.get(f"{source}_{key}") or samples.get(key)
    if entry is None:
        names = ", ".join(_sample_names(source)) or "none"
        raise CliError(f"no file or sample named {name!r}; the samples for {source!r} are: {names}")
    changes: dict[str, Any] = {"timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")}
    if event_type is not None:
        changes["type"] = event_type
    return _with(entry.read_bytes(), name, changes)


def _with(raw: bytes, origin: str, changes: dict[str, Any]) -> bytes:
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise CliError(f"{origin} is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise CliError(f"{origin} must hold a JSON object to set its {', '.join(changes)}")
    payload.update(changes)
    return json.dumps(payload, separators=(",", ":")).encode()


def _signing_secret(source: str, state_dir: Path) -> str:
    from interlock.local.secrets import SECRETS_FILE, SecretConfigError, env_var, lookup

    try:
        found = lookup(state_dir, source)
    except SecretConfigError as exc:
        raise CliError(str(exc)) from exc
    if not found:
        raise CliError(f"no webhook secret for {source!r}: set {env_var(source)}, or start `interlock run` "
                       f"once so that it writes {state_dir / SECRETS_FILE} (pass --state-dir if it uses another)")
    return found[0]


def _known_sources() -> list[str]:
    from interlock.topology import TOPOLOGY

    return [s.name for s in TOPOLOGY.webhook_sources]


def _source_and_file(source: str | None, file: str | None, known: list[str]) -> tuple[str, str | None]:
    """``interlock send refund_request`` and ``interlock send my.json`` mean the default source."""
    looks_like_a_file = source is not None and (
        Path(source).is_file() or source.removesuffix(".json") in _sample_names(DEFAULT_SOURCE))
    if source is not None and file is None and source not in known and looks_like_a_file:
        return DEFAULT_SOURCE, source
    return source or DEFAULT_SOURCE, file


def send(args: argparse.Namespace) -> int:
    known = _known_sources()
    source, file = _source_and_file(args.source, args.file, known)
    if source not in known:
        raise CliError(f"unknown webhook source {source!r}; the topology has: {', '.join(known)}")
    body = _load_body(source, file, args.type)
    secret = _signing_secret(source, args.state_dir or _default_state_dir())
    msg_id = args.id or f"msg_{secrets.token_urlsafe(18)}"
    base = (args.url or _default_url()).rstrip("/")
    endpoint = f"{base}/webhooks/{source}"

    import httpx

    from interlock.webhooks.standard import signed_headers

    headers = {
        **signed_headers(secret, msg_id, int(time.time()), body),
        "Content-Type": "application/json",
        "User-Agent": "interlock-send",
    }
    try:
        response = httpx.post(endpoint, content=body, headers=headers, timeout=15.0)
    except httpx.ConnectError as exc:
        raise CliError(f"nothing answers at {base}: is Interlock running? Start it with `interlock run` "
                       "(or `make run`), or pass --url") from exc
    except httpx.HTTPError as exc:
        raise CliError(f"POST {endpoint} failed: {type(exc).__name__}: {exc}") from exc
    _report(endpoint, base, msg_id, response)
    return 0 if response.is_success else 1


def _report(endpoint: str, base: str, msg_id: str, response: Any) -> None:
    print(f"POST {endpoint}  (webhook-id {msg_id})")
    print(f"-> {response.status_code} {response.reason_phrase}")
    try:
        answer = response.json()
    except ValueError:
        print(response.text)
        return
    print(json.dumps(answer, indent=2))
    if isinstance(answer, dict) and answer.get("run_id"):
        print(f"\nWatch the run: curl -s {base}/runs/{answer['run_id']}")


# -- the parser ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interlock", description="Interlock on a laptop: run the embedded local cloud, send it signed webhooks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run_cmd = commands.add_parser("run", help="start Interlock on the embedded local cloud")
    run_cmd.add_argument("--port", type=int, default=None,
                         help=f"port to listen on (default: INTERLOCK_PORT or {DEFAULT_PORT})")
    run_cmd.add_argument("--state-dir", type=Path, default=None,
                         help=f"where secrets and the mail outbox live (default: INTERLOCK_STATE_DIR or "
                              f"{DEFAULT_STATE_DIR})")
    run_cmd.set_defaults(func=run)

    send_cmd = commands.add_parser("send", help="send a signed sample (or a JSON file) to a webhook source")
    send_cmd.add_argument("source", nargs="?", metavar="SOURCE", help=f"webhook source (default: {DEFAULT_SOURCE})")
    send_cmd.add_argument("file", nargs="?", metavar="FILE",
                          help=f"a JSON file, or a bundled sample name (default: {DEFAULT_SAMPLE})")
    send_cmd.add_argument("--url", help="where Interlock listens (default: INTERLOCK_URL or "
                                        f"http://127.0.0.1:<INTERLOCK_PORT or {DEFAULT_PORT}>)")
    send_cmd.add_argument("--id", help="the webhook-id to send (reuse one to see deduplication)")
    send_cmd.add_argument("--type", help="override the payload's event type")
    send_cmd.add_argument("--state-dir", type=Path, default=None,
                          help="where `interlock run` keeps secrets.json (default: INTERLOCK_STATE_DIR or "
                               f"{DEFAULT_STATE_DIR})")
    send_cmd.set_defaults(func=send)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"interlock: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
