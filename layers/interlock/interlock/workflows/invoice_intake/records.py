"""The ``invoices`` table: one record per recorded invoice, keyed by its ERP ledger entry id, and its payment status.

``recorded`` (written by ``record_entry``, once, beside the ERP ledger entry) -> ``approved`` (a person or the ERP
approves it for payment: the status change that starts ``schedule_payment``) -> ``scheduled`` (the ERP holds its
payment) -> ``paid`` (the ERP paid it). The daily check looks for records still unpaid after their due date.

Items are plain: strings, and a list of strings for ``approved_by``; amounts are decimal strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from interlock.kit.context import StepContext

TABLE = "invoices"
BY_STATUS = "by_status"  # the index: status -> due_date (the daily check's query, one per unpaid status)
RECORDED, APPROVED, SCHEDULED, PAID = "recorded", "approved", "scheduled", "paid"
UNPAID = (RECORDED, APPROVED, SCHEDULED)


class InvoiceRecord(BaseModel):
    invoice_id: str  # the ERP ledger entry id
    status: str
    vendor_id: str
    invoice_number: str
    total: str
    currency: str
    due_date: str | None = None
    issue_date: str | None = None
    run_id: str
    recorded_at: str
    approved_by: list[str] = Field(default_factory=list)
    payment_id: str | None = None
    pay_on: str | None = None


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in item.items():
        if "S" in value:
            out[name] = value["S"]
        elif "L" in value:
            out[name] = [v.get("S") for v in value["L"] if "S" in v]
        elif "N" in value:
            out[name] = value["N"]
    return out


class InvoiceRecords:
    """The workflow's ``invoices`` table (``ctx.table("invoices")``), through the worker's DynamoDB client."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        if client is None:
            from interlock.aws import client as aws_client

            client = aws_client("dynamodb")
        self.client = client

    def track(self, record: InvoiceRecord) -> bool:
        """Write the record of a newly recorded invoice; False if it is there already (a repeat of the step, whose
        record may have moved on since: its status is never put back)."""
        item: dict[str, Any] = {}
        for name, value in record.model_dump().items():
            if isinstance(value, list):
                item[name] = {"L": [{"S": v} for v in value]}
            elif value is not None:
                item[name] = {"S": str(value)}
        try:
            self.client.put_item(TableName=self.table_name, Item=item,
                                 ConditionExpression="attribute_not_exists(invoice_id)")
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get(self, invoice_id: str) -> InvoiceRecord | None:
        answer = self.client.get_item(TableName=self.table_name, Key={"invoice_id": {"S": invoice_id}},
                                      ConsistentRead=True)
        item = answer.get("Item")
        return InvoiceRecord.model_validate(_plain(item)) if item else None

    def past_due(self, as_of: str) -> Iterator[InvoiceRecord]:
        """Every record still unpaid whose due date is before ``as_of`` (an ISO date), a page at a time: one query
        of the ``by_status`` index per unpaid status, reading only the records past due (a record with no due
        date is in no index entry, and never past due). The index is eventually consistent: a record changed
        in the last moment may be read as it was; each follow-up reads its record again before it acts."""
        for status in UNPAID:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": BY_STATUS,
                "KeyConditionExpression": "#s = :s AND due_date < :d",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":s": {"S": status}, ":d": {"S": as_of}},
            }
            while True:
                page = self.client.query(**kwargs)
                for item in page.get("Items", []):
                    yield InvoiceRecord.model_validate(_plain(item))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def mark_scheduled(self, invoice_id: str, payment_id: str, pay_on: str) -> bool:
        """``approved`` -> ``scheduled`` with the ERP's payment; False if the record is no longer ``approved`` (a
        repeat of the step, or a person moved it meanwhile): it is left as it is."""
        try:
            self.client.update_item(
                TableName=self.table_name, Key={"invoice_id": {"S": invoice_id}},
                UpdateExpression="SET #s = :scheduled, payment_id = :p, pay_on = :d, scheduled_at = :t",
                ConditionExpression="#s = :approved",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":scheduled": {"S": SCHEDULED}, ":approved": {"S": APPROVED},
                                           ":p": {"S": payment_id}, ":d": {"S": pay_on},
                                           ":t": {"S": now()}})
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def records_of(ctx: StepContext) -> InvoiceRecords:
    """The workflow's invoices table, as the step's worker reaches it."""
    return InvoiceRecords(ctx.table(TABLE))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
