"""Invoice intake (accounts payable): a ``form`` event ``invoice.received`` carrying an invoice (text, a PDF, or an
upload's reference) -> its text (a PDF's text layer; a scan goes to a person) -> the fields extracted (an AI
decision, each field with its confidence) -> validated by deterministic rules -> compared with the ERP (vendor, PO,
bank details, duplicates) -> recorded at once, approved by one or two people first, or refused -> the ERP ledger
entry, once, and its record in the ``invoices`` table. Afterwards: a daily check starts a follow-up run for each
recorded invoice unpaid after its due date, and a record moved to ``approved`` has its payment scheduled in the ERP.
README.md walks through it. Only :mod:`interlock.kit` is imported here.
"""

from __future__ import annotations

from interlock.kit import DataTable, FollowUp, Job, Schedule, StatusChange, Step, TableIndex, Trigger, Workflow

_STEPS = "interlock.workflows.invoice_intake.steps"
_PAYABLES = "interlock.workflows.invoice_intake.payables"

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
        # After the intake: the daily check, its follow-up runs, and the payment of an approved invoice.
        Step("find_past_due", Job.ACT, f"{_PAYABLES}:find_past_due", entry="completed", starts=("past_due",)),
        Step("check_past_due", Job.QUERY, f"{_PAYABLES}:check_past_due"),
        Step("remind_payables", Job.NOTIFY, f"{_PAYABLES}:remind_payables", entry="escalated"),
        Step("close_follow_up", Job.RECORD, f"{_PAYABLES}:close_follow_up", entry="completed"),
        Step("schedule_payment", Job.ACT, f"{_PAYABLES}:schedule_payment", entry="completed", connectors=("erp",)),
    ),
    automatic="automatic.asl.json",
    wait="wait.asl.json",
    approval_view="interlock.workflows.invoice_intake.approval:view",
    settings=("invoice_auto_limit", "invoice_two_person_limit", "invoice_po_tolerance_pct", "sender_email",
              "approver_email", "payables_email"),
    settings_check="interlock.workflows.invoice_intake.limits:check",
    # The recorded invoices' payment status, indexed by status and due date for the daily check.
    tables=(DataTable("invoices", partition_key="invoice_id",
                      indexes=(TableIndex("by_status", partition_key="status", sort_key="due_date"),)),),
    schedules=(Schedule("past_due_check", "cron(0 7 * * ? *)", timezone="UTC",
                        description="every day at 07:00 UTC: the recorded invoices unpaid after their due date"),),
    status_changes=(StatusChange("approved_for_payment", table="invoices", from_="recorded", to="approved"),),
    follow_ups=(FollowUp("past_due", "one run per recorded invoice unpaid after its due date, per day"),),
    run_summary="interlock.workflows.invoice_intake.summary:summary",
)
