"""The invoice intake's ``invoices`` table against moto's DynamoDB, created from the topology's declaration as the
stack creates it (the ``by_status`` index: status, then due date): a record written once and never put back, the
past-due query (one per unpaid status, every page, due strictly before the date), and ``scheduled`` only from
``approved``."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from interlock.topology import build
from interlock.workflows.invoice_intake import records
from interlock.workflows.invoice_intake.records import InvoiceRecord, InvoiceRecords

from integration.support import REGION

TABLE = "interlock-table-invoices"


@pytest.fixture
def table(aws: None) -> InvoiceRecords:
    (spec,) = [t for t in build().workflow_tables if t.name == "invoices"]
    assert spec.indexes == (("by_status", "status", "due_date"),)
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": spec.partition_key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in (spec.partition_key, "status",
                                                                                    "due_date")],
        GlobalSecondaryIndexes=[{"IndexName": name, "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"},
                                               {"AttributeName": sk, "KeyType": "RANGE"}]}
                                for name, pk, sk in spec.indexes])
    return InvoiceRecords(TABLE, client)


def record(invoice_id: str, status: str = records.RECORDED, due_date: str | None = "2026-11-20",
           **extra: Any) -> InvoiceRecord:
    return InvoiceRecord(invoice_id=invoice_id, status=status, vendor_id="V-1001", invoice_number=f"N-{invoice_id}",
                         total="310.00", currency="EUR", due_date=due_date, run_id="run-0",
                         recorded_at="2026-11-01T00:00:00Z", **extra)


def test_a_record_is_written_once_and_a_repeat_never_puts_its_status_back(table: InvoiceRecords) -> None:
    assert table.track(record("LE-1", approved_by=["ann@corp.test", "bob@corp.test"]))
    table.client.update_item(TableName=TABLE, Key={"invoice_id": {"S": "LE-1"}}, UpdateExpression="SET #s = :a",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":a": {"S": records.APPROVED}})

    assert table.track(record("LE-1")) is False  # the step run again

    stored = table.get("LE-1")
    assert stored is not None
    assert (stored.status, stored.approved_by, stored.total) == ("approved", ["ann@corp.test", "bob@corp.test"],
                                                                 "310.00")
    assert table.get("LE-none") is None


def test_past_due_reads_every_unpaid_status_due_strictly_before_the_date(table: InvoiceRecords) -> None:
    for item in (record("LE-R", due_date="2026-12-01"), record("LE-A", records.APPROVED, "2026-11-02"),
                 record("LE-S", records.SCHEDULED, "2026-10-31"), record("LE-TODAY", due_date="2026-12-02"),
                 record("LE-LATER", due_date="2099-01-01"), record("LE-PAID", records.PAID, "2026-11-01"),
                 record("LE-NODATE", due_date=None)):
        table.track(item)

    assert sorted(r.invoice_id for r in table.past_due("2026-12-02")) == ["LE-A", "LE-R", "LE-S"]
    assert sorted(r.invoice_id for r in table.past_due("2026-11-01")) == ["LE-S"]


def test_past_due_follows_every_page_of_the_index(table: InvoiceRecords, monkeypatch: pytest.MonkeyPatch) -> None:
    for number in range(7):
        table.track(record(f"LE-{number}", due_date=f"2026-11-0{number + 1}"))
    pages: list[int] = []
    query = table.client.query

    def small_pages(**kwargs: Any) -> Any:  # what DynamoDB does past 1 MB, two items at a time here
        answer = query(**kwargs, Limit=2)
        pages.append(len(answer["Items"]))
        return answer

    monkeypatch.setattr(table.client, "query", small_pages)
    found = [r.invoice_id for r in table.past_due("2026-12-01")]
    assert sorted(found) == [f"LE-{n}" for n in range(7)]
    assert len(pages) >= 4 and sum(pages) == 7  # the recorded status's four pages, then approved's and scheduled's


def test_a_record_is_scheduled_only_from_approved(table: InvoiceRecords) -> None:
    table.track(record("LE-1"))
    assert table.mark_scheduled("LE-1", "PAY-000001", "2026-12-10") is False  # still recorded
    assert table.get("LE-1").status == "recorded"  # type: ignore[union-attr]

    table.client.update_item(TableName=TABLE, Key={"invoice_id": {"S": "LE-1"}}, UpdateExpression="SET #s = :a",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":a": {"S": records.APPROVED}})
    assert table.mark_scheduled("LE-1", "PAY-000001", "2026-12-10") is True
    stored = table.get("LE-1")
    assert stored is not None and (stored.status, stored.payment_id, stored.pay_on) == ("scheduled", "PAY-000001",
                                                                                       "2026-12-10")
    assert table.mark_scheduled("LE-1", "PAY-000002", "2026-12-11") is False  # a repeat changes nothing
    assert table.get("LE-1").payment_id == "PAY-000001"  # type: ignore[union-attr]
    assert table.mark_scheduled("LE-none", "PAY-000003", "2026-12-11") is False  # no record: nothing created
    assert table.get("LE-none") is None
