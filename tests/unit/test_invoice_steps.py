"""The invoice intake's steps, one by one and chained as the automatic path chains them: the real ERP connector
speaking to the local fake ERP (an httpx MockTransport, no socket), the offline extractor, an in-memory ledger behind
``ctx.once``, and the bundled samples."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from interlock.connectors.erp import HttpErp, LedgerConflict
from interlock.errors import MissingData, NotConfigured
from interlock.kit.context import NotGranted, Services, StepContext
from interlock.local.fakes import FakeErp
from interlock.models import Envelope
from interlock.uploads import PDF, TEXT, Upload, UploadMissing
from interlock.workflows.invoice_intake import WORKFLOW, records, steps
from interlock.workflows.invoice_intake.models import (
    Checked,
    CompareInput,
    Comparison,
    Document,
    ExtractInput,
    Extraction,
    HandOverInput,
    RecordInput,
    RefuseInput,
    Review,
    RouteInput,
    TakeInput,
    ValidateInput,
)
from pdf_fixtures import encrypted, scanned_pdf, text_pdf

from unit.fakes import RecordingTimeline, offline_runner
from unit.invoice_records_fake import MemoryInvoiceRecords
from unit.sales_lead_support import BASE, MemoryLedger, served_by


@pytest.fixture(autouse=True)
def invoice_records_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invoices table of each World's steps is its MemoryInvoiceRecords."""
    monkeypatch.setattr(records, "records_of", lambda ctx: ctx.services.invoice_records)


SAMPLES = Path(__file__).parents[2] / "layers/interlock/interlock/workflows/invoice_intake/samples"
SETTINGS = {"invoice_auto_limit": "1000", "invoice_two_person_limit": "10000", "invoice_po_tolerance_pct": "2",
            "sender_email": "interlock@example.com", "approver_email": "ann@corp.test, bob@corp.test"}


def sample_document(name: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLES / f"form_invoice_{name}.json").read_text())["data"]["document"])


def envelope(document: Any, event_type: str = "invoice.received") -> Envelope:
    return Envelope(event_id="msg_1", source="form", type=event_type, payload_version="standard-webhooks.v1",
                    received_at="2025-03-04T08:15:00Z", dedupe_key="form:msg_1", run_id="run-1",
                    payload={"type": event_type, "data": {"document": document}})


@dataclass
class World:
    erp_fake: FakeErp = field(default_factory=FakeErp)
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    timeline: RecordingTimeline = field(default_factory=RecordingTimeline)
    settings: dict[str, str] = field(default_factory=lambda: dict(SETTINGS))
    erp_configured: bool = True
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    records: MemoryInvoiceRecords = field(default_factory=MemoryInvoiceRecords)

    def __post_init__(self) -> None:
        self.erp = HttpErp(f"{BASE}/erp", transport=served_by(self.erp_fake.handle, "erp"))
        self.runner = offline_runner(self.timeline)

    def ctx(self, step: str, run_id: str = "run-1") -> StepContext:
        declared = WORKFLOW.step(step)
        services = Services(timeline=self.timeline, ledger=self.ledger, decisions=lambda: self.runner,
                            connectors=lambda name: self.erp if self.erp_configured else None,
                            settings=self.settings.__getitem__, tables=lambda name: f"interlock-table-{name}")
        services.invoice_records = self.records  # type: ignore[attr-defined]  # what records_of answers here
        return StepContext(run_id=run_id, attempt=0, workflow=WORKFLOW.name, step=step, deadline=None,
                           services=services, connectors=declared.connectors, settings=WORKFLOW.settings,
                           tables=tuple(t.name for t in WORKFLOW.tables), starts=declared.starts)

    def through_review(self, document: Any, run_id: str = "run-1") -> dict[str, Any]:
        """The automatic path up to the review, as the ASL chains it."""
        doc = steps.take_document(TakeInput(run_id=run_id, envelope=envelope(document)), self.ctx("take_document"))
        extraction = steps.extract(ExtractInput(run_id=run_id, document=doc), self.ctx("extract"))
        checked = steps.validate(ValidateInput(run_id=run_id, document=doc, extraction=extraction),
                                 self.ctx("validate"))
        comparison = steps.compare(CompareInput(run_id=run_id, checked=checked), self.ctx("compare"))
        review = steps.route(RouteInput(run_id=run_id, checked=checked, comparison=comparison,
                                        extraction=extraction), self.ctx("route"))
        return {"document": doc, "extraction": extraction, "checked": checked, "comparison": comparison,
                "review": review}

    def record(self, state: dict[str, Any], approval: dict[str, Any] | None = None, run_id: str = "run-1") -> Any:
        return steps.record_entry(RecordInput(run_id=run_id, checked=state["checked"],
                                              comparison=state["comparison"], review=state["review"],
                                              approval=approval), self.ctx("record_entry", run_id))


def flags(state: dict[str, Any]) -> list[str]:
    return [f.code for f in (*state["checked"].flags, *state["comparison"].flags)]


# -- each sample through the path -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "action", "approvers", "reasons"), [
    ("clean", "record", 0, []),
    ("pdf", "record", 0, []),
    ("mismatch", "approve", 1, ["po_amount_mismatch", "total_at_or_above_auto_limit"]),
    ("large", "approve", 2, ["total_at_or_above_two_person_limit"]),
    ("bank_change", "approve", 1, ["bank_details_changed"]),
    ("duplicate", "refuse", 0, ["po_amount_mismatch", "po_closed", "duplicate_invoice"]),
])
def test_each_bundled_sample_gets_the_review_its_readme_promises(name: str, action: str, approvers: int,
                                                                 reasons: list[str]) -> None:
    review = World().through_review(sample_document(name))["review"]

    assert (review.action, review.approvers) == (action, approvers)
    assert sorted(review.reasons) == sorted(reasons)


def test_a_clean_invoice_is_extracted_offline_with_every_field_and_its_confidence() -> None:
    state = World().through_review(sample_document("clean"))

    invoice = state["extraction"].invoice
    assert state["extraction"].decided_by == "offline" and state["extraction"].escalation is None
    assert {n: f.value for n, f in invoice.fields().items()} == {
        "vendor": "Acme Office Supplies GmbH", "vendor_tax_id": "DE123456789", "invoice_number": "ACME-2025-1001",
        "issue_date": "2025-03-03", "due_date": "2025-04-02", "currency": "EUR", "po_number": "PO-4500",
        "subtotal": "400.00", "tax": "76.00", "total": "476.00", "iban": "DE89 3704 0044 0532 0130 00",
        "bic": "COBADEFFXXX"}
    assert {f.confidence for f in invoice.fields().values()} == {0.99}
    assert [(line.quantity, line.amount) for line in invoice.lines] == [("20", "100.00"), ("4", "300.00")]
    comparison = state["comparison"]
    assert (comparison.vendor_id, comparison.po.remaining, comparison.duplicate_of) == ("V-1001", "480.00", None)


def test_a_recorded_invoice_is_one_ledger_entry_however_often_the_step_or_another_run_records_it() -> None:
    world = World()
    state = world.through_review(sample_document("clean"))

    first = world.record(state)
    repeat = world.record(state)  # the same run's step again: the ledger answers the first result
    # another run of the same invoice that passed the duplicate check at the same time: the ERP's key holds, and
    # that run fails named (the ledger keeps the first run's entry)
    with pytest.raises(LedgerConflict) as raced:
        world.record(state, run_id="run-2")

    assert first.created and first == repeat and raced.value.reason == "duplicate_invoice"
    assert [e["invoice_number"] for e in world.erp_fake.ledger()] == ["ACME-2025-0990", "ACME-2025-1001"]
    assert world.ledger.calls == ["run-1:record_entry:ledger_entry", "run-2:record_entry:ledger_entry"]


def test_a_step_that_died_after_the_erp_recorded_gets_the_first_entry_back_with_the_same_key() -> None:
    world = World()
    state = world.through_review(sample_document("clean"))
    world.record(state)
    world.ledger.done.clear()  # the ledger's marker is there but unconfirmed: a later attempt does the effect again

    again = world.record(state)

    assert not again.created and again.entry_id == "LE-000002" and len(world.erp_fake.ledger()) == 2


def test_an_invoice_that_needed_approval_is_never_recorded_without_it() -> None:
    world = World()
    state = world.through_review(sample_document("mismatch"))

    with pytest.raises(MissingData) as unapproved:
        world.record(state)
    with pytest.raises(MissingData):
        world.record(state, approval={"decision": "rejected"})
    approved = world.record(state, approval={"decision": "approved", "approvals": 1, "required": 1, "decisions": [
        {"approver": "ann@corp.test", "decision": "approved", "decided_at": "2025-03-04T09:00:00Z"}]})

    assert unapproved.value.reason == "approval_missing"
    assert approved.approved_by == ["ann@corp.test"]
    assert world.erp_fake.ledger()[-1]["approved_by"] == ["ann@corp.test"]


def test_an_approved_invoice_of_a_vendor_not_in_the_master_fails_named_and_records_nothing() -> None:
    world = World()
    text = sample_document("clean")["text"].replace("DE123456789", "DE999999999")
    state = world.through_review({"text": text})

    assert "unknown_vendor" in flags(state)
    with pytest.raises(MissingData) as failed:
        world.record(state, approval={"decision": "approved"})
    assert failed.value.reason == "vendor_not_in_erp" and len(world.erp_fake.ledger()) == 1


def test_without_a_tax_id_the_vendor_is_the_pos_and_the_missing_tax_id_is_flagged() -> None:
    text = sample_document("clean")["text"].replace("Vendor tax ID: DE123456789\n", "")
    state = World().through_review({"text": text})

    assert state["comparison"].vendor_id == "V-1001"
    assert flags(state) == ["missing_vendor_tax_id"] and state["review"].approvers == 1


def test_a_po_number_that_is_no_identifier_is_unknown_without_asking_the_erp() -> None:
    world = World()
    state = world.through_review({"text": sample_document("clean")["text"].replace("PO-4500", "PO 4500/../x")})

    assert "unknown_po" in flags(state)


def test_a_duplicate_is_refused_with_its_reason_and_the_entry_it_duplicates() -> None:
    world = World()
    state = world.through_review(sample_document("duplicate"))

    refused = steps.refuse(RefuseInput(run_id="run-1", checked=state["checked"], comparison=state["comparison"],
                                       review=state["review"]), world.ctx("refuse"))

    assert (refused.reason, refused.outcome, refused.duplicate_of) == ("duplicate_invoice", "rejected", "LE-000001")
    assert WORKFLOW.step("refuse").entry == "rejected"


def test_the_limits_and_tolerance_are_read_from_the_settings_and_a_bad_one_is_not_configured() -> None:
    world = World(settings={**SETTINGS, "invoice_auto_limit": "100", "invoice_po_tolerance_pct": "10"})
    state = world.through_review(sample_document("clean"))
    assert state["review"].reasons == ["total_at_or_above_auto_limit"]  # 476.00 >= 100

    for name, bad in (("invoice_two_person_limit", "lots"), ("invoice_po_tolerance_pct", "-1"),
                      ("invoice_auto_limit", "NaN")):
        with pytest.raises(NotConfigured) as refused:
            World(settings={**SETTINGS, name: bad}).through_review(sample_document("clean"))
        assert (refused.value.reason, refused.value.details["setting"]) == ("invalid_setting", name)


def test_no_erp_configured_is_a_named_failure() -> None:
    with pytest.raises(NotConfigured) as refused:
        World(erp_configured=False).through_review(sample_document("clean"))
    assert refused.value.reason == "erp_not_configured"


# -- taking the document ----------------------------------------------------------------------------------------


def take(document: Any, event_type: str = "invoice.received") -> Document:
    return steps.take_document(TakeInput(run_id="run-1", envelope=envelope(document, event_type)),
                               World().ctx("take_document"))


def test_a_pdf_with_a_text_layer_gives_its_text_and_a_scan_gives_no_text_layer_not_an_error() -> None:
    pdf = take({"pdf_base64": base64.b64encode(text_pdf(["Invoice number: X-1", "Total: 12.00"])).decode()})
    scan = take({"pdf_base64": base64.b64encode(scanned_pdf()).decode(), "filename": "scan.pdf"})

    assert (pdf.kind, pdf.text_layer, pdf.pages) == ("pdf", True, 1) and "Invoice number: X-1" in (pdf.text or "")
    assert (scan.text_layer, scan.reason, scan.text, scan.filename) == (False, "no_text_layer", None, "scan.pdf")


@pytest.mark.parametrize(("document", "reason"), [
    ({"pdf_base64": base64.b64encode(b"%PDF-1.4\nbroken").decode()}, "broken_pdf"),
    ({"pdf_base64": base64.b64encode(b"hello").decode()}, "not_a_pdf"),
    ({"pdf_base64": "not base64!"}, "invalid_base64"),
    ({"pdf_base64": base64.b64encode(encrypted(text_pdf(["Total: 1.00"]), "secret")).decode()}, "encrypted"),
    ({"text": "   \n "}, "empty"),
])
def test_a_document_that_cannot_be_read_is_a_named_refusal_never_retried(document: dict[str, str],
                                                                        reason: str) -> None:
    with pytest.raises(steps.DocumentRefused) as refused:
        take(document)
    assert refused.value.reason == reason and not refused.value.retryable


@pytest.mark.parametrize("document", [None, {}, {"text": "a", "pdf_base64": "b"}, {"fax": "x"}, "text", ["a"]])
def test_an_event_without_exactly_one_document_is_missing_data_naming_the_field(document: Any) -> None:
    with pytest.raises(MissingData) as missing:
        take(document)
    assert missing.value.reason in ("missing_data", "invalid_document")


def test_another_event_type_is_refused() -> None:
    with pytest.raises(MissingData) as refused:
        take({"text": "x"}, "invoice.paid")
    assert refused.value.reason == "unsupported_event"


def test_a_long_text_is_cut_to_what_a_run_carries_and_flagged() -> None:
    world = World()
    text = sample_document("clean")["text"] + "\nTerms: " + "x" * steps.MAX_RUN_TEXT_CHARS
    doc = take({"text": text})
    extraction = steps.extract(ExtractInput(run_id="run-1", document=doc), world.ctx("extract"))
    checked = steps.validate(ValidateInput(run_id="run-1", document=doc, extraction=extraction),
                             world.ctx("validate"))

    assert doc.truncated and len(doc.text or "") == steps.MAX_RUN_TEXT_CHARS and doc.chars == len(text.strip())
    assert [f.code for f in checked.flags] == ["document_truncated"]


def test_an_upload_is_read_by_its_reference_and_its_named_error_is_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import interlock.uploads

    stored = {"upload_pdf": Upload(reference="upload_pdf", content_type=PDF,
                                   body=text_pdf(["Invoice number: U-1", "Total: 9.00"])),
              "upload_txt": Upload(reference="upload_txt", content_type=TEXT, body=b"Invoice number: U-2\n")}

    def fetch(reference: str) -> Upload:
        if reference not in stored:
            raise UploadMissing("no such upload")
        return stored[reference]

    monkeypatch.setattr(interlock.uploads, "fetch_upload", fetch)

    pdf, text = take({"upload": "upload_pdf"}), take({"upload": "upload_txt"})
    with pytest.raises(steps.DocumentRefused) as missing:
        take({"upload": "upload_gone"})

    assert (pdf.kind, "U-1" in (pdf.text or "")) == ("upload_pdf", True)
    assert (text.kind, text.text) == ("upload_text", "Invoice number: U-2")
    assert missing.value.reason == "upload_missing"


def test_the_timeline_keeps_what_the_document_was_never_its_text() -> None:
    doc = take(sample_document("clean"))
    summary = steps.document_summary(doc)
    assert "text" not in summary and summary["sha256"] == doc.sha256 and summary["chars"] == len(doc.text or "")


# -- handing over --------------------------------------------------------------------------------------------------


def test_a_scan_is_handed_to_each_approver_once_by_email(monkeypatch: pytest.MonkeyPatch) -> None:
    import interlock.approvals

    world = World()
    sent: list[tuple[str, str]] = []

    class Mailer:
        def send(self, sender: str, to: str, subject: str, text: str, html: str) -> str:
            sent.append((to, subject))
            assert "run-1" in text and "no text layer" in text
            return f"msg-{len(sent)}"

    monkeypatch.setattr(interlock.approvals, "SesMailer", Mailer)
    doc = take({"pdf_base64": base64.b64encode(scanned_pdf()).decode()})
    data = HandOverInput(run_id="run-1", reason="no_text_layer", document=doc)

    first = steps.hand_over(data, world.ctx("hand_over"))
    again = steps.hand_over(data, world.ctx("hand_over"))

    assert (first.reason, first.outcome, first.notified) == ("no_text_layer", "escalated", 2)
    assert sent == [("ann@corp.test", "Invoice needs manual entry"), ("bob@corp.test", "Invoice needs manual entry")]
    assert again.message_ids == first.message_ids  # once per approver, however often the step runs


def test_only_the_workers_of_a_steps_job_reach_the_erp() -> None:
    world = World()
    with pytest.raises(NotGranted):
        world.ctx("validate").connector("erp")
    assert WORKFLOW.step("compare").connectors == ("erp",) and WORKFLOW.step("record_entry").connectors == ("erp",)


def test_an_extraction_no_one_could_make_is_found_false_with_its_reason() -> None:
    class Failing:
        def decide(self, *args: Any, **kwargs: Any) -> Any:
            from interlock.ai.decision import Decision, Escalation

            return Decision(name="extract_invoice", output=None, provider="openai", model=None, tier=None,
                            prompt_version="v1", prompt_hash="h", attempts=4, tokens_in=0, tokens_out=0,
                            cost_usd=0.0, escalation=Escalation.ALL_TIERS_FAILED)

    world = World()
    world.runner = Failing()
    found = steps.extract(ExtractInput(run_id="run-1", document=take(sample_document("clean"))),
                          world.ctx("extract"))
    assert (found.found, found.reason, found.escalation, found.invoice) == (
        False, "extraction_failed", "all_tiers_failed", None)


def test_models_round_trip_through_json_as_the_state_machine_carries_them() -> None:
    state = World().through_review(sample_document("large"))
    for name, model in (("extraction", Extraction), ("checked", Checked), ("comparison", Comparison),
                        ("review", Review), ("document", Document)):
        assert model.model_validate(json.loads(state[name].model_dump_json())) == state[name]
