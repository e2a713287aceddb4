"""Webhook secrets: from the environment, else generated once and kept (0600) across restarts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from interlock.local.secrets import SecretConfigError, env_var, generate, load_or_create, lookup
from interlock.webhooks.standard import secret_key


def test_a_generated_secret_is_persisted_privately_and_reused(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, ["form"], environ={})
    second = load_or_create(tmp_path, ["form"], environ={})

    assert first == second
    (secret,) = first["form"]
    assert secret.startswith("whsec_") and len(secret_key(secret)) == 24
    path = tmp_path / "secrets.json"
    assert json.loads(path.read_text()) == {"form": [secret]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert lookup(tmp_path, "form", environ={}) == [secret]


def test_the_environment_wins_and_may_hold_several_secrets(tmp_path: Path) -> None:
    rotating = f"{generate()}  {generate()}"

    secrets = load_or_create(tmp_path, ["form"], environ={"INTERLOCK_SECRET_FORM": rotating})

    assert secrets["form"] == rotating.split()
    assert not (tmp_path / "secrets.json").exists()
    assert lookup(tmp_path, "form", environ={"INTERLOCK_SECRET_FORM": rotating}) == rotating.split()


def test_a_bad_configured_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(SecretConfigError) as caught:
        load_or_create(tmp_path, ["form"], environ={"INTERLOCK_SECRET_FORM": "hunter2"})

    assert "INTERLOCK_SECRET_FORM" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_lookup_creates_nothing(tmp_path: Path) -> None:
    assert lookup(tmp_path, "form", environ={}) is None
    assert not (tmp_path / "secrets.json").exists()


def test_env_var_names_are_upper_snake_case() -> None:
    assert env_var("form") == "INTERLOCK_SECRET_FORM"
    assert env_var("hub-spot") == "INTERLOCK_SECRET_HUB_SPOT"
