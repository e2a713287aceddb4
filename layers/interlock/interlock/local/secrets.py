"""Webhook signing secrets for the local cloud, stable across restarts.

A developer's sender (a form builder, ``interlock send``, a test) is configured once with a secret, so
the local runtime must not mint a new one on every start. Order of precedence per source:

1. ``INTERLOCK_SECRET_<SOURCE>``: one or more whitespace-separated ``whsec_<base64>`` values (several
   while rotating, exactly as the Secrets Manager secret holds them in AWS);
2. ``<state_dir>/secrets.json`` (mode 0600), written the first time a source needs one.

This module is imported by ``interlock send`` and must stay light (no boto3, no moto).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from interlock.webhooks.standard import SECRET_PREFIX, secret_key

SECRETS_FILE = "secrets.json"


class SecretConfigError(ValueError):
    """A configured secret cannot be used; the message names where it came from, never its value."""


def env_var(source: str) -> str:
    return "INTERLOCK_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", source).upper()


def generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def parse(value: str, origin: str) -> list[str]:
    """Split and check a whitespace-separated list of secrets."""
    values = value.split()
    if not values:
        raise SecretConfigError(f"{origin} is empty")
    for candidate in values:
        try:
            if not candidate.startswith(SECRET_PREFIX) or not secret_key(candidate):
                raise ValueError
        except ValueError:
            raise SecretConfigError(f"{origin} must hold 'whsec_<base64>' values separated by spaces") from None
    return values


def from_environment(source: str, environ: Mapping[str, str]) -> list[str] | None:
    value = environ.get(env_var(source))
    return None if value is None else parse(value, env_var(source))


def _read_file(path: Path) -> dict[str, list[str]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise SecretConfigError(f"{path} is not valid JSON; delete it to generate new secrets") from exc
    if not isinstance(data, dict):
        raise SecretConfigError(f"{path} must be a JSON object of source -> [secrets]")
    stored: dict[str, list[str]] = {}
    for source, values in data.items():
        text = " ".join(values) if isinstance(values, list) else str(values)
        stored[str(source)] = parse(text, f"{path} ({source})")
    return stored


def _write_file(path: Path, stored: Mapping[str, list[str]]) -> None:
    """Write atomically, readable by the owner only: these are the keys that authenticate webhooks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(dict(stored), handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create(state_dir: Path, sources: Iterable[str],
                   environ: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The secrets of every source, creating and persisting the missing ones."""
    environ = os.environ if environ is None else environ
    path = state_dir / SECRETS_FILE
    stored = _read_file(path)
    result: dict[str, list[str]] = {}
    changed = False
    for source in sources:
        configured = from_environment(source, environ)
        if configured is not None:
            result[source] = configured
            continue
        if source not in stored:
            stored[source] = [generate()]
            changed = True
        result[source] = stored[source]
    if changed:
        _write_file(path, stored)
    return result


def lookup(state_dir: Path, source: str, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The secrets a sender of ``source`` may sign with, without creating any (for ``interlock send``)."""
    environ = os.environ if environ is None else environ
    configured = from_environment(source, environ)
    if configured is not None:
        return configured
    return _read_file(state_dir / SECRETS_FILE).get(source)
