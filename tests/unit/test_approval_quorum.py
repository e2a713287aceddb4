"""The quorum's rules (Quorum.take, pure): approvals counted by approver, the first rejection ending it, both
orders of the last approval and a rejection; the approver pool and what the workflows ask of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from interlock.approvals import (
    ApprovalRequestInput,
    ApprovalStatus,
    Decision,
    Quorum,
    Verdict,
    approvers_asked,
    quorum_problems,
)
from interlock.settings import ApprovalRequestSettings, SettingsError, approver_pool, load
from pydantic import ValidationError

NOW = 1_000_000.0


def quorum(required: int = 2) -> Quorum:
    return Quorum(key="QUORUM#k", run_id="run-1", task_token="tok", status=ApprovalStatus.PENDING,
                  required=required, created_at=NOW, deadline=NOW + 3600, context={}, version=1)


def test_given_two_needed_when_one_approves_then_counted_and_still_pending() -> None:
    verdict, after = quorum().take("ann@corp.io", Decision.APPROVE, NOW)

    assert verdict is Verdict.COUNTED
    assert (after.status, after.approvals, after.version) == (ApprovalStatus.PENDING, 1, 2)
    assert after.status_for("ann@corp.io") is ApprovalStatus.APPROVED
    assert after.status_for("bob@corp.io") is ApprovalStatus.PENDING


def test_given_one_approved_when_a_second_person_approves_then_the_quorum_is_reached() -> None:
    _, one = quorum().take("ann@corp.io", Decision.APPROVE, NOW)

    verdict, after = one.take("bob@corp.io", Decision.APPROVE, NOW + 1)

    assert verdict is Verdict.REACHED and verdict.ends_the_wait
    assert (after.status, after.approvals, after.decided_at) == (ApprovalStatus.APPROVED, 2, NOW + 1)
    output = after.output(after.decisions[-1])
    assert output["decision"] == "approved" and (output["approvals"], output["required"]) == (2, 2)
    assert [d["approver"] for d in output["decisions"]] == ["ann@corp.io", "bob@corp.io"]
    assert after.status_for("cy@corp.io") is ApprovalStatus.CLOSED


@pytest.mark.parametrize("again", ["ann@corp.io", "ANN@corp.io", " ann@Corp.IO "], ids=["same", "upper", "spaced"])
def test_given_one_approved_when_the_same_person_approves_again_then_it_does_not_count(again: str) -> None:
    _, one = quorum().take("ann@corp.io", Decision.APPROVE, NOW)

    verdict, after = one.take(again, Decision.APPROVE, NOW + 1)

    assert verdict is Verdict.ALREADY and after is one
    assert after.approvals == 1


def test_given_one_approved_when_the_same_person_rejects_then_nothing_changes() -> None:
    _, one = quorum().take("ann@corp.io", Decision.APPROVE, NOW)

    assert one.take("ann@corp.io", Decision.REJECT, NOW + 1) == (Verdict.ALREADY, one)


def test_given_a_pending_quorum_when_anyone_rejects_then_it_ends_rejected_and_closes_the_others() -> None:
    _, one = quorum(3).take("ann@corp.io", Decision.APPROVE, NOW)

    verdict, after = one.take("bob@corp.io", Decision.REJECT, NOW + 1)

    assert verdict is Verdict.REJECTED and verdict.ends_the_wait
    assert after.status is ApprovalStatus.REJECTED
    assert after.output(after.decisions[-1])["decision"] == "rejected"
    assert after.take("cy@corp.io", Decision.APPROVE, NOW + 2) == (Verdict.CLOSED, after)
    assert after.status_for("cy@corp.io") is ApprovalStatus.CLOSED
    assert after.status_for("ann@corp.io") is ApprovalStatus.APPROVED


def test_given_the_last_approval_and_a_rejection_both_read_one_state_when_the_approval_lands_first() -> None:
    # Both decisions were computed from the same read; the store writes only the first (same version), and the
    # second is computed again from what is there now.
    _, read = quorum().take("ann@corp.io", Decision.APPROVE, NOW)
    approval = read.take("bob@corp.io", Decision.APPROVE, NOW + 1)
    rejection = read.take("cy@corp.io", Decision.REJECT, NOW + 1)
    assert approval[1].version == rejection[1].version == read.version + 1  # only one can land on it

    landed = approval[1]
    assert landed.take("cy@corp.io", Decision.REJECT, NOW + 2) == (Verdict.CLOSED, landed)


def test_given_the_last_approval_and_a_rejection_both_read_one_state_when_the_rejection_lands_first() -> None:
    _, read = quorum().take("ann@corp.io", Decision.APPROVE, NOW)
    landed = read.take("cy@corp.io", Decision.REJECT, NOW + 1)[1]

    assert landed.take("bob@corp.io", Decision.APPROVE, NOW + 2) == (Verdict.CLOSED, landed)
    assert landed.status is ApprovalStatus.REJECTED


def test_given_the_deadline_when_decided_then_expired_and_nothing_changes() -> None:
    q = quorum()

    assert q.take("ann@corp.io", Decision.APPROVE, q.deadline) == (Verdict.EXPIRED, q)
    assert q.take("ann@corp.io", Decision.APPROVE, q.deadline - 1)[0] is Verdict.COUNTED


def test_given_a_voided_quorum_then_every_link_is_expired() -> None:
    _, one = quorum().take("ann@corp.io", Decision.APPROVE, NOW)
    void = one.model_copy(update={"status": ApprovalStatus.EXPIRED})

    assert void.status_for("ann@corp.io") is ApprovalStatus.EXPIRED
    assert void.take("bob@corp.io", Decision.APPROVE, NOW)[0] is Verdict.EXPIRED


def test_given_a_single_link_decided_before_quorums_kept_decisions_then_it_reads_as_already_decided() -> None:
    legacy = quorum(1).model_copy(update={"status": ApprovalStatus.APPROVED, "version": 0})

    assert legacy.status_for("") is ApprovalStatus.APPROVED
    assert legacy.take("", Decision.REJECT, NOW)[0] is Verdict.ALREADY


def test_given_a_counted_approval_taken_back_then_pending_again_at_a_new_version() -> None:
    _, one = quorum().take("ann@corp.io", Decision.APPROVE, NOW)

    back = one.without(one.decisions[0], one.version + 1)

    assert (back.decisions, back.status, back.version) == ([], ApprovalStatus.PENDING, 3)


@pytest.mark.parametrize("approvers", [0, 6, -1])
def test_given_approvers_out_of_range_then_the_request_is_refused(approvers: int) -> None:
    with pytest.raises(ValidationError):
        ApprovalRequestInput(run_id="r", task_token="t", approvers=approvers, context={})


def test_given_no_approvers_then_one() -> None:
    assert ApprovalRequestInput(run_id="r", task_token="t", context={}).approvers == 1


# -- the pool --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "pool"), [
    ("ops@corp.io", ("ops@corp.io",)),
    ("ann@corp.io,bob@corp.io", ("ann@corp.io", "bob@corp.io")),
    (" ann@corp.io , bob@corp.io ", ("ann@corp.io", "bob@corp.io")),
])
def test_given_a_pool_setting_then_its_addresses(value: str, pool: tuple[str, ...]) -> None:
    assert approver_pool(value) == pool


@pytest.mark.parametrize(("value", "says"), [
    ("", "no approver"),
    ("ann@corp.io,,bob@corp.io", "empty entry"),
    ("ann@corp.io,", "empty entry"),
    ("ann@corp.io;bob@corp.io", "not an email address"),
    ("ann", "not an email address"),
    ("ann@corp.io,ANN@corp.io", "same approver twice"),
    (",".join(f"a{i}@corp.io" for i in range(11)), "at most 10"),
])
def test_given_a_pool_that_is_no_list_of_distinct_addresses_then_refused(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        approver_pool(value)


def test_given_a_bad_pool_at_cold_start_then_the_settings_name_the_variable(monkeypatch) -> None:
    for name, value in {"TABLE_NAME": "t", "PUBLIC_BASE_URL": "https://x", "SENDER_EMAIL": "s@corp.io",
                        "APPROVER_EMAIL": "ann@corp.io,ann@corp.io"}.items():
        monkeypatch.setenv(f"INTERLOCK_{name}", value)
    load.cache_clear()
    try:
        with pytest.raises(SettingsError, match=r"INTERLOCK_APPROVER_EMAIL.*same approver twice"):
            load(ApprovalRequestSettings)
    finally:
        load.cache_clear()


# -- what the workflows ask ---------------------------------------------------------------------------------------


def test_approvers_asked_finds_every_request_approval_task_with_a_number() -> None:
    definition = {"States": {
        "One": {"Parameters": {"Payload": {"step": "request_approval", "approvers": 2}}},
        "Default": {"Parameters": {"Payload": {"step": "request_approval"}}},
        "Dynamic": {"Parameters": {"Payload": {"step": "request_approval", "approvers.$": "$.quorum"}}},
        "Par": {"Branches": [{"States": {"Deep": {"Parameters": {"step": "request_approval", "approvers": 3}}}}]},
        "Other": {"Parameters": {"step": "record", "approvers": 9}},
    }}

    assert sorted(approvers_asked(definition)) == [1, 2, 3]


@dataclass(frozen=True)
class FakeWorkflow:
    name: str
    folder: Path
    wait: str | None = "wait.asl.json"

    def definition_path(self, kind: str) -> Path:
        return self.folder / str(self.wait)


def test_given_a_wait_asking_more_approvers_than_the_pool_then_a_problem_naming_the_workflow(tmp_path) -> None:
    (tmp_path / "wait.asl.json").write_text(json.dumps(
        {"States": {"Ask": {"Parameters": {"Payload": {"step": "request_approval", "approvers": 2}}}}}))
    workflows = [FakeWorkflow("invoices", tmp_path), FakeWorkflow("no_wait", tmp_path, wait=None)]

    [problem] = quorum_problems("ap@corp.io", workflows)
    assert "'invoices' asks 2 different approvers" in problem and "names 1" in problem
    assert quorum_problems("ann@corp.io,bob@corp.io", workflows) == []
    assert "same approver twice" in quorum_problems("a@corp.io,a@corp.io", workflows)[0]


def test_the_built_in_workflows_fit_the_default_pool() -> None:
    from interlock.kit import registry
    from interlock.topology import DeploymentSettings

    assert quorum_problems(DeploymentSettings().approver_email, registry.workflows("").values()) == []
