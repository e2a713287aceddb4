"""What an approver sees of an invoice: the extracted fields (each with its confidence and what the rules made of
it) beside the flags that caused the review, and what the ERP knows (the vendor master's account, the PO).

``view(state)`` takes the wait's context (``extraction``, ``checked``, ``comparison``, ``review``, ``document``)
and returns the platform's :class:`~interlock.approval_pages.ApprovalView`. The invoice's words (its vendor's name,
its line descriptions) are the supplier's: they are quoted under a label saying so, never shown as code's words;
the fields show values code has read and checked (amounts, dates, codes, account numbers), or "see the invoice".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.approval_pages import ApprovalView, QuotedText
from interlock.outgoing import clean_label
from interlock.workflows.invoice_intake.models import Checked, Comparison, Document, Extraction, Review

SUPPLIER_WORDS = "the supplier's words, as read from the invoice"

# What each flag code says to an approver (code's words; the flag's own detail follows).
FLAG_TEXT = {
    "bank_details_changed": "Bank details differ from the vendor master: confirm the change with the vendor by "
                            "phone before approving",
    "duplicate_invoice": "Already recorded",
    "po_amount_mismatch": "Total outside the tolerance of the PO's remaining amount",
    "po_closed": "The purchase order is closed",
    "po_other_vendor": "The purchase order belongs to another vendor",
    "po_currency_mismatch": "The purchase order is in another currency",
    "unknown_po": "No such purchase order in the ERP",
    "missing_po_number": "The invoice names no purchase order",
    "unknown_vendor": "The vendor is not in the vendor master (approving cannot record it until it is)",
    "lines_do_not_sum": "The lines do not add up to the subtotal",
    "totals_do_not_add_up": "Subtotal plus tax is not the total",
    "low_confidence": "Read with low confidence",
    "extraction_uncertain": "The extraction was not sure of the invoice",
    "document_truncated": "The document was too long to read whole",
    "invalid_iban": "The IBAN fails its checksum",
    "invalid_bic": "The BIC is malformed",
    "invalid_date": "Not a real date",
    "due_before_issue": "Due before it was issued",
    "unknown_currency": "Not an ISO 4217 currency",
    "amount_precision": "More decimals than the currency has",
    "unreadable_amount": "An amount could not be read",
    "negative_amount": "A negative amount",
}


def _shown(value: str | None) -> str:
    return value if value is not None else "not on the invoice"


def view(state: Mapping[str, Any]) -> ApprovalView:
    extraction = Extraction.model_validate(state["extraction"])
    checked = Checked.model_validate(state["checked"])
    comparison = Comparison.model_validate(state["comparison"])
    review = Review.model_validate(state["review"])
    document = Document.model_validate(state["document"])
    invoice = extraction.invoice
    confidence = {name: f.confidence for name, f in invoice.fields().items()} if invoice else {}
    flagged = {flag.field for flag in (*checked.flags, *comparison.flags) if flag.field}

    def sure(name: str, value: str | None) -> str:
        mark = " (flagged)" if name in flagged else ""
        return f"{_shown(value)} (confidence {confidence.get(name, 0.0):.2f}){mark}"

    money = f"{checked.currency} {checked.total}" if checked.currency and checked.total else "an unreadable total"
    number = clean_label(checked.invoice_number, 64) or "without a readable number"
    vendor = clean_label(comparison.vendor_name, 80) or "an unknown vendor"
    people = "two different approvers" if review.approvers >= 2 else "one approver"
    flags = [*checked.flags, *comparison.flags]
    fields = [
        ("Needs", f"{people} ({', '.join(review.reasons) or 'no reason'})"),
        *[(f"Flag {n}: {flag.code}", f"{FLAG_TEXT.get(flag.code, flag.code)}"
           + (f" [{flag.field}]" if flag.field else "") + (f": {flag.detail}" if flag.detail else ""))
          for n, flag in enumerate(flags, start=1)],
        ("Vendor (ERP)", f"{vendor} ({comparison.vendor_id or 'not found'})"),
        ("Vendor tax id", sure("vendor_tax_id", checked.vendor_tax_id)),
        ("Invoice number", sure("invoice_number", clean_label(checked.invoice_number, 64))),
        ("Issue date", sure("issue_date", checked.issue_date)),
        ("Due date", sure("due_date", checked.due_date)),
        ("Currency", sure("currency", checked.currency)),
        ("Subtotal", sure("subtotal", checked.subtotal)),
        ("Tax", sure("tax", checked.tax)),
        ("Total", sure("total", checked.total)),
        ("Lines", str(checked.lines)),
        ("PO", sure("po_number", clean_label(checked.po_number, 64))),
        ("PO in the ERP", _po(comparison)),
        ("IBAN on the invoice", sure("iban", checked.iban)),
        ("IBAN in the vendor master", comparison.master_iban or "none"),
        ("BIC on the invoice", sure("bic", checked.bic)),
        ("BIC in the vendor master", comparison.master_bic or "none"),
        ("Limits", f"automatic below {review.auto_limit}, two approvers from {review.two_person_limit}"),
        ("Read by", f"{extraction.decided_by} (overall confidence "
                    f"{extraction.confidence if extraction.confidence is not None else 0:.2f})"),
        ("Document", f"{document.kind}, {document.bytes} bytes" + (f", {document.pages} page(s)"
                                                                   if document.pages else "")),
    ]
    quoted = []
    if invoice is not None and invoice.vendor.value:
        quoted.append(QuotedText(label=f"Vendor ({SUPPLIER_WORDS})", text=invoice.vendor.value, one_line=True))
    if invoice is not None and invoice.lines:
        text = "\n".join(f"{line.quantity or '?'} x {line.description} = {line.amount or '?'}"
                         for line in invoice.lines[:20])
        quoted.append(QuotedText(label=f"Lines ({SUPPLIER_WORDS})", text=text, in_email=False))
    return ApprovalView(
        title=f"Approve invoice {number} from {vendor} for {money}?",
        summary=f"An invoice for {money} needs {people} before it is recorded in the ledger.",
        fields=fields, quoted=quoted, page_only=["Limits", "Read by", "Document"],
        approved="Approved. The invoice is recorded in the ledger once every approval it needs is in.",
        rejected="Rejected. Nothing is recorded.")


def _po(comparison: Comparison) -> str:
    po = comparison.po
    if po is None:
        return "not found"
    return (f"{po.status}, {po.currency} {po.remaining} of {po.amount} left, vendor {po.vendor_id}, "
            f"tolerance {comparison.tolerance_pct}%")
