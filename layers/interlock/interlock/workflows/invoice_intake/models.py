"""The invoice intake's data: the event's document, the extracted invoice (each field with its own confidence), what
the rules and the ERP found (named flags), the review it needs, and every step's input and output.

Amounts travel as decimal strings ("476.00"), never floats: :mod:`.rules` reads them with ``Decimal``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from interlock.models import Envelope
from interlock.steps import StepInput

# -- the event --------------------------------------------------------------------------------------------------


class DocumentRef(BaseModel):
    """``data.document`` of an ``invoice.received`` event: exactly one of the invoice's text, a PDF as base64
    (within the webhook body limit), or the reference of an upload (``POST /uploads``, docs/finance.md)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    text: str | None = Field(default=None, min_length=1)
    pdf_base64: str | None = Field(default=None, min_length=1)
    upload: str | None = Field(default=None, min_length=1, max_length=100)
    filename: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _exactly_one(self) -> DocumentRef:
        given = [name for name in ("text", "pdf_base64", "upload") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of document.text, document.pdf_base64, document.upload")
        return self


class Document(BaseModel):
    """The document's text, as the rest of the run reads it (``text`` is None for a PDF with no text layer)."""

    kind: Literal["text", "pdf", "upload_text", "upload_pdf"]
    text: str | None = None
    text_layer: bool = True  # False: a PDF with no text layer (a scan), which goes to a person
    reason: str | None = None  # "no_text_layer" when text_layer is False
    pages: int | None = None
    bytes: int = 0
    chars: int = 0
    truncated: bool = False  # the text was longer than the run carries: cut, and flagged
    sha256: str = ""
    filename: str | None = None


# -- the extracted invoice: each field with its own confidence -------------------------------------------------------


class ExtractedField(BaseModel):
    """One field as read from the document: its text as written (None when the document has none) and how sure
    the reader is of it (0 to 1)."""

    value: str | None = Field(default=None, max_length=200)
    confidence: float = Field(default=0.0, ge=0, le=1)


class ExtractedLine(BaseModel):
    description: str = Field(max_length=300)
    quantity: str | None = Field(default=None, max_length=40)
    unit_price: str | None = Field(default=None, max_length=40)
    amount: str | None = Field(default=None, max_length=40)
    confidence: float = Field(ge=0, le=1)


class ExtractedInvoice(BaseModel):
    """What an invoice says, field by field, each with its own confidence (the decision's structured output, less
    its overall confidence and reasoning). Values are the document's text; the rules read them."""

    vendor: ExtractedField
    vendor_tax_id: ExtractedField
    invoice_number: ExtractedField
    issue_date: ExtractedField  # as written; the rules want ISO 8601 (YYYY-MM-DD)
    due_date: ExtractedField
    currency: ExtractedField  # ISO 4217 alphabetic code
    po_number: ExtractedField
    subtotal: ExtractedField
    tax: ExtractedField
    total: ExtractedField
    iban: ExtractedField
    bic: ExtractedField
    lines: list[ExtractedLine] = Field(default_factory=list, max_length=100)

    def fields(self) -> dict[str, ExtractedField]:
        return {name: getattr(self, name) for name in FIELD_NAMES}


FIELD_NAMES = ("vendor", "vendor_tax_id", "invoice_number", "issue_date", "due_date", "currency", "po_number",
               "subtotal", "tax", "total", "iban", "bic")


class Extraction(BaseModel):
    """The extract step's output: the invoice, or None when nothing could be read (a person takes it)."""

    found: bool
    invoice: ExtractedInvoice | None = None
    confidence: float | None = None
    decided_by: str
    escalation: str | None = None  # the decision's, when a person must look (low_confidence, all_tiers_failed...)
    reason: str | None = None  # "extraction_failed" when found is False
    decision: dict[str, Any] = Field(default_factory=dict)


# -- what the rules and the ERP found --------------------------------------------------------------------------------


class Flag(BaseModel):
    """One named reason for a person to look: ``code`` is stable (tests, the approval page, the timeline), ``field``
    the invoice field it is about, ``detail`` code's own words (never the document's)."""

    code: str
    field: str | None = None
    detail: str = ""


class Checked(BaseModel):
    """The invoice as the deterministic rules read it: normalised values (amounts as decimal strings in the
    currency's minor units) and the flags of every rule that failed."""

    vendor: str | None = None
    vendor_tax_id: str | None = None
    invoice_number: str | None = None
    issue_date: str | None = None
    due_date: str | None = None
    currency: str | None = None
    minor_units: int | None = None
    po_number: str | None = None
    subtotal: str | None = None
    tax: str | None = None
    total: str | None = None
    iban: str | None = None
    bic: str | None = None
    lines: int = 0
    flags: list[Flag] = Field(default_factory=list)


class PoFacts(BaseModel):
    number: str
    status: str
    currency: str
    amount: str
    invoiced: str
    remaining: str
    vendor_id: str


class Comparison(BaseModel):
    """What the ERP says about the invoice: its vendor, its PO, the vendor master's bank details, an entry for the
    same vendor and invoice number, and the flags of every comparison that failed."""

    vendor_id: str | None = None
    vendor_name: str | None = None
    master_iban: str | None = None
    master_bic: str | None = None
    po: PoFacts | None = None
    duplicate_of: str | None = None  # the ledger entry already recorded for this vendor and invoice number
    tolerance_pct: str = "0"
    flags: list[Flag] = Field(default_factory=list)


class Review(BaseModel):
    """What the invoice needs: recorded at once, approved by ``approvers`` different people first, or refused."""

    action: Literal["record", "approve", "refuse"]
    approvers: int = Field(default=0, ge=0, le=5)
    reasons: list[str] = Field(default_factory=list)  # the flags' codes, then the amount rules that applied
    total: str | None = None
    auto_limit: str
    two_person_limit: str
    refusal: str | None = None  # "duplicate_invoice" for a refused invoice


class Recorded(BaseModel):
    """The ledger entry: the run's traceable record."""

    entry_id: str
    vendor_id: str
    invoice_number: str
    total: str
    currency: str
    created: bool  # False: the ledger answered the entry it held for this vendor and invoice number
    approved_by: list[str] = Field(default_factory=list)
    record: str | None = None  # its record in the workflow's invoices table (its payment status), "invoices/<id>"


class Refused(BaseModel):
    reason: str
    outcome: str = "rejected"
    duplicate_of: str | None = None
    invoice_number: str | None = None
    vendor_id: str | None = None


class HandedOver(BaseModel):
    reason: str
    outcome: str = "escalated"
    notified: int = 0  # how many people were emailed
    message_ids: list[str] = Field(default_factory=list)


class Notified(BaseModel):
    message_id: str


# -- the steps' inputs ------------------------------------------------------------------------------------------------


class TakeInput(StepInput):
    envelope: Envelope


class ExtractInput(StepInput):
    document: Document


class ValidateInput(StepInput):
    document: Document
    extraction: Extraction


class CompareInput(StepInput):
    checked: Checked


class RouteInput(StepInput):
    checked: Checked
    comparison: Comparison
    extraction: Extraction


class RefuseInput(StepInput):
    checked: Checked
    comparison: Comparison
    review: Review


class HandOverInput(StepInput):
    reason: str = Field(pattern="^(no_text_layer|extraction_failed)$")
    document: Document


class RecordInput(StepInput):
    checked: Checked
    comparison: Comparison
    review: Review
    approval: dict[str, Any] | None = None  # the wait's result, when a person approved
