"""The invoices table in memory, with the semantics of interlock.workflows.invoice_intake.records.InvoiceRecords
(a record written once, the past-due filter, scheduled only from approved). The DynamoDB class itself is tested
against moto in tests/integration/test_invoice_records.py."""

from __future__ import annotations

from collections.abc import Iterator

from interlock.workflows.invoice_intake.records import APPROVED, SCHEDULED, UNPAID, InvoiceRecord


class MemoryInvoiceRecords:
    def __init__(self) -> None:
        self.items: dict[str, InvoiceRecord] = {}

    def track(self, record: InvoiceRecord) -> bool:
        if record.invoice_id in self.items:
            return False
        self.items[record.invoice_id] = record
        return True

    def get(self, invoice_id: str) -> InvoiceRecord | None:
        return self.items.get(invoice_id)

    def past_due(self, as_of: str) -> Iterator[InvoiceRecord]:
        yield from (r for r in self.items.values()
                    if r.status in UNPAID and r.due_date is not None and r.due_date < as_of)

    def mark_scheduled(self, invoice_id: str, payment_id: str, pay_on: str) -> bool:
        record = self.items.get(invoice_id)
        if record is None or record.status != APPROVED:
            return False
        self.items[invoice_id] = record.model_copy(update={"status": SCHEDULED, "payment_id": payment_id,
                                                           "pay_on": pay_on})
        return True

    def set_status(self, invoice_id: str, status: str) -> None:
        self.items[invoice_id] = self.items[invoice_id].model_copy(update={"status": status})
