"""The invoice intake's deterministic rules (``workflows/invoice_intake/rules.py``): every validation, comparison
and review rule, with its edges (amounts in minor units, the tolerance exactly at and a cent over, the limits
exactly at)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from interlock.workflows.invoice_intake import rules
from interlock.workflows.invoice_intake.models import (
    Checked,
    Comparison,
    ExtractedField,
    ExtractedInvoice,
    ExtractedLine,
    Extraction,
    Flag,
    PoFacts,
)
from interlock.workflows.invoice_intake.rules import Unreadable


def field(value: str | None, confidence: float = 0.99) -> ExtractedField:
    return ExtractedField(value=value, confidence=confidence if value is not None else 0.0)


CLEAN: dict[str, Any] = {
    "vendor": "Acme Office Supplies GmbH", "vendor_tax_id": "DE123456789", "invoice_number": "ACME-2025-1001",
    "issue_date": "2025-03-03", "due_date": "2025-04-02", "currency": "EUR", "po_number": "PO-4500",
    "subtotal": "400.00", "tax": "76.00", "total": "476.00", "iban": "DE89 3704 0044 0532 0130 00",
    "bic": "COBADEFFXXX",
}
LINES = [("Printer paper", "100.00"), ("Toner", "300.00")]


def invoice(lines: list[tuple[str, str | None]] | None = None, confidence: dict[str, float] | None = None,
            **changes: str | None) -> ExtractedInvoice:
    values = {**CLEAN, **changes}
    sure = confidence or {}
    return ExtractedInvoice(
        **{name: field(value, sure.get(name, 0.99)) for name, value in values.items()},
        lines=[ExtractedLine(description=d, amount=a, confidence=sure.get("lines", 0.99))
               for d, a in (LINES if lines is None else lines)])


def check(extracted: ExtractedInvoice, escalation: str | None = None, truncated: bool = False) -> Checked:
    return rules.check_invoice(Extraction(found=True, invoice=extracted, confidence=0.9, decided_by="offline",
                                          escalation=escalation), truncated=truncated)


def codes(flags: list[Flag]) -> list[tuple[str, str | None]]:
    return [(f.code, f.field) for f in flags]


# -- amounts ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "amount"), [
    ("476.00", Decimal("476.00")), ("476", Decimal("476")), ("1,234.56", Decimal("1234.56")),
    ("1 234 567.8", Decimal("1234567.8")), ("EUR 48,400.00", Decimal("48400.00")), ("€12.50", Decimal("12.50")),
    ("0.10", Decimal("0.10")), ("12'000.00", Decimal("12000.00")),
])
def test_amounts_as_invoices_write_them_are_read_exactly(text: str, amount: Decimal) -> None:
    read = rules.parse_amount(text)
    assert read == amount and str(read) == str(amount)


@pytest.mark.parametrize("text", ["1.234,56", "12,34", "ten", "1e3", "", "1,23.00", "--5", "12.", "NaN", "inf"])
def test_an_amount_written_any_other_way_is_unreadable_not_guessed(text: str) -> None:
    with pytest.raises(Unreadable) as problem:
        rules.parse_amount(text)
    assert problem.value.code == "unreadable_amount"


def test_amounts_are_given_the_minor_units_of_their_currency_and_more_decimals_are_refused() -> None:
    assert str(rules.in_minor_units(Decimal("476"), "EUR")) == "476.00"
    assert str(rules.in_minor_units(Decimal("1000"), "JPY")) == "1000"
    assert str(rules.in_minor_units(Decimal("12.5"), "KWD")) == "12.500"
    assert str(rules.in_minor_units(Decimal("1.5"), "CLF")) == "1.5000"
    for amount, currency in ((Decimal("0.005"), "EUR"), (Decimal("100.5"), "JPY"), (Decimal("1.0001"), "BHD")):
        with pytest.raises(Unreadable) as problem:
            rules.in_minor_units(amount, currency)
        assert problem.value.code == "amount_precision"


def test_the_iso_4217_table_has_the_exceptional_minor_units_and_no_code_without_one() -> None:
    assert {c: rules.MINOR_UNITS[c] for c in ("EUR", "USD", "GBP", "JPY", "KRW", "BHD", "TND", "CLF")} == {
        "EUR": 2, "USD": 2, "GBP": 2, "JPY": 0, "KRW": 0, "BHD": 3, "TND": 3, "CLF": 4}
    assert not {"XAU", "XDR", "XTS", "XXX", "EURO", "eur"} & set(rules.MINOR_UNITS)
    assert all(len(code) == 3 and code.isupper() for code in rules.MINOR_UNITS)


def test_a_clean_invoice_has_no_flag_and_its_amounts_in_minor_units() -> None:
    checked = check(invoice(subtotal="400", tax="76", total="476"))

    assert checked.flags == []
    assert (checked.subtotal, checked.tax, checked.total, checked.minor_units) == ("400.00", "76.00", "476.00", 2)
    assert (checked.iban, checked.vendor_tax_id, checked.lines) == ("DE89370400440532013000", "DE123456789", 2)


def test_lines_that_do_not_add_up_to_the_subtotal_are_flagged_to_the_cent() -> None:
    off_by_a_cent = check(invoice(lines=[("Paper", "100.00"), ("Toner", "299.99")]))
    no_lines = check(invoice(lines=[]))

    assert codes(off_by_a_cent.flags) == [("lines_do_not_sum", "subtotal")]
    assert "399.99" in off_by_a_cent.flags[0].detail
    assert no_lines.flags == []  # an invoice without itemised lines has nothing to add up


def test_subtotal_plus_tax_must_be_the_total_to_the_cent() -> None:
    assert codes(check(invoice(total="476.01")).flags) == [("totals_do_not_add_up", "total")]
    assert check(invoice(tax=None, subtotal="476.00", lines=[("All", "476.00")])).flags == []  # no tax: subtotal


def test_float_sums_that_would_pass_with_binary_floats_are_exact_here() -> None:
    # 0.1 + 0.2 != 0.3 in binary floating point; in Decimal it is exactly 0.30
    checked = check(invoice(lines=[("A", "0.10"), ("B", "0.20")], subtotal="0.30", tax="0.00", total="0.30"))
    assert checked.flags == []


def test_a_zero_decimal_currency_with_cents_is_flagged_and_not_compared() -> None:
    checked = check(invoice(currency="JPY", subtotal="400.50", tax="76", total="476.50", lines=[]))

    assert codes(checked.flags) == [("amount_precision", "subtotal"), ("amount_precision", "total")]
    assert checked.total is None


def test_a_negative_or_unreadable_amount_is_flagged_on_its_field() -> None:
    checked = check(invoice(total="-476.00", tax="seventy-six"))
    assert codes(checked.flags) == [("unreadable_amount", "tax"), ("negative_amount", "total")]


def test_an_unknown_currency_is_flagged_and_nothing_is_compared_without_it() -> None:
    checked = check(invoice(currency="EURO", total="999.00"))
    assert codes(checked.flags) == [("unknown_currency", "currency")]
    assert checked.currency is None and checked.total == "999.00"


# -- dates --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("issue", "due", "flags"), [
    ("2025-03-03", "2025-03-03", []),  # due the same day
    ("2024-02-29", "2024-03-30", []),  # a leap day
    ("2025-02-29", "2025-03-30", [("invalid_date", "issue_date")]),
    ("2025-03-03", "2025-04-31", [("invalid_date", "due_date")]),
    ("03/03/2025", "2025-04-02", [("invalid_date", "issue_date")]),
    ("2025-03-03", "2025-03-02", [("due_before_issue", "due_date")]),
])
def test_dates_must_be_real_and_the_due_date_on_or_after_the_issue_date(issue: str, due: str,
                                                                          flags: list[tuple[str, str]]) -> None:
    assert codes(check(invoice(issue_date=issue, due_date=due)).flags) == flags


def test_every_missing_required_field_is_its_own_flag() -> None:
    checked = check(invoice(vendor=None, invoice_number="  ", due_date=None, vendor_tax_id=None))
    assert codes(checked.flags) == [("missing_vendor", "vendor"), ("missing_vendor_tax_id", "vendor_tax_id"),
                                    ("missing_invoice_number", "invoice_number"), ("missing_due_date", "due_date")]


def test_a_field_read_with_low_confidence_is_flagged_and_an_uncertain_or_cut_extraction_too() -> None:
    checked = check(invoice(confidence={"total": 0.79, "lines": 0.5}), escalation="low_confidence", truncated=True)

    assert codes(checked.flags) == [("document_truncated", None), ("extraction_uncertain", None),
                                    ("low_confidence", "total"), ("low_confidence", "lines[1]"),
                                    ("low_confidence", "lines[2]")]
    assert codes(check(invoice(confidence={"total": 0.8})).flags) == []  # at the threshold: confident enough


# -- bank details --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("iban", ["DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "NL91ABNA0417164300",
                                  "fr1420041010050500013m02606", "CH9300762011623852957", "NO9386011117947"])
def test_valid_ibans_pass_their_mod_97_check(iban: str) -> None:
    assert rules.iban_is_valid(iban)


@pytest.mark.parametrize("iban", ["DE89370400440532013001", "DE88370400440532013000", "GB82WEST1234569876543",
                                  "NL91ABNA041716430", "XX00", "DE89-3704-0044-0532-0130-00", "",
                                  "ZZ89370400440532013000"])
def test_invalid_ibans_fail_by_checksum_length_or_shape(iban: str) -> None:
    assert not rules.iban_is_valid(iban)


def test_an_invalid_iban_or_bic_on_the_invoice_is_flagged() -> None:
    checked = check(invoice(iban="DE89370400440532013001", bic="COBA-DE"))
    assert codes(checked.flags) == [("invalid_iban", "iban"), ("invalid_bic", "bic")]


def test_bank_details_other_than_the_vendor_masters_always_flag_a_change() -> None:
    same = check(invoice())
    other_iban = check(invoice(iban="GB82WEST12345698765432"))
    other_bic = check(invoice(bic="DEUTDEFF"))
    none_given = check(invoice(iban=None, bic=None))

    assert rules.compare_bank(same, "DE89370400440532013000", "COBADEFF") == []  # BIC8 is the BIC11's head office
    assert codes(rules.compare_bank(other_iban, "DE89370400440532013000", "COBADEFFXXX")) == [
        ("bank_details_changed", "iban")]
    assert codes(rules.compare_bank(other_bic, "DE89370400440532013000", "COBADEFFXXX")) == [
        ("bank_details_changed", "bic")]
    assert codes(rules.compare_bank(same, None, None)) == [("bank_details_changed", "iban")]  # new details
    assert rules.compare_bank(none_given, "DE89370400440532013000", "COBADEFFXXX") == []  # paid to the master's


# -- purchase orders and the tolerance ------------------------------------------------------------------------------


def po(remaining: str = "500.00", **changes: str) -> PoFacts:
    fields = {"number": "PO-4500", "status": "open", "currency": "EUR", "amount": remaining, "invoiced": "0.00",
              "remaining": remaining, "vendor_id": "V-1001"}
    return PoFacts(**{**fields, **changes})


@pytest.mark.parametrize(("total", "remaining", "pct", "within"), [
    ("510.00", "500.00", "2", True),  # exactly 2 % over
    ("510.01", "500.00", "2", False),  # a cent over
    ("490.00", "500.00", "2", True),  # exactly 2 % under
    ("489.99", "500.00", "2", False),
    ("500.00", "500.00", "0", True),
    ("500.01", "500.00", "0", False),
    ("0.00", "0.00", "2", True),
    ("0.01", "0.00", "2", False),  # nothing left on the PO
])
def test_the_tolerance_is_exact_at_the_limit_and_a_cent_over_is_outside(total: str, remaining: str, pct: str,
                                                                         within: bool) -> None:
    assert rules.within_tolerance(Decimal(total), Decimal(remaining), Decimal(pct)) is within
    checked = check(invoice(lines=[], subtotal=total, tax="0", total=total))
    flags = codes(rules.compare_po(checked, "V-1001", po(remaining), Decimal(pct)))
    assert flags == ([] if within else [("po_amount_mismatch", "total")])


def test_a_po_that_is_missing_unknown_closed_another_vendors_or_in_another_currency_is_flagged() -> None:
    checked = check(invoice())
    no_po = check(invoice(po_number=None))

    assert codes(rules.compare_po(no_po, "V-1001", None, Decimal(2))) == [("missing_po_number", "po_number")]
    assert codes(rules.compare_po(checked, "V-1001", None, Decimal(2))) == [("unknown_po", "po_number")]
    assert codes(rules.compare_po(checked, "V-1002", po("476.00", status="closed"), Decimal(2))) == [
        ("po_closed", "po_number"), ("po_other_vendor", "po_number")]
    assert codes(rules.compare_po(checked, "V-1001", po("476.00", currency="GBP"), Decimal(2))) == [
        ("po_currency_mismatch", "currency")]
    assert rules.compare_po(checked, "V-1001", po("476.00"), Decimal(0)) == []


# -- the review --------------------------------------------------------------------------------------------------


def reviewed(total: str, flags: list[Flag] | None = None, duplicate_of: str | None = None) -> Any:
    checked = Checked(total=total, flags=flags or [])
    return rules.review(checked, Comparison(duplicate_of=duplicate_of), Decimal("1000"), Decimal("10000"))


@pytest.mark.parametrize(("total", "action", "approvers"), [
    ("999.99", "record", 0), ("1000.00", "approve", 1), ("9999.99", "approve", 1), ("10000.00", "approve", 2),
    ("48400.00", "approve", 2),
])
def test_the_limits_decide_how_many_approvers_and_a_total_at_a_limit_is_above_it(total: str, action: str,
                                                                                 approvers: int) -> None:
    review = reviewed(total)
    assert (review.action, review.approvers) == (action, approvers)


def test_any_flag_needs_an_approver_and_keeps_two_for_a_large_total() -> None:
    flag = Flag(code="bank_details_changed", field="iban")

    small = reviewed("10.00", [flag])
    large = reviewed("20000.00", [flag])

    assert (small.action, small.approvers, small.reasons) == ("approve", 1, ["bank_details_changed"])
    assert (large.approvers, large.reasons) == (2, ["bank_details_changed", "total_at_or_above_two_person_limit"])
    assert reviewed("12.00", [Flag(code="unreadable_amount")]).approvers == 1


def test_a_duplicate_is_refused_whatever_else_it_is() -> None:
    review = reviewed("20000.00", [Flag(code="duplicate_invoice")], duplicate_of="LE-000001")
    assert (review.action, review.approvers, review.refusal) == ("refuse", 0, "duplicate_invoice")
