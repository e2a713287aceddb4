"""The invoice intake's decision point: read the invoice's fields from its text, each field with its own confidence.

Declared for the AI decision layer (:mod:`interlock.ai`): a versioned prompt (``prompts/extract_invoice.v<N>.md``),
the domain policy (``policies/invoice_intake.md``), the output schema (the fields of
:class:`~.models.ExtractedInvoice`, each ``{value, confidence}``, with the overall ``confidence`` and
``reasoning``), and the deterministic offline answer, :func:`offline_extract`: a reader of invoices laid out as
``Label: value`` lines (the bundled samples are), used when no model is configured. Whoever extracts, the values
are the document's text; the rules (:mod:`.rules`) read and check them. Only the extract step imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interlock.ai.decision import DecisionOutput, DecisionPoint
from interlock.workflows.invoice_intake.models import ExtractedField, ExtractedInvoice, ExtractedLine

# How sure the offline reader is of a field it found under its own label, and of a line in the line layout.
LABELLED = 0.99
# The fields without which the offline reader does not vouch for the invoice (its overall confidence is 0).
_REQUIRED = ("vendor", "invoice_number", "currency", "total")


class InvoiceExtractionOutput(DecisionOutput, ExtractedInvoice):
    """The structured answer: every field with its own confidence, the overall confidence and the reasoning."""


# Each field's labels, as the line's start (case and spacing ignored), longest first where one begins another.
_LABELS: dict[str, tuple[str, ...]] = {
    "vendor_tax_id": ("vendor tax id", "vat id", "vat number", "tax id", "vat reg no", "ust-idnr"),
    "vendor": ("vendor", "supplier", "from"),
    "invoice_number": ("invoice number", "invoice no", "invoice #", "invoice id"),
    "issue_date": ("issue date", "invoice date", "date of issue"),
    "due_date": ("due date", "payment due", "due"),
    "currency": ("currency",),
    "po_number": ("po number", "purchase order", "po no", "po"),
    "subtotal": ("subtotal", "net amount", "net total"),
    "tax": ("tax", "vat", "sales tax"),
    "total": ("total due", "amount due", "total"),
    "iban": ("iban",),
    "bic": ("bic", "swift"),
}
# "Label: value", the label optionally followed by a parenthesis ("Tax (VAT 19%): 76.00").
_LINE = re.compile(r"^\s*(?P<label>[A-Za-z][A-Za-z #.-]*?)\s*(?:\([^)]*\))?\s*:\s*(?P<value>.+?)\s*$")
# "- 20 x Printer paper A4 @ 5.00 = 100.00"
_ITEM = re.compile(r"^\s*[-*\u2022]\s*(?P<qty>\d+(?:[.,]\d+)?)\s*[x\u00d7]\s*(?P<desc>.+?)\s*@\s*"
                   r"(?P<unit>[\d.,' ]+?)\s*=\s*(?P<amount>[\d.,' ]+?)\s*$")


def read_labelled(text: str) -> ExtractedInvoice:
    """The fields of an invoice laid out as ``Label: value`` lines, and its ``- qty x item @ price = amount``
    lines; a field the text does not label is None with confidence 0. The first line with a label wins."""
    found: dict[str, str] = {}
    lines: list[ExtractedLine] = []
    for raw in text.splitlines():
        item = _ITEM.match(raw)
        if item:
            lines.append(ExtractedLine(description=item["desc"][:300], quantity=item["qty"],
                                       unit_price=item["unit"].strip(), amount=item["amount"].strip(),
                                       confidence=LABELLED))
            continue
        match = _LINE.match(raw)
        if not match:
            continue
        label = " ".join(match["label"].lower().split())
        for name, labels in _LABELS.items():
            if name not in found and label in labels:
                found[name] = match["value"][:200]
                break
    fields = {name: ExtractedField(value=found.get(name), confidence=LABELLED if name in found else 0.0)
              for name in _LABELS}
    return ExtractedInvoice(**fields, lines=lines[:100])


def offline_extract(request: Mapping[str, Any]) -> InvoiceExtractionOutput:
    """The labelled-lines reader over the document's text (the request's ``document``)."""
    invoice = read_labelled(str(request.get("document") or ""))
    missing = [name for name in _REQUIRED if getattr(invoice, name).value is None]
    confidence = 0.0 if missing else LABELLED
    reasoning = ("labelled invoice lines" if not missing
                 else f"labelled invoice lines; no label for {', '.join(missing)}")
    return InvoiceExtractionOutput(**invoice.model_dump(), confidence=confidence, reasoning=reasoning)


EXTRACT_INVOICE: DecisionPoint[InvoiceExtractionOutput] = DecisionPoint(
    name="extract_invoice",
    prompt="extract_invoice",
    policy="invoice_intake",
    output=InvoiceExtractionOutput,
    min_confidence=0.6,
    offline=offline_extract,
    max_output_tokens=1500,
    folder=Path(__file__).parent,
)
