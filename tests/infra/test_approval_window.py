"""Synthesis refuses an approval link that would expire while its run still waits."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack

from infra.context import InvalidSettingError, check_settings

pytestmark = pytest.mark.infra


def test_given_a_link_shorter_than_the_approval_wait_when_checked_then_synthesis_refuses_it() -> None:
    stack = Stack(App(context={"interlock:approval_ttl_seconds": "3600",
                               "interlock:approval_timeout_seconds": "86400"}), "ShortLink")
    with pytest.raises(InvalidSettingError, match=r"approval_ttl_seconds .* must be at least approval_timeout_seconds"):
        check_settings(stack)


def test_given_a_link_that_outlives_the_wait_when_checked_then_it_passes() -> None:
    check_settings(Stack(App(context={"interlock:approval_ttl_seconds": "86400",
                                      "interlock:approval_timeout_seconds": "3600"}), "LongLink"))
