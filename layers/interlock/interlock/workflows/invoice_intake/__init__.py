"""Invoice intake (accounts payable): a ``form`` event ``invoice.received`` carrying an invoice (text, a PDF, or an
upload's reference) -> its text (a PDF's text layer; a scan goes to a person) -> the fields extracted (an AI
decision, each field with its confidence) -> validated by deterministic rules -> compared with the ERP (vendor, PO,
bank details, duplicates) -> recorded at once, approved by one or two people first, or refused -> the ERP ledger
entry, once. README.md walks through it. Only :mod:`interlock.kit` is imported here.
"""

from __future__ import annotations

from interlock.kit import Job, Step, Trigger, Workflow

_STEPS = "interlock.workflows.invoice_intake.steps"

WORKFLOW = Workflow(
    name="invoice_intake",
    description="Invoice intake: extract, validate, compare with the ERP, approve (1 or 2 people), record",
    package=__name__,
    triggers=(Trigger("form", "invoice.received"),),
    steps=(
        Step("take_document", Job.VALIDATE, f"{_STEPS}:take_document", summary=f"{_STEPS}:document_summary"),
        Step("extract", Job.DECIDE, f"{_STEPS}:extract"),
        Step("validate", Job.VALIDATE, f"{_STEPS}:validate"),
        Step("compare", Job.QUERY, f"{_STEPS}:compare", connectors=("erp",)),
        Step("route", Job.VALIDATE, f"{_STEPS}:route"),
        Step("record_entry", Job.ACT, f"{_STEPS}:record_entry", entry="completed", connectors=("erp",)),
        Step("refuse", Job.RECORD, f"{_STEPS}:refuse", entry="rejected"),
        Step("hand_over", Job.NOTIFY, f"{_STEPS}:hand_over", entry="escalated"),
    ),
    automatic="automatic.asl.json",
    wait="wait.asl.json",
    approval_view="interlock.workflows.invoice_intake.approval:view",
    settings=("invoice_auto_limit", "invoice_two_person_limit", "invoice_po_tolerance_pct", "sender_email",
              "approver_email"),
)
