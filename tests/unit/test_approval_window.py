"""An approval link outlives the wait for its decision: a link never says "expired, escalated" while the run waits."""

from __future__ import annotations

import pytest
from interlock.settings import ApprovalRequestSettings, ApprovalWindow, SettingsError, load
from pydantic import ValidationError


def test_given_the_defaults_then_the_link_lives_exactly_as_long_as_the_wait() -> None:
    window = ApprovalWindow()
    assert window.approval_ttl_seconds == window.approval_timeout_seconds


@pytest.mark.parametrize(("ttl", "timeout"), [(3600, 3600), (7200, 3600)])
def test_given_a_link_that_outlives_the_wait_then_it_is_accepted(ttl: int, timeout: int) -> None:
    ApprovalWindow(approval_ttl_seconds=ttl, approval_timeout_seconds=timeout)


def test_given_a_link_shorter_than_the_wait_then_the_settings_are_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match=r"approval_ttl_seconds .* must be at least approval_timeout_seconds"):
        ApprovalWindow(approval_ttl_seconds=600, approval_timeout_seconds=3600)


def test_given_the_request_approval_function_with_a_short_link_then_its_cold_start_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"TABLE_NAME": "t", "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
                        "APPROVER_EMAIL": "a@b.co", "SENDER_EMAIL": "s@b.co",
                        "APPROVAL_TTL_SECONDS": "600", "APPROVAL_TIMEOUT_SECONDS": "3600"}.items():
        monkeypatch.setenv(f"INTERLOCK_{name}", value)
    load.cache_clear()
    try:
        with pytest.raises(SettingsError, match="approval_timeout_seconds"):
            load(ApprovalRequestSettings)
    finally:
        load.cache_clear()
