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


def test_given_an_approver_pool_naming_one_person_twice_when_checked_then_synthesis_refuses_it() -> None:
    stack = Stack(App(context={"interlock:approver_email": "ops@corp.io, OPS@corp.io"}), "TwiceInThePool")
    with pytest.raises(InvalidSettingError, match=r"interlock:approver_email: .*same approver twice"):
        check_settings(stack)


def test_given_a_pool_of_approvers_then_the_send_grant_lists_each_and_placeholders_are_found_in_any() -> None:
    from aws_cdk.assertions import Template

    from infra.constructs.email import ApprovalEmail
    from infra.context import is_placeholder_email

    stack = Stack(App(), "Pool")
    email = ApprovalEmail(stack, "Email", sender_email="s@corp.io", approver_email="ann@corp.io,bob@corp.io")
    from aws_cdk import aws_iam as iam

    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    email.grant_send(role)
    policy = str(Template.from_stack(stack).find_resources("AWS::IAM::Policy"))
    assert "identity/ann@corp.io" in policy and "identity/bob@corp.io" in policy
    assert is_placeholder_email("ann@corp.io,x@example.com") and is_placeholder_email("x@example.com,ann@corp.io")
    assert not is_placeholder_email("ann@corp.io,bob@corp.io")


def test_given_a_workflow_setting_its_steps_would_refuse_when_checked_then_synthesis_refuses_it() -> None:
    stack = Stack(App(context={"interlock:invoice_auto_limit": "5000", "interlock:invoice_two_person_limit": "2000"}),
                  "LimitsTheWrongWayRound")
    with pytest.raises(InvalidSettingError, match=r"workflow 'invoice_intake': invoice_two_person_limit \(2000\) is "
                                                  r"below invoice_auto_limit \(5000\)"):
        check_settings(stack)
