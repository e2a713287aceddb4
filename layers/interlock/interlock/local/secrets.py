"""Webhook secrets for the local cloud, stable across restarts.

A developer's sender (a form builder, ``interlock send``, a test) is configured once with a secret, so
the local runtime must not mint a new one on every start. Order of precedence per source:

1. ``INTERLOCK_SECRET_<SOURCE>``, holding exactly what the source's Secrets Manager secret holds on AWS
   (``interlock.webhooks.base.parse_secret``): one or more whitespace-separated signing secrets (several
   while rotating), or for WhatsApp the JSON ``{"signing": ["<app secret>"], "verify_token": "..."}``.
   Set but empty, it means "this source has no secret": it answers 404, as on AWS without its secret.
2. ``<state_dir>/secrets.json`` (mode 0600), written the first time a source needs one, shaped the way
   its provider shapes them (:func:`generate`).

This module is imported by ``interlock send`` and must stay light (no boto3, no moto).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import string
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interlock.webhooks.base import SecretFormatError, SourceSecrets, parse_secret
from interlock.webhooks.standard import SECRET_PREFIX, secret_key

SECRETS_FILE = "secrets.json"
NO_SECRET = SourceSecrets(signing=())
_ALPHANUMERIC = string.ascii_letters + string.digits


class SecretConfigError(ValueError):
    """A configured secret cannot be used; the message names where it came from, never its value."""


def env_var(source: str) -> str:
    return "INTERLOCK_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", source).upper()


def generate(scheme: str = "standard-webhooks") -> SourceSecrets:
    """A new secret shaped like the ones the scheme's provider issues."""
    if scheme == "standard-webhooks":
        return SourceSecrets(signing=(SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode(),))
    if scheme == "stripe":  # whsec_ and alphanumerics, used as text (not base64-decoded)
        return SourceSecrets(signing=("whsec_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(32)),))
    if scheme == "hubspot":  # an app's client secret is a UUID
        return SourceSecrets(signing=(str(uuid.uuid4()),))
    if scheme == "whatsapp":  # the Meta app secret (32 hex), and the verify token of the GET handshake
        return SourceSecrets(signing=(secrets.token_hex(16),), extras={"verify_token": secrets.token_urlsafe(18)})
    if scheme == "slack":  # a signing secret is 32 hex digits
        return SourceSecrets(signing=(secrets.token_hex(16),))
    return SourceSecrets(signing=(secrets.token_hex(20),))  # github, and any other: a random hex string


def render(value: SourceSecrets, scheme: str) -> str:
    """The secret's text, as its Secrets Manager secret holds it (the inverse of ``parse_secret``): the
    signing secrets whitespace-separated where that reads back the same, else JSON."""
    plain = not value.extras and not any(c.isspace() for secret in value.signing for c in secret)
    if plain and (len(value.signing) == 1 or not _free_text(scheme)):
        return " ".join(value.signing)
    return json.dumps({"signing": list(value.signing), **value.extras})


def _free_text(scheme: str) -> bool:
    from interlock.webhooks.registry import source_class

    return source_class(scheme).secret_is_free_text


def parse(value: str, scheme: str, origin: str) -> SourceSecrets:
    """Read and check a source's secret text; an empty text is :data:`NO_SECRET`."""
    if not value.strip():
        return NO_SECRET
    try:
        parsed = parse_secret(value, free_text=_free_text(scheme))
    except SecretFormatError as exc:
        raise SecretConfigError(f"{origin}: {exc}") from None
    if not parsed:
        raise SecretConfigError(f"{origin} holds no signing secret: give one or more secrets separated by "
                                'spaces, or JSON {"signing": [...], ...}')
    if scheme == "standard-webhooks":
        for candidate in parsed.signing:
            try:
                if not candidate.startswith(SECRET_PREFIX) or not secret_key(candidate):
                    raise ValueError
            except ValueError:
                raise SecretConfigError(f"{origin} must hold 'whsec_<base64>' values separated by spaces") from None
    return parsed


def from_environment(source: str, scheme: str, environ: Mapping[str, str]) -> SourceSecrets | None:
    value = environ.get(env_var(source))
    return None if value is None else parse(value, scheme, env_var(source))


def _stored_text(value: Any) -> str:
    """A secrets.json entry as a secret's text: a list of signing secrets (each whole, spaces and all), the JSON
    object form, or a string."""
    if isinstance(value, list):
        return json.dumps({"signing": [str(v) for v in value]})
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise SecretConfigError(f"{path} is not valid JSON; delete it to generate new secrets") from exc
    if not isinstance(data, dict):
        raise SecretConfigError(f"{path} must be a JSON object of source -> secrets")
    return {str(source): value for source, value in data.items()}


def _stored_form(value: SourceSecrets) -> Any:
    if value.extras:
        return {"signing": list(value.signing), **value.extras}
    return list(value.signing)


def _write_file(path: Path, stored: Mapping[str, Any]) -> None:
    """Write atomically, readable by the owner only: these are the keys that authenticate webhooks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(dict(stored), handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create(state_dir: Path, sources: Mapping[str, str],
                   environ: Mapping[str, str] | None = None) -> dict[str, SourceSecrets]:
    """The secrets of every source (``{name: scheme}``), creating and persisting the missing ones."""
    environ = os.environ if environ is None else environ
    path = state_dir / SECRETS_FILE
    stored = _read_file(path)
    result: dict[str, SourceSecrets] = {}
    changed = False
    for source, scheme in sources.items():
        configured = from_environment(source, scheme, environ)
        if configured is not None:
            result[source] = configured
            continue
        if source in stored:
            result[source] = parse(_stored_text(stored[source]), scheme, f"{path} ({source})")
            if result[source]:
                continue
        result[source] = generate(scheme)
        stored[source] = _stored_form(result[source])
        changed = True
    if changed:
        _write_file(path, stored)
    return result


def lookup(state_dir: Path, source: str, scheme: str,
           environ: Mapping[str, str] | None = None) -> SourceSecrets | None:
    """The secrets a sender of ``source`` may sign with, without creating any (for ``interlock send``)."""
    environ = os.environ if environ is None else environ
    configured = from_environment(source, scheme, environ)
    if configured is not None:
        return configured
    stored = _read_file(state_dir / SECRETS_FILE).get(source)
    return None if stored is None else parse(_stored_text(stored), scheme, f"{state_dir / SECRETS_FILE} ({source})")
