"""The invoice intake's deterministic rules: amounts with ``Decimal`` in the currency's ISO 4217 minor units, real
dates, the IBAN's mod-97 check; the comparison with the ERP (vendor, PO, tolerance, bank details, duplicates); and
the review an invoice needs. Pure functions: no I/O, every failure a named :class:`~.models.Flag`.

Flag codes (stable; the approval page, the timeline and the tests use them):

* reading the invoice: ``missing_<field>`` (vendor, invoice_number, issue_date, due_date, currency, total,
  vendor_tax_id), ``unreadable_amount``, ``amount_precision`` (more decimals than the currency has),
  ``negative_amount``, ``lines_do_not_sum``, ``totals_do_not_add_up``, ``invalid_date``, ``due_before_issue``,
  ``unknown_currency``, ``invalid_iban``, ``invalid_bic``, ``low_confidence``, ``extraction_uncertain`` (the
  decision escalated), ``document_truncated``;
* against the ERP: ``unknown_vendor``, ``missing_po_number``, ``unknown_po``, ``po_closed``, ``po_other_vendor``,
  ``po_currency_mismatch``, ``po_amount_mismatch`` (outside the tolerance of the PO's remaining amount),
  ``bank_details_changed``, ``duplicate_invoice``.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from interlock.workflows.invoice_intake.models import (
    Checked,
    Comparison,
    ExtractedInvoice,
    Extraction,
    Flag,
    PoFacts,
    Review,
)

# A field read with less confidence than this is flagged for a person to check.
MIN_FIELD_CONFIDENCE = 0.8
# The fields every invoice must have (a missing one is a flag); the PO number is compared against the ERP instead.
REQUIRED_FIELDS = ("vendor", "vendor_tax_id", "invoice_number", "issue_date", "due_date", "currency", "total")

# ISO 4217 (list one, as published in 2025): every active currency code and its minor units. Codes with no minor
# unit defined (precious metals, SDR, testing, "no currency": XAU, XDR, XTS, XXX...) are no invoice's currency.
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF "
    "CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG "
    "HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR "
    "MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
    "SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG "
    "YER ZAR ZMW ZWG"
)
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(_TWO.split(), 2), **dict.fromkeys(_ZERO.split(), 0),
    **dict.fromkeys(_THREE.split(), 3), **dict.fromkeys(_FOUR.split(), 4),
}

# Amounts as invoices write them: digits with optional thousands separators (",", a space or an apostrophe) and a
# decimal point. A decimal comma ("1.234,56") is not guessed at: it is unreadable, and a person reads it.
_AMOUNT = re.compile(r"^(?P<sign>-)?(?P<int>\d{1,3}(?:[, '\u00a0]\d{3})+|\d+)(?:\.(?P<frac>\d+))?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?$")
# The length of an IBAN in each country that has one (SWIFT's IBAN registry); a country not listed is checked by
# the general shape and the checksum only.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


# -- reading values ------------------------------------------------------------------------------------------------


class Unreadable(ValueError):
    """A value that is not what its field needs; ``code`` is the flag it raises."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def parse_amount(text: str) -> Decimal:
    """An amount as written ("1,234.56", "1 234.56", "476", "476.00"), exactly; :class:`Unreadable` otherwise.
    A currency sign or code around it is ignored."""
    cleaned = re.sub(r"^[A-Z]{3}\s*|\s*[A-Z]{3}$|^[€$£¥]\s*|\s*[€$£¥]$", "", text.strip().upper()).strip()
    match = _AMOUNT.match(cleaned)
    if not match:
        raise Unreadable("unreadable_amount", "not an amount with a decimal point")
    digits = re.sub(r"[, '\u00a0]", "", match["int"])
    fraction = f".{match['frac']}" if match["frac"] is not None else ""
    return Decimal(f"{match['sign'] or ''}{digits}{fraction}")


def in_minor_units(amount: Decimal, currency: str) -> Decimal:
    """``amount`` with exactly the currency's minor units ("476" -> "476.00" in EUR, "1000" in JPY);
    :class:`Unreadable` (``amount_precision``) when it has more decimals than the currency has."""
    exponent = Decimal(1).scaleb(-MINOR_UNITS[currency])
    rounded = amount.quantize(exponent, rounding=ROUND_HALF_EVEN)
    if rounded != amount:
        raise Unreadable("amount_precision", f"{currency} has {MINOR_UNITS[currency]} decimal places")
    return rounded


def parse_date(text: str) -> date:
    """An ISO 8601 calendar date (YYYY-MM-DD) that exists; :class:`Unreadable` (``invalid_date``) otherwise."""
    value = text.strip()
    if not _ISO_DATE.match(value):
        raise Unreadable("invalid_date", "not a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Unreadable("invalid_date", "no such day") from None


def normalise_iban(text: str) -> str:
    return "".join(text.split()).upper()


def iban_is_valid(text: str) -> bool:
    """ISO 13616: the shape, the country's length when known, and the mod-97 checksum (the country code and check
    digits moved to the end, letters as 10-35, the number mod 97 is 1)."""
    iban = normalise_iban(text)
    if not _IBAN.match(iban):
        return False
    if IBAN_LENGTHS.get(iban[:2], len(iban)) != len(iban):
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def normalise_bic(text: str) -> str:
    return "".join(text.split()).upper()


def same_bic(a: str, b: str) -> bool:
    """One bank's BIC as 8 or 11 characters: ``COBADEFF`` is ``COBADEFFXXX`` (its head office)."""
    a, b = normalise_bic(a), normalise_bic(b)
    return (a + "XXX" if len(a) == 8 else a) == (b + "XXX" if len(b) == 8 else b)


# -- validating the extracted invoice --------------------------------------------------------------------------------


def _text(value: str | None) -> str | None:
    text = " ".join((value or "").split())
    return text or None


def check_invoice(extraction: Extraction, truncated: bool = False) -> Checked:
    """Every deterministic check of the extracted invoice, as flags, with its values normalised."""
    invoice = extraction.invoice
    if invoice is None:
        raise ValueError("no invoice was extracted")
    flags: list[Flag] = []
    if truncated:
        flags.append(Flag(code="document_truncated", detail="the document was longer than is read; its end was cut"))
    if extraction.escalation:
        flags.append(Flag(code="extraction_uncertain", detail=f"the extraction escalated: {extraction.escalation}"))
    fields = invoice.fields()
    for name in REQUIRED_FIELDS:
        if _text(fields[name].value) is None:
            flags.append(Flag(code=f"missing_{name}", field=name, detail="the invoice does not say"))
    flags += _low_confidence(invoice)
    checked = Checked(vendor=_text(invoice.vendor.value), vendor_tax_id=_tax_id(invoice.vendor_tax_id.value),
                      invoice_number=_text(invoice.invoice_number.value), po_number=_text(invoice.po_number.value),
                      lines=len(invoice.lines))
    currency = _currency(invoice, flags)
    checked.currency = currency
    checked.minor_units = MINOR_UNITS.get(currency) if currency else None
    _amounts(invoice, currency, checked, flags)
    _dates(invoice, checked, flags)
    _bank(invoice, checked, flags)
    checked.flags = flags
    return checked


def _tax_id(value: str | None) -> str | None:
    text = "".join((value or "").split()).upper()
    return text or None


def _low_confidence(invoice: ExtractedInvoice) -> list[Flag]:
    flags = []
    for name, extracted in invoice.fields().items():
        if _text(extracted.value) is not None and extracted.confidence < MIN_FIELD_CONFIDENCE:
            flags.append(Flag(code="low_confidence", field=name,
                              detail=f"read with confidence {extracted.confidence:.2f}"))
    for number, line in enumerate(invoice.lines, start=1):
        if line.confidence < MIN_FIELD_CONFIDENCE:
            flags.append(Flag(code="low_confidence", field=f"lines[{number}]",
                              detail=f"read with confidence {line.confidence:.2f}"))
    return flags


def _currency(invoice: ExtractedInvoice, flags: list[Flag]) -> str | None:
    code = (_text(invoice.currency.value) or "").upper()
    if not code:
        return None
    if code not in MINOR_UNITS:
        flags.append(Flag(code="unknown_currency", field="currency", detail="not an ISO 4217 currency code"))
        return None
    return code


def _amount(name: str, text: str | None, currency: str | None, flags: list[Flag]) -> Decimal | None:
    if _text(text) is None:
        return None
    try:
        value = parse_amount(text or "")
        if value < 0:
            raise Unreadable("negative_amount", "a negative amount (a credit note is not an invoice)")
        return in_minor_units(value, currency) if currency else value
    except Unreadable as problem:
        flags.append(Flag(code=problem.code, field=name, detail=problem.detail))
        return None


def _amounts(invoice: ExtractedInvoice, currency: str | None, checked: Checked, flags: list[Flag]) -> None:
    subtotal = _amount("subtotal", invoice.subtotal.value, currency, flags)
    tax = _amount("tax", invoice.tax.value, currency, flags)
    total = _amount("total", invoice.total.value, currency, flags)
    lines = [_amount(f"lines[{n}]", line.amount, currency, flags) for n, line in enumerate(invoice.lines, start=1)]
    checked.subtotal, checked.tax, checked.total = (str(v) if v is not None else None for v in (subtotal, tax, total))
    if currency is None:
        return  # no exact comparison without the currency's minor units
    if invoice.lines and subtotal is not None and all(v is not None for v in lines):
        summed = sum((v for v in lines if v is not None), Decimal(0))
        if summed != subtotal:
            flags.append(Flag(code="lines_do_not_sum", field="subtotal",
                              detail=f"the lines add up to {summed}, the subtotal says {subtotal}"))
    if subtotal is not None and total is not None:
        expected = subtotal + (tax if tax is not None else Decimal(0))
        if expected != total:
            flags.append(Flag(code="totals_do_not_add_up", field="total",
                              detail=f"subtotal + tax is {expected}, the total says {total}"))


def _dates(invoice: ExtractedInvoice, checked: Checked, flags: list[Flag]) -> None:
    found: dict[str, date] = {}
    for name in ("issue_date", "due_date"):
        text = _text(getattr(invoice, name).value)
        if text is None:
            continue
        try:
            found[name] = parse_date(text)
        except Unreadable as problem:
            flags.append(Flag(code=problem.code, field=name, detail=problem.detail))
    checked.issue_date = found["issue_date"].isoformat() if "issue_date" in found else None
    checked.due_date = found["due_date"].isoformat() if "due_date" in found else None
    if "issue_date" in found and "due_date" in found and found["due_date"] < found["issue_date"]:
        flags.append(Flag(code="due_before_issue", field="due_date", detail="the due date is before the issue date"))


def _bank(invoice: ExtractedInvoice, checked: Checked, flags: list[Flag]) -> None:
    iban = _text(invoice.iban.value)
    if iban is not None:
        checked.iban = normalise_iban(iban)
        if not iban_is_valid(iban):
            flags.append(Flag(code="invalid_iban", field="iban", detail="the IBAN fails its checksum or shape"))
    bic = _text(invoice.bic.value)
    if bic is not None:
        checked.bic = normalise_bic(bic)
        if not _BIC.match(checked.bic):
            flags.append(Flag(code="invalid_bic", field="bic", detail="not a BIC of 8 or 11 characters"))


# -- comparing with the ERP ------------------------------------------------------------------------------------------


def within_tolerance(total: Decimal, remaining: Decimal, tolerance_pct: Decimal) -> bool:
    """``total`` is within ``tolerance_pct`` percent of ``remaining``, either way, exactly: at the limit is within,
    a cent over is not."""
    return abs(total - remaining) * 100 <= remaining * tolerance_pct


def compare_po(checked: Checked, vendor_id: str | None, po: PoFacts | None, tolerance_pct: Decimal) -> list[Flag]:
    """The PO exists, is open, is the vendor's, is in the invoice's currency, and its remaining amount is the total
    within the tolerance."""
    if checked.po_number is None:
        return [Flag(code="missing_po_number", field="po_number", detail="the invoice names no purchase order")]
    if po is None:
        return [Flag(code="unknown_po", field="po_number", detail="the ERP has no such purchase order")]
    flags = []
    if po.status != "open":
        flags.append(Flag(code="po_closed", field="po_number", detail=f"the purchase order is {po.status}"))
    if vendor_id is not None and po.vendor_id != vendor_id:
        flags.append(Flag(code="po_other_vendor", field="po_number",
                          detail="the purchase order belongs to another vendor"))
    if checked.currency is not None and po.currency != checked.currency:
        flags.append(Flag(code="po_currency_mismatch", field="currency",
                          detail=f"the purchase order is in {po.currency}"))
    elif checked.total is not None and not within_tolerance(Decimal(checked.total), Decimal(po.remaining),
                                                             tolerance_pct):
        flags.append(Flag(code="po_amount_mismatch", field="total",
                          detail=f"the purchase order has {po.remaining} left; the tolerance is {tolerance_pct}%"))
    return flags


def compare_bank(checked: Checked, master_iban: str | None, master_bic: str | None) -> list[Flag]:
    """The invoice's bank details are the vendor master's: a changed (or new) account always needs a person, the
    classic fraud being an invoice that asks to be paid somewhere new. An invoice naming no account is paid to the
    master's and raises nothing."""
    flags = []
    if checked.iban is not None and (master_iban is None or normalise_iban(master_iban) != checked.iban):
        flags.append(Flag(code="bank_details_changed", field="iban",
                          detail="the IBAN is not the one in the vendor master"))
    elif checked.bic is not None and (master_bic is None or not same_bic(master_bic, checked.bic)):
        flags.append(Flag(code="bank_details_changed", field="bic",
                          detail="the BIC is not the one in the vendor master"))
    return flags


# -- the review ------------------------------------------------------------------------------------------------


def review(checked: Checked, comparison: Comparison, auto_limit: Decimal, two_person_limit: Decimal) -> Review:
    """A duplicate is refused; otherwise any flag, or a total at or above ``auto_limit``, needs one approver, and a
    total at or above ``two_person_limit`` two different ones; the rest is recorded at once. A total that could not
    be read has a flag already."""
    flags = [*checked.flags, *comparison.flags]
    reasons = list(dict.fromkeys(flag.code for flag in flags))
    limits = {"auto_limit": str(auto_limit), "two_person_limit": str(two_person_limit), "total": checked.total}
    if comparison.duplicate_of is not None:
        return Review(action="refuse", reasons=reasons, refusal="duplicate_invoice", **limits)
    total = Decimal(checked.total) if checked.total is not None else None
    approvers = 0
    if total is not None and total >= two_person_limit:
        approvers = 2
        reasons.append("total_at_or_above_two_person_limit")
    elif total is not None and total >= auto_limit:
        approvers = 1
        reasons.append("total_at_or_above_auto_limit")
    if flags:
        approvers = max(approvers, 1)
    if approvers == 0:
        return Review(action="record", reasons=reasons, **limits)
    return Review(action="approve", approvers=approvers, reasons=reasons, **limits)
