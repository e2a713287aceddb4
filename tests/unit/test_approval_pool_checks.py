"""``interlock run`` refuses, before anything starts, an approver pool that is no list of distinct addresses, or
one smaller than what a workflow's wait asks (it could never be approved)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from interlock.local.env import InvalidLocalSetting, check_settings
from quorum_workflow import PACKAGE, write

API = "http://127.0.0.1:8000"


@pytest.fixture
def two_person_workflow(tmp_path: Path) -> Iterator[str]:
    from interlock.kit import registry

    write(tmp_path)
    sys.path.insert(0, str(tmp_path))
    registry.clear()
    try:
        yield PACKAGE
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
        registry.clear()


def test_given_a_workflow_asking_two_approvers_and_one_address_then_the_runtime_refuses_to_start(
        two_person_workflow: str) -> None:
    environ = {"INTERLOCK_EXTRA_WORKFLOWS": two_person_workflow, "INTERLOCK_APPROVER_EMAIL": "ops@corp.io"}

    with pytest.raises(InvalidLocalSetting, match=r"INTERLOCK_APPROVER_EMAIL.*'throwaway_quorum' asks 2 different"):
        check_settings(API, environ)


def test_given_a_workflow_asking_two_approvers_and_a_pool_of_two_then_it_starts(two_person_workflow: str) -> None:
    check_settings(API, {"INTERLOCK_EXTRA_WORKFLOWS": two_person_workflow,
                         "INTERLOCK_APPROVER_EMAIL": "ann@corp.io, bob@corp.io"})


@pytest.mark.parametrize("pool", ["ann@corp.io,ann@corp.io", "ann@corp.io,,bob@corp.io", "ann@corp.io bob@corp.io"])
def test_given_a_pool_that_is_no_list_of_distinct_addresses_then_the_runtime_refuses_to_start(pool: str) -> None:
    with pytest.raises(InvalidLocalSetting, match="INTERLOCK_APPROVER_EMAIL"):
        check_settings(API, {"INTERLOCK_APPROVER_EMAIL": pool})


def test_given_the_defaults_then_the_runtime_starts() -> None:
    check_settings(API, {})
