"""Settings are read from INTERLOCK_* once per cold start; a bad or missing value names its variable."""

from __future__ import annotations

import pytest
from interlock import settings
from interlock.settings import (
    ApprovalRequestSettings,
    GuardrailSettings,
    IngestSettings,
    RouterSettings,
    SettingsError,
    TableSettings,
    load,
)
from interlock.webhooks.registry import parse_enabled


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("INTERLOCK_"):
            monkeypatch.delenv(name)
    load.cache_clear()
    yield
    load.cache_clear()


def test_given_the_table_name_is_missing_when_loaded_then_the_error_names_interlock_table_name():
    with pytest.raises(SettingsError) as exc_info:
        load(TableSettings)

    assert "INTERLOCK_TABLE_NAME" in str(exc_info.value)
    assert "TableSettings" in str(exc_info.value)


def test_given_several_required_values_missing_when_loaded_then_each_variable_is_named(monkeypatch):
    monkeypatch.setenv("INTERLOCK_TABLE_NAME", "t")

    with pytest.raises(SettingsError) as exc_info:
        load(ApprovalRequestSettings)

    message = str(exc_info.value)
    for name in ("INTERLOCK_PUBLIC_BASE_URL", "INTERLOCK_APPROVER_EMAIL", "INTERLOCK_SENDER_EMAIL"):
        assert name in message
    assert "INTERLOCK_TABLE_NAME" not in message


@pytest.mark.parametrize(
    ("cls", "variable", "value"),
    [
        (IngestSettings, "INTERLOCK_MAX_BODY_BYTES", "lots"),
        (IngestSettings, "INTERLOCK_MAX_BODY_BYTES", "0"),
        (IngestSettings, "INTERLOCK_TIMESTAMP_TOLERANCE_SECONDS", "-5"),
        (RouterSettings, "INTERLOCK_APPROVAL_TIMEOUT_SECONDS", "soon"),
        (GuardrailSettings, "INTERLOCK_APPROVAL_MIN_CONFIDENCE", "1.5"),
        (GuardrailSettings, "INTERLOCK_APPROVAL_MIN_CONFIDENCE", "high"),
    ],
)
def test_given_a_bad_value_when_loaded_then_the_error_names_that_variable(monkeypatch, cls, variable, value):
    monkeypatch.setenv("INTERLOCK_TABLE_NAME", "t")
    monkeypatch.setenv("INTERLOCK_INGEST_QUEUE_URL", "https://sqs.example/q")
    monkeypatch.setenv("INTERLOCK_STATE_MACHINE_SUPPORT_TRIAGE", "arn:sm")
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as exc_info:
        load(cls)

    assert variable in str(exc_info.value)


def test_given_an_empty_required_value_when_loaded_then_it_is_refused(monkeypatch):
    monkeypatch.setenv("INTERLOCK_TABLE_NAME", "")

    with pytest.raises(SettingsError, match="INTERLOCK_TABLE_NAME"):
        load(TableSettings)


def test_given_valid_values_when_loaded_then_types_are_converted_and_defaults_apply(monkeypatch):
    monkeypatch.setenv("INTERLOCK_TABLE_NAME", "timeline")
    monkeypatch.setenv("INTERLOCK_INGEST_QUEUE_URL", "https://sqs.example/q")
    monkeypatch.setenv("INTERLOCK_MAX_BODY_BYTES", "1024")
    monkeypatch.setenv("INTERLOCK_ENABLED_SOURCES", " form , typeform=standard-webhooks ,,")

    loaded = load(IngestSettings)

    assert loaded.max_body_bytes == 1024
    assert loaded.timestamp_tolerance_seconds == 300
    assert loaded.secret_prefix == "interlock/webhooks/"
    assert parse_enabled(loaded.enabled_sources) == {"form": "standard-webhooks", "typeform": "standard-webhooks"}


def test_given_a_source_with_no_known_scheme_when_loaded_then_the_cold_start_fails_naming_it(monkeypatch):
    monkeypatch.setenv("INTERLOCK_TABLE_NAME", "timeline")
    monkeypatch.setenv("INTERLOCK_INGEST_QUEUE_URL", "https://sqs.example/q")
    monkeypatch.setenv("INTERLOCK_ENABLED_SOURCES", "form,carrier-pigeon")

    with pytest.raises(SettingsError, match=r"INTERLOCK_ENABLED_SOURCES.*carrier-pigeon"):
        load(IngestSettings)


def test_given_settings_loaded_once_when_the_environment_changes_then_the_cold_start_value_is_kept(monkeypatch):
    monkeypatch.setenv("INTERLOCK_TABLE_NAME", "first")
    assert load(TableSettings).table_name == "first"

    monkeypatch.setenv("INTERLOCK_TABLE_NAME", "second")

    assert load(TableSettings).table_name == "first"
    settings.load.cache_clear()
    assert load(TableSettings).table_name == "second"


def test_given_loaded_settings_then_they_are_immutable(monkeypatch):
    monkeypatch.setenv("INTERLOCK_TABLE_NAME", "t")

    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        load(TableSettings).table_name = "other"  # type: ignore[misc]
