"""Each workflow's own settings are checked as its steps read them (its ``settings_check``), so that `make run` and
the synthesis refuse a value a run would fail on: the invoice intake's limits and tolerance (and the two limits
together), the recovery's wait and reminders, the sales lead's discount threshold, and the addresses they email."""

from __future__ import annotations

from decimal import Decimal

import pytest
from interlock.kit import registry
from interlock.local.env import InvalidLocalSetting, check_settings
from interlock.topology import DeploymentSettings
from interlock.workflows.invoice_intake import limits
from interlock.workflows.payment_recovery import limits as recovery
from interlock.workflows.sales_lead import limits as sales

API = "http://127.0.0.1:8000"
INVOICE = {"invoice_auto_limit": "1000", "invoice_two_person_limit": "10000", "invoice_po_tolerance_pct": "2",
           "payables_email": ""}


def test_given_the_defaults_then_no_workflow_finds_a_problem() -> None:
    defaults = DeploymentSettings()
    workflows = registry.workflows("").values()
    assert {w.name for w in workflows if w.settings_check} >= {"invoice_intake", "payment_recovery", "sales_lead"}
    assert registry.settings_problems(workflows, defaults.get) == []


@pytest.mark.parametrize(("changed", "problem"), [
    ({"invoice_auto_limit": "lots"}, "invoice_auto_limit must be a number, not 'lots'"),
    ({"invoice_auto_limit": "NaN"}, "invoice_auto_limit must be a number of at least 0, not 'NaN'"),
    ({"invoice_two_person_limit": "-1"}, "invoice_two_person_limit must be a number of at least 0, not '-1'"),
    ({"invoice_po_tolerance_pct": "150"}, "invoice_po_tolerance_pct is a percentage of the PO's remaining amount: "
                                          "at most 100, not '150'"),
    ({"invoice_auto_limit": "5000", "invoice_two_person_limit": "2000"},
     "invoice_two_person_limit (2000) is below invoice_auto_limit (5000): an invoice needing two approvers must "
     "also be one that needs a person"),
    ({"payables_email": "payables at corp"}, "payables_email is one email address, or empty for nobody"),
    ({"payables_email": "a@corp.io, b@corp.io"}, "payables_email is one email address, or empty for nobody"),
])
def test_given_a_bad_invoice_setting_then_its_check_names_it(changed: dict[str, str], problem: str) -> None:
    assert limits.check({**INVOICE, **changed}) == [problem]


def test_given_empty_invoice_limits_then_the_defaults_are_read_as_the_steps_read_them() -> None:
    empty = {name: "" for name in INVOICE}
    assert limits.check(empty) == []
    assert [limits.amount(name, "") for name in limits.DEFAULTS] == [Decimal("1000"), Decimal("10000"), Decimal("2")]
    assert limits.amount("invoice_po_tolerance_pct", " 0.5 ") == Decimal("0.5")
    assert limits.check({**INVOICE, "invoice_auto_limit": "10000"}) == []  # equal limits: two approvers from there


@pytest.mark.parametrize(("changed", "problem"), [
    ({"payment_wait_seconds": "3 days"}, "payment_wait_seconds must be a whole number, not '3 days'"),
    ({"payment_wait_seconds": "0"}, "payment_wait_seconds must be between 1 and 31536000, not 0"),
    ({"payment_reminders": "11"}, "payment_reminders must be between 0 and 10, not 11"),
    ({"customer_success_email": "success"}, "customer_success_email is one email address, or empty for nobody"),
])
def test_given_a_bad_recovery_setting_then_its_check_names_it(changed: dict[str, str], problem: str) -> None:
    good = {"payment_wait_seconds": "", "payment_reminders": "2", "customer_success_email": "cs@corp.io",
            "sender_email": "interlock@corp.io"}
    assert recovery.check_settings(good) == []
    assert recovery.check_settings({**good, **changed}) == [problem]


@pytest.mark.parametrize("bad", ["-1", "101", "nan", "fifteen"])
def test_given_a_bad_discount_threshold_then_the_sales_check_names_it(bad: str) -> None:
    assert sales.check_settings({"sales_discount_approval_pct": ""}) == []
    assert sales.check_settings({"sales_discount_approval_pct": bad}) == [
        f"sales_discount_approval_pct must be a percentage from 0 to 100, not {bad!r}"]


def test_given_a_bad_workflow_setting_then_the_local_runtime_refuses_to_start_naming_the_workflow() -> None:
    environ = {"INTERLOCK_INVOICE_AUTO_LIMIT": "5000", "INTERLOCK_INVOICE_TWO_PERSON_LIMIT": "2000",
               "INTERLOCK_PAYMENT_REMINDERS": "-1"}
    with pytest.raises(InvalidLocalSetting) as refused:
        check_settings(API, environ)
    message = str(refused.value)
    assert message.startswith("invalid workflow setting(s) (INTERLOCK_<SETTING> in the environment): ")
    assert "workflow 'invoice_intake': invoice_two_person_limit (2000) is below invoice_auto_limit (5000)" in message
    assert "workflow 'payment_recovery': payment_reminders must be between 0 and 10, not -1" in message
