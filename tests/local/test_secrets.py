"""Webhook secrets: from the environment, else generated once per source, shaped like its provider's, and
kept (0600) across restarts."""

from __future__ import annotations

import json
import re
import stat
import uuid
from pathlib import Path

import pytest
from interlock.ingest.ports import parse_secret
from interlock.local.secrets import (
    NO_SECRET,
    SecretConfigError,
    env_var,
    generate,
    load_or_create,
    lookup,
    render,
)
from interlock.topology import TOPOLOGY
from interlock.webhooks.base import SourceSecrets
from interlock.webhooks.standard import secret_key

ALL = {s.name: s.scheme for s in TOPOLOGY.webhook_sources}


def test_a_generated_secret_is_persisted_privately_and_reused(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, {"form": "standard-webhooks"}, environ={})
    second = load_or_create(tmp_path, {"form": "standard-webhooks"}, environ={})

    assert first == second
    (secret,) = first["form"].signing
    assert secret.startswith("whsec_") and len(secret_key(secret)) == 24
    path = tmp_path / "secrets.json"
    assert json.loads(path.read_text()) == {"form": [secret]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert lookup(tmp_path, "form", "standard-webhooks", environ={}) == first["form"]


def test_each_source_gets_a_secret_shaped_like_its_providers(tmp_path: Path) -> None:
    secrets = load_or_create(tmp_path, ALL, environ={})
    (form,), (stripe,), (slack,), (github,), (hubspot,) = (
        secrets[name].signing for name in ("form", "stripe", "slack", "github", "hubspot"))

    assert secret_key(form)  # whsec_<base64>, the key is the decoded part
    assert re.fullmatch(r"whsec_[A-Za-z0-9]{32}", stripe)  # used as text
    assert re.fullmatch(r"[0-9a-f]{32}", slack)
    assert re.fullmatch(r"[0-9a-f]{40}", github)
    assert uuid.UUID(hubspot)
    whatsapp = secrets["whatsapp"]
    assert re.fullmatch(r"[0-9a-f]{32}", whatsapp.signing[0])
    assert len(whatsapp.extras["verify_token"]) >= 20
    assert len({s for v in secrets.values() for s in v.signing}) == len(ALL)
    # WhatsApp's is kept as the JSON Secrets Manager holds, and reads back the same
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert stored["whatsapp"] == {"signing": list(whatsapp.signing), "verify_token": whatsapp.extras["verify_token"]}
    assert load_or_create(tmp_path, ALL, environ={}) == secrets
    assert lookup(tmp_path, "whatsapp", "whatsapp", environ={}) == whatsapp


@pytest.mark.parametrize("scheme", ["standard-webhooks", "stripe", "slack", "whatsapp", "hubspot", "github"])
def test_a_secret_rendered_for_secrets_manager_parses_back_as_the_ingest_reads_it(scheme: str) -> None:
    free_text = scheme == "github"
    value = generate(scheme)
    assert parse_secret(render(value, scheme), free_text=free_text) == value
    # a rotation's two secrets, and (GitHub) secrets with spaces, read back as the same two
    rotating = SourceSecrets(signing=(*value.signing, *generate(scheme).signing), extras=value.extras)
    assert parse_secret(render(rotating, scheme), free_text=free_text) == rotating
    if free_text:
        spaced = SourceSecrets(signing=("It's a Secret to Everybody",))
        assert render(spaced, scheme) == json.dumps({"signing": ["It's a Secret to Everybody"]})
        assert parse_secret(render(spaced, scheme), free_text=True) == spaced


def test_the_environment_wins_and_may_hold_several_secrets(tmp_path: Path) -> None:
    rotating = f"{generate().signing[0]}  {generate().signing[0]}"

    secrets = load_or_create(tmp_path, {"form": "standard-webhooks"}, environ={"INTERLOCK_SECRET_FORM": rotating})

    assert secrets["form"].signing == tuple(rotating.split())
    assert not (tmp_path / "secrets.json").exists()
    assert lookup(tmp_path, "form", "standard-webhooks", environ={"INTERLOCK_SECRET_FORM": rotating}) == secrets["form"]


def test_the_environment_holds_what_secrets_manager_would_hold(tmp_path: Path) -> None:
    environ = {
        "INTERLOCK_SECRET_WHATSAPP": '{"signing": ["old", "new"], "verify_token": "vt-123"}',
        "INTERLOCK_SECRET_STRIPE": "whsec_notbase64!",  # Stripe's secret is used as text
    }
    secrets = load_or_create(tmp_path, {"whatsapp": "whatsapp", "stripe": "stripe"}, environ=environ)

    assert secrets["whatsapp"] == SourceSecrets(signing=("old", "new"), extras={"verify_token": "vt-123"})
    assert secrets["stripe"].signing == ("whsec_notbase64!",)


def test_an_empty_variable_means_the_source_has_no_secret(tmp_path: Path) -> None:
    secrets = load_or_create(tmp_path, {"form": "standard-webhooks", "github": "github"},
                             environ={"INTERLOCK_SECRET_GITHUB": " "})

    assert secrets["github"] == NO_SECRET and not secrets["github"]
    assert secrets["form"]
    assert "github" not in json.loads((tmp_path / "secrets.json").read_text())


@pytest.mark.parametrize(("scheme", "value"), [
    ("standard-webhooks", "hunter2"),
    ("whatsapp", '{"verify_token": "hunter2"}'),
    ("whatsapp", '{"signing": ["hunter2"'),
])
def test_a_bad_configured_secret_is_refused_without_echoing_it(tmp_path: Path, scheme: str, value: str) -> None:
    with pytest.raises(SecretConfigError) as caught:
        load_or_create(tmp_path, {"src": scheme}, environ={"INTERLOCK_SECRET_SRC": value})

    assert "INTERLOCK_SECRET_SRC" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_an_existing_secrets_file_keeps_its_secrets_and_gains_the_new_sources(tmp_path: Path) -> None:
    kept = generate().signing[0]
    (tmp_path / "secrets.json").write_text(json.dumps({"form": [kept]}))

    secrets = load_or_create(tmp_path, ALL, environ={})

    assert secrets["form"].signing == (kept,)
    assert set(json.loads((tmp_path / "secrets.json").read_text())) == set(ALL)


def test_a_stored_list_is_that_many_secrets_each_whole_even_for_free_text_schemes(tmp_path: Path) -> None:
    # A GitHub secret may hold spaces: two stored secrets stay two, and neither is split into words
    stored = {"github": ["new one", "old one"], "stripe": ["whsec_a", "whsec_b"]}
    (tmp_path / "secrets.json").write_text(json.dumps(stored))

    secrets = load_or_create(tmp_path, {"github": "github", "stripe": "stripe"}, environ={})

    assert secrets["github"].signing == ("new one", "old one")
    assert secrets["stripe"].signing == ("whsec_a", "whsec_b")
    assert lookup(tmp_path, "github", "github", environ={}) == secrets["github"]


def test_lookup_creates_nothing(tmp_path: Path) -> None:
    assert lookup(tmp_path, "form", "standard-webhooks", environ={}) is None
    assert not (tmp_path / "secrets.json").exists()


def test_env_var_names_are_upper_snake_case() -> None:
    assert env_var("form") == "INTERLOCK_SECRET_FORM"
    assert env_var("hub-spot") == "INTERLOCK_SECRET_HUB_SPOT"
