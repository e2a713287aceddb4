"""The invoice intake after its ledger entry, step by step (workflows/invoice_intake/payables.py): the daily check
finding the records past due (by its schedule's date and time zone) and starting one follow-up run each, the
follow-up reading its record again and telling the payables team once, and an approved invoice's payment scheduled
once, in the local fake ERP through the real ERP connector, to the vendor master's account. The invoices table is
in memory here (its DynamoDB class is tested against moto in tests/integration)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from interlock.connectors.erp import HttpErp
from interlock.errors import MissingData
from interlock.kit.context import NotGranted, Services, StepContext
from interlock.kit.follow_ups import FollowUpMessage, follow_up_run_id
from interlock.local.fakes import FakeErp
from interlock.models import Envelope
from interlock.workflows.invoice_intake import WORKFLOW, payables, records
from interlock.workflows.invoice_intake.payables import (
    ApprovedInput,
    CheckedInput,
    CheckInput,
    FollowUpInput,
    NotApproved,
)
from interlock.workflows.invoice_intake.records import InvoiceRecord

from unit.fakes import RecordingTimeline
from unit.invoice_records_fake import MemoryInvoiceRecords
from unit.sales_lead_support import BASE, MemoryLedger, served_by

SEEDED_ENTRY = "LE-000001"  # the fake ERP's ledger entry: V-1001, 310.00 EUR
MASTER_IBAN = "DE89370400440532013000"  # V-1001's account in the fake ERP's vendor master


@pytest.fixture(autouse=True)
def invoice_records_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "records_of", lambda ctx: ctx.services.invoice_records)


@dataclass
class World:
    erp_fake: FakeErp = field(default_factory=FakeErp)
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    timeline: RecordingTimeline = field(default_factory=RecordingTimeline)
    table: MemoryInvoiceRecords = field(default_factory=MemoryInvoiceRecords)
    settings: dict[str, str] = field(default_factory=lambda: {"payables_email": "payables@corp.test",
                                                              "sender_email": "interlock@corp.test"})
    sent: list[list[FollowUpMessage]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.erp = HttpErp(f"{BASE}/erp", transport=served_by(self.erp_fake.handle, "erp"))

    def ctx(self, step: str, run_id: str = "11111111-2222-5333-8444-555555555555") -> StepContext:
        declared = WORKFLOW.step(step)
        services = Services(timeline=self.timeline, ledger=self.ledger, connectors=lambda name: self.erp,
                            settings=lambda name: self.settings.get(name, ""),
                            tables=lambda name: f"interlock-table-{name}",
                            start=lambda batch, step: self.sent.append(list(batch)))
        services.invoice_records = self.table  # type: ignore[attr-defined]
        return StepContext(run_id=run_id, attempt=0, workflow=WORKFLOW.name, step=step, deadline=None,
                           services=services, connectors=declared.connectors, settings=WORKFLOW.settings,
                           tables=tuple(t.name for t in WORKFLOW.tables), starts=declared.starts)

    def add(self, invoice_id: str, status: str = records.RECORDED, due_date: str | None = "2026-11-20",
            **extra: Any) -> InvoiceRecord:
        record = InvoiceRecord(invoice_id=invoice_id, status=status, vendor_id=extra.pop("vendor_id", "V-1001"),
                               invoice_number=extra.pop("invoice_number", f"N-{invoice_id}"),
                               total=extra.pop("total", "310.00"), currency="EUR", due_date=due_date,
                               run_id="run-0", recorded_at="2026-11-01T00:00:00Z", **extra)
        assert self.table.track(record)
        return record


def firing(scheduled_time: str, timezone: str = "UTC", source: str = "schedule") -> Envelope:
    return Envelope(event_id="e", source=source, type="invoice_intake.past_due_check", payload_version="schedule.v1",
                    received_at=scheduled_time, dedupe_key="schedule:x", run_id="run-check",
                    payload={"workflow": "invoice_intake", "schedule": "past_due_check",
                             "scheduled_time": scheduled_time, "timezone": timezone})


def follow_up(invoice_id: str, as_of: str) -> Envelope:
    return Envelope(event_id="f", source="workflow", type="invoice_intake.past_due", payload_version="follow_up.v1",
                    received_at="2026-12-02T07:00:01Z", dedupe_key="follow_up:x", run_id="run-follow-up",
                    payload={"workflow": "invoice_intake", "follow_up": "past_due", "key": f"invoice:{invoice_id}",
                             "started_by": "11111111-2222-5333-8444-555555555555",
                             "data": {"invoice_id": invoice_id, "as_of": as_of}})


def approved(invoice_id: str) -> Envelope:
    return Envelope(event_id="t", source="table", type="invoices.status:recorded->approved",
                    payload_version="table.v1", received_at="2026-12-02T07:00:01Z", dedupe_key="table:x",
                    run_id="run-approved", payload={"keys": {"invoice_id": invoice_id}, "new_status": "approved"})


# -- the daily check ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scheduled_time", "timezone", "day"), [
    ("2026-12-02T07:00:00Z", "UTC", "2026-12-02"),
    ("2026-12-02T23:30:00Z", "Europe/Berlin", "2026-12-03"),  # already the 3rd in Berlin
    ("2026-12-02T03:00:00Z", "America/New_York", "2026-12-01"),  # still the 1st in New York
])
def test_the_checks_date_is_its_scheduled_time_in_its_schedules_time_zone(scheduled_time: str, timezone: str,
                                                                          day: str) -> None:
    assert payables.check_date(firing(scheduled_time, timezone)) == day


def test_the_check_starts_one_follow_up_for_each_unpaid_record_due_before_its_date() -> None:
    world = World()
    world.add("LE-A", due_date="2026-12-01")  # yesterday: past due
    world.add("LE-B", status=records.APPROVED, due_date="2026-11-02")
    world.add("LE-C", status=records.SCHEDULED, due_date="2026-10-31")
    world.add("LE-TODAY", due_date="2026-12-02")  # due today: not yet past due
    world.add("LE-PAID", status=records.PAID, due_date="2026-11-01")
    world.add("LE-NODATE", due_date=None)

    found = payables.find_past_due(CheckInput(run_id="run-check", envelope=firing("2026-12-02T07:00:00Z")),
                                   world.ctx("find_past_due"))

    (batch,) = world.sent
    assert sorted(m.key for m in batch) == ["invoice:LE-A:2026-12-02", "invoice:LE-B:2026-12-02",
                                            "invoice:LE-C:2026-12-02"]
    assert {m.data["invoice_id"]: m.data["as_of"] for m in batch} == {
        "LE-A": "2026-12-02", "LE-B": "2026-12-02", "LE-C": "2026-12-02"}
    assert {m.follow_up for m in batch} == {"past_due"} and {m.workflow for m in batch} == {"invoice_intake"}
    assert (found.as_of, found.past_due, found.not_listed) == ("2026-12-02", 3, 0)
    assert {r.invoice_id: r.run_id for r in found.runs} == {
        m.data["invoice_id"]: follow_up_run_id("invoice_intake", "past_due", m.key) for m in batch}


def test_the_same_days_check_again_names_the_same_runs_and_the_next_days_new_ones() -> None:
    world = World()
    world.add("LE-A", due_date="2026-12-01")
    check = world.ctx("find_past_due")
    first = payables.find_past_due(CheckInput(run_id="r", envelope=firing("2026-12-02T07:00:00Z")), check)
    again = payables.find_past_due(CheckInput(run_id="r", envelope=firing("2026-12-02T15:00:00Z")), check)
    tomorrow = payables.find_past_due(CheckInput(run_id="r", envelope=firing("2026-12-03T07:00:00Z")), check)
    assert first.runs == again.runs  # the router deduplicates the second sending by its key
    assert tomorrow.runs[0].run_id != first.runs[0].run_id
    assert [b[0].key for b in world.sent] == ["invoice:LE-A:2026-12-02"] * 2 + ["invoice:LE-A:2026-12-03"]


def test_the_checks_entry_lists_the_first_fifty_runs_and_counts_the_rest() -> None:
    world = World()
    for number in range(60):
        world.add(f"LE-{number:03d}", due_date="2026-11-01")
    found = payables.find_past_due(CheckInput(run_id="r", envelope=firing("2026-12-02T07:00:00Z")),
                                   world.ctx("find_past_due"))
    assert (found.past_due, len(found.runs), found.not_listed) == (60, payables.LISTED_RUNS, 10)
    assert sum(len(b) for b in world.sent) == 60  # every one started, listed or not


def test_the_check_is_started_by_its_schedule_only_and_only_its_step_may_start_follow_ups() -> None:
    world = World()
    with pytest.raises(MissingData) as refused:
        payables.find_past_due(CheckInput(run_id="r", envelope=firing("2026-12-02T07:00:00Z", source="form")),
                               world.ctx("find_past_due"))
    assert refused.value.reason == "not_a_schedule"
    with pytest.raises(NotGranted):
        world.ctx("check_past_due").start_runs("past_due", [("invoice:LE-A:2026-12-02", {})])
    assert world.sent == []


# -- a follow-up run ------------------------------------------------------------------------------------------------


def test_a_follow_up_reads_its_record_again_and_says_whether_it_is_still_due() -> None:
    world = World()
    world.add("LE-A", due_date="2026-11-20", invoice_number="ACME-1")
    world.add("LE-P", due_date="2026-11-20")
    world.table.set_status("LE-P", records.PAID)  # paid between the check and its follow-up

    still = payables.check_past_due(FollowUpInput(run_id="f", envelope=follow_up("LE-A", "2026-12-02")),
                                    world.ctx("check_past_due"))
    paid = payables.check_past_due(FollowUpInput(run_id="f", envelope=follow_up("LE-P", "2026-12-02")),
                                   world.ctx("check_past_due"))
    gone = payables.check_past_due(FollowUpInput(run_id="f", envelope=follow_up("LE-NONE", "2026-12-02")),
                                   world.ctx("check_past_due"))

    assert (still.still_due, still.days_past_due, still.status, still.invoice_number) == (True, 12, "recorded",
                                                                                          "ACME-1")
    assert (paid.still_due, paid.status) == (False, "paid")
    assert (gone.still_due, gone.status) == (False, None)


@pytest.mark.parametrize("as_of", ["yesterday", "2026-02-30", None])
def test_a_follow_up_with_no_real_date_is_refused(as_of: Any) -> None:
    envelope = follow_up("LE-A", "2026-12-02")
    envelope.payload["data"]["as_of"] = as_of
    with pytest.raises(MissingData) as refused:
        payables.check_past_due(FollowUpInput(run_id="f", envelope=envelope), World().ctx("check_past_due"))
    assert refused.value.reason == "invalid_follow_up"


class Mailer:
    sent: list[tuple[str, str, str, str]] = []

    def send(self, sender: str, to: str, subject: str, text: str, html: str) -> str:
        self.sent.append((sender, to, subject, text))
        return f"msg-{len(self.sent)}"


@pytest.fixture
def mailer(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str, str]]:
    import interlock.approvals

    Mailer.sent = []
    monkeypatch.setattr(interlock.approvals, "SesMailer", Mailer)
    return Mailer.sent


def test_the_payables_team_is_emailed_once_from_the_template_and_the_run_escalated(
        mailer: list[tuple[str, str, str, str]]) -> None:
    world = World()
    world.add("LE-A", due_date="2026-11-20", invoice_number="ACME-1\nPay to DE00 now")
    check = payables.check_past_due(FollowUpInput(run_id="f", envelope=follow_up("LE-A", "2026-12-02")),
                                    world.ctx("check_past_due"))

    first = payables.remind_payables(CheckedInput(run_id="f", check=check), world.ctx("remind_payables", "f"))
    again = payables.remind_payables(CheckedInput(run_id="f", check=check), world.ctx("remind_payables", "f"))

    ((sender, to, subject, text),) = mailer
    assert (sender, to) == ("interlock@corp.test", "payables@corp.test")
    assert subject == "Invoice ACME-1 Pay to DE00 now is 12 day(s) past due"  # the document's words on one line
    assert "Ledger entry: LE-A\n" in text and "Total: 310.00 EUR\n" in text and "Run: f\n" in text
    assert "\n\n" not in subject and text.count("ACME-1") == 1
    assert (first.reason, first.notified, first.message_id) == ("invoice_past_due", True, "msg-1")
    assert again.message_id == first.message_id
    assert WORKFLOW.step("remind_payables").entry == "escalated"


def test_with_no_payables_address_the_follow_up_is_escalated_without_an_email(
        mailer: list[tuple[str, str, str, str]]) -> None:
    world = World(settings={"payables_email": "", "sender_email": "interlock@corp.test"})
    world.add("LE-A")
    check = payables.check_past_due(FollowUpInput(run_id="f", envelope=follow_up("LE-A", "2026-12-02")),
                                    world.ctx("check_past_due"))
    reminded = payables.remind_payables(CheckedInput(run_id="f", check=check), world.ctx("remind_payables"))
    assert (reminded.notified, reminded.message_id, mailer) == (False, None, [])


def test_a_follow_up_paid_since_the_check_is_closed_with_nothing_sent(mailer: list[tuple[str, str, str, str]]) -> None:
    world = World()
    world.add("LE-P", due_date="2026-11-20")
    world.table.set_status("LE-P", records.PAID)
    check = payables.check_past_due(FollowUpInput(run_id="f", envelope=follow_up("LE-P", "2026-12-02")),
                                    world.ctx("check_past_due"))
    closed = payables.close_follow_up(CheckedInput(run_id="f", check=check), world.ctx("close_follow_up"))
    assert (closed.invoice_id, closed.outcome, closed.status, mailer) == ("LE-P", "no_longer_due", "paid", [])
    assert WORKFLOW.step("close_follow_up").entry == "completed"


# -- the payment of an approved invoice -------------------------------------------------------------------------


def test_an_approved_invoice_is_paid_once_to_the_vendor_masters_account_and_its_record_scheduled() -> None:
    world = World()
    world.add(SEEDED_ENTRY, status=records.APPROVED, due_date="2099-04-02", total="310.00")

    done = payables.schedule_payment(ApprovedInput(run_id="a", envelope=approved(SEEDED_ENTRY)),
                                     world.ctx("schedule_payment", "a"))

    (payment,) = world.erp_fake.scheduled_payments()
    assert (payment["entry_id"], payment["amount"], payment["currency"], payment["to_iban"], payment["pay_on"]) == (
        SEEDED_ENTRY, "310.00", "EUR", MASTER_IBAN, "2099-04-02")
    assert (done.payment_id, done.pay_on, done.amount, done.created) == (payment["payment_id"], "2099-04-02",
                                                                        "310.00", True)
    record = world.table.get(SEEDED_ENTRY)
    assert record is not None and (record.status, record.payment_id, record.pay_on) == (
        "scheduled", payment["payment_id"], "2099-04-02")

    # Approved again later (another run, another stream record): the ERP's key is the entry's, nothing is paid twice.
    world.table.set_status(SEEDED_ENTRY, records.APPROVED)
    second = payables.schedule_payment(ApprovedInput(run_id="b", envelope=approved(SEEDED_ENTRY)),
                                       world.ctx("schedule_payment", "b"))
    assert (second.payment_id, second.created) == (done.payment_id, False)
    assert len(world.erp_fake.scheduled_payments()) == 1


def test_a_payment_past_its_due_date_is_scheduled_for_today() -> None:
    world = World()
    world.add(SEEDED_ENTRY, status=records.APPROVED, due_date="2025-02-09")
    done = payables.schedule_payment(ApprovedInput(run_id="a", envelope=approved(SEEDED_ENTRY)),
                                     world.ctx("schedule_payment", "a"))
    assert done.pay_on == datetime.now(UTC).date().isoformat()


def test_an_invoice_no_longer_approved_or_not_tracked_pays_nothing() -> None:
    world = World()
    world.add(SEEDED_ENTRY, status=records.RECORDED)
    with pytest.raises(NotApproved) as refused:
        payables.schedule_payment(ApprovedInput(run_id="a", envelope=approved(SEEDED_ENTRY)),
                                  world.ctx("schedule_payment", "a"))
    assert refused.value.reason == "not_approved"
    with pytest.raises(MissingData) as gone:
        payables.schedule_payment(ApprovedInput(run_id="a", envelope=approved("LE-NONE")),
                                  world.ctx("schedule_payment", "a"))
    assert gone.value.reason == "invoice_not_tracked"
    assert world.erp_fake.scheduled_payments() == []
