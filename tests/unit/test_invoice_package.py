"""The invoice intake's package: its declaration, its decision point's files and offline reader, its approval view,
and its samples (what the committed script writes). Extraction through a model: test_invoice_extraction.py."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

from interlock import cli
from interlock.ai.prompts import load_policy, load_prompt
from interlock.ai.runner import policy_dir, prompt_dir
from interlock.kit import Job
from interlock.kit.connectors import CONNECTORS
from interlock.kit.context import StepContext
from interlock.settings import AiSettings
from interlock.steps import StepInput
from interlock.topology import DeploymentSettings
from interlock.workflows.invoice_intake import WORKFLOW
from interlock.workflows.invoice_intake.approval import SUPPLIER_WORDS, view
from interlock.workflows.invoice_intake.decisions import EXTRACT_INVOICE, offline_extract, read_labelled
from interlock.workflows.invoice_intake.models import ExtractedInvoice
from pydantic import BaseModel

from unit.test_invoice_steps import World, sample_document

PACKAGE = Path(__file__).parents[2] / "layers/interlock/interlock/workflows/invoice_intake"


# -- the declaration ----------------------------------------------------------------------------------------------


def test_every_declared_step_is_a_function_of_one_step_input_and_a_context_returning_a_model() -> None:
    for step in WORKFLOW.steps:
        module, _, name = step.run.partition(":")
        function = getattr(importlib.import_module(module), name)
        hints = typing.get_type_hints(function)
        assert list(inspect.signature(function).parameters) == ["data", "ctx"], step.name
        assert hints["ctx"] is StepContext and issubclass(hints["data"], StepInput), step.name
        assert issubclass(hints["return"], BaseModel), step.name


def test_the_declaration_names_its_trigger_jobs_connector_and_settings() -> None:
    assert [(t.source, t.event_type) for t in WORKFLOW.triggers] == [("form", "invoice.received")]
    assert WORKFLOW.jobs == (Job.VALIDATE, Job.DECIDE, Job.QUERY, Job.ACT, Job.RECORD, Job.NOTIFY, Job.APPROVE)
    for step in WORKFLOW.steps:
        for name in step.connectors:
            assert step.job in CONNECTORS[name].jobs, (step.name, name)
    assert CONNECTORS["erp"].jobs == (Job.QUERY, Job.ACT)
    assert CONNECTORS["erp"].settings == ("erp_base_url", "erp_token_secret")
    defaults = DeploymentSettings()
    assert {name: defaults.get(name) for name in WORKFLOW.settings if name.startswith("invoice_")} == {
        "invoice_auto_limit": "1000", "invoice_two_person_limit": "10000", "invoice_po_tolerance_pct": "2"}


def test_importing_the_declaration_loads_no_step_code() -> None:
    code = ("import sys; import interlock.workflows.invoice_intake as w; "
            "print(sorted(m for m in sys.modules if m.startswith('interlock.workflows.invoice_intake.') "
            "or m in ('pydantic', 'httpx', 'pypdf', 'interlock.ai.runner', 'interlock.documents')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_wait_asks_the_reviews_number_of_approvers_from_the_state() -> None:
    wait = json.loads((PACKAGE / "wait.asl.json").read_text())
    payload = wait["States"]["RequestApproval"]["Parameters"]["Payload"]
    assert payload["approvers.$"] == "$.review.approvers" and payload["reasons.$"] == "$.review.reasons"
    assert "approvers" not in payload  # read from the state: the approver pool is checked when it runs


# -- the decision point ----------------------------------------------------------------------------------------------


def test_the_decision_point_reads_its_prompt_and_policy_from_the_package() -> None:
    prompt = load_prompt(EXTRACT_INVOICE.prompt, None, directory=prompt_dir(EXTRACT_INVOICE))
    policy = load_policy(EXTRACT_INVOICE.policy, policy_dir(EXTRACT_INVOICE, AiSettings()))

    assert prompt.version == "v1" and "supplier invoices" in prompt.text
    assert "Accounts-payable reading policies" in policy


def test_the_offline_reader_reads_labelled_lines_and_vouches_for_nothing_without_the_required_fields() -> None:
    answer = offline_extract({"document": sample_document("mismatch")["text"]})
    nothing = offline_extract({"document": "Dear team, please find our invoice attached."})
    odd = read_labelled("Invoice No: 77\nTOTAL DUE : 12.00\nVAT (20%): 2.00\nSupplier: Initech\nTotal: 99.00\n")

    assert EXTRACT_INVOICE.output.model_validate_json(answer.model_dump_json()) == answer
    assert (answer.total.value, answer.currency.value, answer.confidence) == ("1,150.00", "GBP", 0.99)
    assert nothing.confidence == 0.0 and nothing.vendor.value is None and nothing.vendor.confidence == 0.0
    assert "no label for vendor, invoice_number, currency, total" in nothing.reasoning
    assert (odd.invoice_number.value, odd.total.value, odd.tax.value, odd.vendor.value) == (
        "77", "12.00", "2.00", "Initech")  # the first labelled total wins


def test_every_sample_with_text_is_read_offline_with_all_its_fields() -> None:
    for name in ("clean", "mismatch", "large", "duplicate", "bank_change"):
        answer = offline_extract({"document": sample_document(name)["text"]})
        assert all(f.value is not None for f in answer.fields().values()), name
        assert answer.lines and answer.confidence == 0.99, name


# -- the approval view ---------------------------------------------------------------------------------------------


def state_of(name: str) -> dict[str, Any]:
    state = World().through_review(sample_document(name))
    summary = state["document"].model_dump(mode="json", exclude={"text"})
    return {**{k: v.model_dump(mode="json") for k, v in state.items() if k != "document"}, "document": summary}


def test_the_approval_view_shows_the_flags_beside_the_fields_they_are_about() -> None:
    shown = view(state_of("bank_change"))

    fields = dict(shown.fields)
    assert shown.title == "Approve invoice ACME-2025-1002 from Acme Office Supplies GmbH for EUR 595.00?"
    assert fields["Needs"] == "one approver (bank_details_changed)"
    assert fields["Flag 1: bank_details_changed"].startswith("Bank details differ from the vendor master")
    assert fields["IBAN on the invoice"] == "GB33BUKB20201555555555 (confidence 0.99) (flagged)"
    assert fields["IBAN in the vendor master"] == "DE89370400440532013000"
    assert fields["Total"] == "595.00 (confidence 0.99)"
    assert fields["PO in the ERP"] == "open, EUR 595.00 of 595.00 left, vendor V-1001, tolerance 2%"
    assert [q.label for q in shown.quoted] == [f"Vendor ({SUPPLIER_WORDS})", f"Lines ({SUPPLIER_WORDS})"]


def test_the_approval_view_of_a_large_invoice_says_two_approvers() -> None:
    shown = view(state_of("large"))
    assert dict(shown.fields)["Needs"] == "two different approvers (total_at_or_above_two_person_limit)"
    assert "two different approvers" in (shown.summary or "")


def test_the_approval_view_never_takes_the_invoices_words_as_its_own() -> None:
    world = World()
    text = sample_document("clean")["text"].replace("Invoice number: ACME-2025-1001",
                                                    "Invoice number: Click https://evil.example now")
    state = world.through_review({"text": text})
    shown = view({**{k: v.model_dump(mode="json") for k, v in state.items()}})
    assert "evil.example" not in shown.title and "without a readable number" in shown.title


# -- the samples -----------------------------------------------------------------------------------------------


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_samples", PACKAGE / "samples" / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_samples_are_what_the_script_writes_byte_for_byte() -> None:
    generator = _generator()
    made = generator.samples()

    assert sorted(made) == sorted(p.name for p in (PACKAGE / "samples").glob("*.json"))
    for name, content in made.items():
        assert (PACKAGE / "samples" / name).read_text() == generator.render(content), name
    assert generator.samples() == made  # deterministic


def test_the_samples_are_found_by_interlock_send_and_fit_the_webhook_body_limit() -> None:
    form = cli._scheme_samples("standard-webhooks")
    names = {"invoice_clean", "invoice_mismatch", "invoice_large", "invoice_duplicate", "invoice_bank_change",
             "invoice_pdf", "invoice_scanned"}
    assert names <= set(form)
    for name in names:
        body = form[name].read_bytes()
        assert len(body) < 64 * 1024 and json.loads(body)["type"] == "invoice.received", name


def test_an_extracted_invoice_is_a_field_each_with_value_and_confidence() -> None:
    assert set(ExtractedInvoice.model_fields) == {"vendor", "vendor_tax_id", "invoice_number", "issue_date",
                                                  "due_date", "currency", "po_number", "subtotal", "tax", "total",
                                                  "iban", "bic", "lines"}
