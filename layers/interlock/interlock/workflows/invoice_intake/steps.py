"""The invoice intake's steps: ``def step(data: <StepInput>, ctx: StepContext) -> <model>``.

take_document (validate: the text, or a PDF's text layer; a scan -> hand_over) -> extract (decide; nothing read ->
hand_over) -> validate (validate: the rules) -> compare (query: the ERP) -> route (validate: record, approve by 1 or
2 people, or refuse) -> record_entry (act: the ledger entry, once) | refuse (record: a duplicate, ``rejected``) | the
wait (Standard: the approval) -> record_entry or the platform's ``rejected``. Retries, the catches and the branches
live in the ASL files; the ledger entry and the hand-over emails go through ``ctx.once``.
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from interlock.errors import MissingData, NotConfigured, StepError

# At run time, not only for type checking: a worker reads a step's input model from its annotations.
from interlock.kit.context import StepContext
from interlock.outgoing import one_line
from interlock.workflows.invoice_intake import limits, rules
from interlock.workflows.invoice_intake.models import (
    Checked,
    CompareInput,
    Comparison,
    Document,
    DocumentRef,
    ExtractedInvoice,
    ExtractInput,
    Extraction,
    Flag,
    HandedOver,
    HandOverInput,
    Notified,
    PoFacts,
    Recorded,
    RecordInput,
    Refused,
    RefuseInput,
    Review,
    RouteInput,
    TakeInput,
    ValidateInput,
)

if TYPE_CHECKING:
    from interlock.connectors.erp import Erp

EVENT_TYPE = "invoice.received"
AUTO_LIMIT, TWO_PERSON_LIMIT, TOLERANCE = limits.AUTO_LIMIT, limits.TWO_PERSON_LIMIT, limits.TOLERANCE
# The most of a document's text a run carries from step to step (more is cut, and flagged document_truncated).
MAX_RUN_TEXT_CHARS = 40_000


class DocumentRefused(StepError):
    """The event's document cannot be read as given (not base64, a broken or encrypted PDF, not UTF-8, an upload
    that is missing or expired...): the sender's to fix, never retried. ``reason`` is the document's own code."""

    reason = "document_unreadable"


def _decimal_setting(ctx: StepContext, name: str) -> Decimal:
    """A limit or the tolerance, read as `make run` and the synthesis check it (:mod:`.limits`)."""
    return ctx.setting_as(name, lambda raw: limits.amount(name, raw))


def erp_of(ctx: StepContext) -> Erp:
    """The ERP connector the step declared; :class:`NotConfigured` when no ERP is set."""
    erp: Erp | None = ctx.connector("erp")
    if erp is None:
        raise NotConfigured("no ERP is configured (INTERLOCK_ERP_BASE_URL)", step=ctx.step,
                            reason="erp_not_configured")
    return erp


# -- take_document (validate) ------------------------------------------------------------------------------------


def take_document(data: TakeInput, ctx: StepContext) -> Document:
    """The invoice's text: as sent, from a PDF's text layer, or from an upload by its reference
    (:func:`interlock.documents.document_text` reads it, under its limits)."""
    from interlock.documents import PDF, TEXT, DocumentError

    envelope = data.envelope
    if envelope.type != EVENT_TYPE:
        raise MissingData(f"the invoice intake takes {EVENT_TYPE} events", step="take_document",
                          reason="unsupported_event", event_type=one_line(envelope.type, 80))
    fields = envelope.payload.get("data")
    raw = fields.get("document") if isinstance(fields, dict) else None
    if raw is None:
        raise MissingData("the event carries no document", step="take_document", fields=["data.document"])
    try:
        ref = DocumentRef.model_validate(raw)
    except ValidationError as exc:
        problems = sorted({".".join(str(p) for p in err["loc"]) or "document" for err in exc.errors()})
        raise MissingData("the document is not one of text, pdf_base64 or upload", step="take_document",
                          reason="invalid_document", fields=[f"data.document.{p}" for p in problems]) from None
    filename = one_line(ref.filename, 200) if ref.filename else None
    try:
        if ref.text is not None:
            return _read("text", ref.text.encode("utf-8"), TEXT, filename)
        if ref.pdf_base64 is not None:
            return _read("pdf", _base64(ref.pdf_base64), PDF, filename)
        return read_upload_document(ref.upload or "", filename)
    except DocumentError as exc:
        raise DocumentRefused(str(exc), step="take_document", reason=exc.code) from None


def _base64(value: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise DocumentRefused("document.pdf_base64 is not base64", step="take_document",
                              reason="invalid_base64") from None


def _read(kind: Literal["text", "pdf", "upload_text", "upload_pdf"], data: bytes, content_type: str,
          filename: str | None) -> Document:
    """The document's text as the run carries it: at most :data:`MAX_RUN_TEXT_CHARS` (Step Functions' state is
    256 KB, the event's own envelope in it), the rest cut and flagged; no text for a PDF without a text layer."""
    import hashlib

    from interlock.documents import document_text

    found = document_text(data, content_type)
    text = found.text.strip()
    return Document(kind=kind, text=text[:MAX_RUN_TEXT_CHARS] or None, text_layer=found.has_text,
                    reason=None if found.has_text else found.outcome, pages=found.pages, bytes=len(data),
                    chars=len(text), truncated=len(text) > MAX_RUN_TEXT_CHARS,
                    sha256=hashlib.sha256(data).hexdigest(), filename=filename)


def read_upload_document(reference: str, filename: str | None) -> Document:
    """The document an upload's reference names (``POST /uploads``; interlock.uploads): the reader checks its size,
    type and age again, and a PDF's text comes from its text layer as for one sent in the event."""
    from interlock.uploads import PDF, UploadError, fetch_upload

    try:
        upload = fetch_upload(reference)
    except UploadError as exc:
        raise DocumentRefused(str(exc), step="take_document", reason=exc.code) from None
    kind: Literal["upload_pdf", "upload_text"] = "upload_pdf" if upload.content_type == PDF else "upload_text"
    return _read(kind, upload.body, upload.content_type, filename)


def document_summary(result: Document) -> dict[str, Any]:
    """The timeline keeps what the document was, not its text (the extraction's entries show what was read)."""
    return result.model_dump(mode="json", exclude={"text"})


# -- extract (decide) --------------------------------------------------------------------------------------------


def extract(data: ExtractInput, ctx: StepContext) -> Extraction:
    """The invoice's fields, each with its confidence; nothing (found false) when no model and no rule could read
    it: a person then takes the invoice."""
    from interlock.workflows.invoice_intake.decisions import EXTRACT_INVOICE  # the deciding step only: cold start

    request = {"document": data.document.text or "", "filename": data.document.filename or ""}
    decision = ctx.decisions.decide(EXTRACT_INVOICE, data.run_id, request, (), ctx.deadline, step="extract",
                                    attempt=data.attempt)
    escalation = decision.escalation.value if decision.escalation else None
    if decision.output is None:
        return Extraction(found=False, decided_by=decision.decided_by, escalation=escalation,
                          reason="extraction_failed", decision=decision.summary())
    invoice = ExtractedInvoice.model_validate(decision.output.model_dump(exclude={"confidence", "reasoning"}))
    return Extraction(found=True, invoice=invoice, confidence=decision.output.confidence,
                      decided_by=decision.decided_by, escalation=escalation, decision=decision.summary())


# -- validate (validate) -------------------------------------------------------------------------------------------


def validate(data: ValidateInput, ctx: StepContext) -> Checked:
    return rules.check_invoice(data.extraction, truncated=data.document.truncated)


# -- compare (query) ------------------------------------------------------------------------------------------------


def compare(data: CompareInput, ctx: StepContext) -> Comparison:
    """The vendor (by the invoice's tax id; by the PO's vendor when the invoice names no tax id), its PO, the
    vendor master's bank details and the ledger's entry for the same vendor and invoice number."""
    from interlock.connectors.erp import is_identifier

    erp = erp_of(ctx)
    checked = data.checked
    tolerance = _decimal_setting(ctx, TOLERANCE)
    po = erp.get_purchase_order(checked.po_number) if checked.po_number and is_identifier(checked.po_number) \
        else None
    vendor = erp.find_vendor_by_tax_id(checked.vendor_tax_id) if checked.vendor_tax_id else None
    if vendor is None and checked.vendor_tax_id is None and po is not None:
        vendor = erp.get_vendor(po.vendor_id)
    comparison = Comparison(tolerance_pct=str(tolerance))
    flags = []
    if vendor is None:
        flags.append(Flag(code="unknown_vendor", field="vendor_tax_id",
                                detail="no vendor in the vendor master has this tax id"))
    else:
        comparison.vendor_id, comparison.vendor_name = vendor.vendor_id, vendor.name
        comparison.master_iban, comparison.master_bic = vendor.bank.iban, vendor.bank.bic
    if po is not None:
        comparison.po = PoFacts(number=po.number, status=po.status, currency=po.currency, amount=str(po.amount),
                                invoiced=str(po.invoiced), remaining=str(po.remaining), vendor_id=po.vendor_id)
    flags += rules.compare_po(checked, comparison.vendor_id, comparison.po, tolerance)
    if vendor is not None:
        flags += rules.compare_bank(checked, vendor.bank.iban, vendor.bank.bic)
        if checked.invoice_number:
            entry = erp.find_ledger_entry(vendor.vendor_id, checked.invoice_number)
            if entry is not None:
                comparison.duplicate_of = entry.entry_id
                flags.append(Flag(code="duplicate_invoice", field="invoice_number",
                                        detail=f"recorded already as ledger entry {entry.entry_id}"))
    comparison.flags = flags
    return comparison


# -- route (validate) ---------------------------------------------------------------------------------------------


def route(data: RouteInput, ctx: StepContext) -> Review:
    return rules.review(data.checked, data.comparison, _decimal_setting(ctx, AUTO_LIMIT),
                        _decimal_setting(ctx, TWO_PERSON_LIMIT))


# -- refuse (record) ------------------------------------------------------------------------------------------------


def refuse(data: RefuseInput, ctx: StepContext) -> Refused:
    """A duplicate invoice ends ``rejected`` with reason ``duplicate_invoice``: nothing is recorded."""
    from interlock.observability import count

    count("RunsRejected")
    return Refused(reason=data.review.refusal or "refused", duplicate_of=data.comparison.duplicate_of,
                   invoice_number=data.checked.invoice_number, vendor_id=data.comparison.vendor_id)


# -- hand_over (notify) ---------------------------------------------------------------------------------------------


def hand_over(data: HandOverInput, ctx: StepContext) -> HandedOver:
    """A document no one could read automatically (a scan with no text layer, an extraction that failed): each
    approver of the pool is emailed once, and the run ends ``escalated`` with the reason."""
    from interlock.approvals import SesMailer
    from interlock.observability import count
    from interlock.settings import approver_pool

    sender = ctx.setting("sender_email").strip()
    if not sender:
        raise NotConfigured("no sender address (sender_email)", step=ctx.step, reason="sender_not_configured")
    pool = approver_pool(ctx.setting("approver_email"))
    why = {"no_text_layer": "its PDF has no text layer (a scan?): no text could be read from it",
           "extraction_failed": "its fields could not be read from its text"}[data.reason]
    subject = "Invoice needs manual entry"
    text = (f"An invoice received by Interlock needs to be entered by hand: {why}.\n\n"
            f"Run: {data.run_id}\nDocument: {data.document.kind}, {data.document.bytes} bytes"
            + (f", {data.document.pages} page(s)" if data.document.pages else "")
            + f"\nSHA-256: {data.document.sha256}\n\nNothing was recorded in the ERP.\n")
    html = "<pre>" + _escape(text) + "</pre>"
    ids = [ctx.once(f"hand_over_{number}", lambda key, to=to: Notified(  # type: ignore[misc]
        message_id=SesMailer().send(sender, to, subject, text, html)), Notified).message_id
        for number, to in enumerate(pool, start=1)]
    count("RunsEscalated")
    return HandedOver(reason=data.reason, notified=len(ids), message_ids=ids)


def _escape(text: str) -> str:
    import html

    return html.escape(text)


# -- record_entry (act) ---------------------------------------------------------------------------------------------


def record_entry(data: RecordInput, ctx: StepContext) -> Recorded:
    """The ERP ledger entry, once per vendor and invoice number (its idempotency key), whichever run or attempt gets
    there: the run's traceable record. An invoice that needed approval reaches it only approved."""
    from interlock.connectors.erp import NewLedgerEntry, ledger_key

    checked, comparison, review = data.checked, data.comparison, data.review
    approval = data.approval or {}
    if review.action == "approve" and approval.get("decision") != "approved":
        raise MissingData("the invoice needed an approval and reached the ledger without one", step="record_entry",
                          reason="approval_missing")
    if comparison.vendor_id is None:
        raise MissingData("the vendor is not in the vendor master: an entry needs one", step="record_entry",
                          reason="vendor_not_in_erp")
    missing = [name for name in ("invoice_number", "currency", "total") if getattr(checked, name) is None]
    if missing:
        raise MissingData("the invoice lacks what a ledger entry needs", step="record_entry",
                          reason="invoice_incomplete", fields=missing)
    approved_by = [str(d.get("approver")) for d in approval.get("decisions") or []
                   if isinstance(d, dict) and d.get("decision") == "approved" and d.get("approver")]
    entry = NewLedgerEntry(vendor_id=comparison.vendor_id, invoice_number=checked.invoice_number or "",
                           currency=checked.currency or "", total=checked.total or "", subtotal=checked.subtotal,
                           tax=checked.tax, po_number=checked.po_number, issue_date=checked.issue_date,
                           due_date=checked.due_date, run_id=data.run_id, approved_by=approved_by)
    erp = erp_of(ctx)

    def write(_run_key: str) -> Recorded:
        # The ERP's key is the invoice's, not the run's: two runs of one invoice still make one entry.
        made = erp.create_ledger_entry(entry, ledger_key(entry.vendor_id, entry.invoice_number))
        return Recorded(entry_id=made.entry.entry_id, vendor_id=made.entry.vendor_id,
                        invoice_number=made.entry.invoice_number, total=str(made.entry.total),
                        currency=made.entry.currency, created=made.created, approved_by=approved_by)

    recorded = ctx.once("ledger_entry", write, Recorded)
    # The entry's payment status from now on: the invoices table, which the daily check reads and whose move to
    # "approved" schedules the payment. A repeat of the step leaves a record that has moved on as it is.
    from interlock.workflows.invoice_intake import records

    records.records_of(ctx).track(records.InvoiceRecord(
        invoice_id=recorded.entry_id, status=records.RECORDED, vendor_id=recorded.vendor_id,
        invoice_number=recorded.invoice_number, total=recorded.total, currency=recorded.currency,
        due_date=checked.due_date, issue_date=checked.issue_date, run_id=data.run_id, recorded_at=records.now(),
        approved_by=approved_by))
    return recorded.model_copy(update={"record": f"{records.TABLE}/{recorded.entry_id}"})
