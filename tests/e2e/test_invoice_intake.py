"""The invoice intake end to end, through ``interlock run`` over real HTTP: the bundled ``form`` samples (text and
PDF), the local fake ERP speaking its real protocol, the offline extractor, and the approvers' emailed links (a pool
of two, so that a large invoice can ask two different people)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from interlock.webhooks.standard import signed_headers

from e2e.conftest import SECRET, Runtime, _start

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).parents[2] / "layers/interlock/interlock/workflows/invoice_intake/samples"
POOL = ("ann@corp.test", "bob@corp.test")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from _start(tmp_path_factory.mktemp("invoices"), INTERLOCK_APPROVER_EMAIL=",".join(POOL))


def sample(name: str, **replace: str) -> dict[str, Any]:
    """The bundled sample ``form_invoice_<name>.json``, with text of its invoice replaced (``old=new``)."""
    event: dict[str, Any] = json.loads((SAMPLES / f"form_invoice_{name}.json").read_text())
    document = event["data"]["document"]
    for old, new in replace.items():
        document["text"] = document["text"].replace(old, new)
    return event


def send(rt: Runtime, event: dict[str, Any]) -> str:
    answer = rt.send(event)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["run_id"])


def ledger(rt: Runtime) -> list[dict[str, Any]]:
    return list(httpx.get(f"{rt.url}/_local/erp/ledger-entries", timeout=10).json()["results"])


def entry(run: dict[str, Any], step: str, state: str | None = None) -> dict[str, Any]:
    found = [e["details"] for e in run["timeline"] if e["step"] == step and (state is None or e["state"] == state)]
    assert found, f"no {step} entry: {[(e['state'], e['step']) for e in run['timeline']]}"
    return dict(found[-1])


def links(rt: Runtime, run_id: str) -> dict[str, str]:
    """Each approver's own link for ``run_id``, once both emails are in the outbox."""
    deadline = time.monotonic() + 30
    found: dict[str, str] = {}
    while time.monotonic() < deadline:
        for message in rt.emails():
            text = message.get_body(preferencelist=("plain",))
            content = text.get_content() if text else ""
            if f"Run: {run_id}" in content:
                match = re.search(r"https?://\S+/approvals/[A-Za-z0-9_-]+", content)
                if match:
                    found[str(message["To"])] = match.group(0)
        if len(found) == len(POOL):
            return found
        time.sleep(0.2)
    raise AssertionError(f"not every approver was emailed for {run_id}: {sorted(found)}")


def decide(link: str, decision: str) -> httpx.Response:
    return httpx.post(link, data={"decision": decision}, timeout=10)


def pending(rt: Runtime, run_id: str) -> dict[str, Any]:
    run = rt.wait_status(run_id, "pending_approval")
    return entry(run, "approval", "pending_approval")


def test_given_a_clean_invoice_then_it_is_recorded_in_the_ledger_at_once_and_the_entry_is_on_the_timeline(
    runtime: Runtime,
) -> None:
    run_id = send(runtime, sample("clean"))

    run = runtime.wait_status(run_id, "completed")

    recorded = entry(run, "record_entry", "completed")
    assert run["workflow"] == "invoice_intake"
    assert (recorded["invoice_number"], recorded["total"], recorded["currency"], recorded["created"]) == (
        "ACME-2025-1001", "476.00", "EUR", True)
    assert recorded["effects"]["ledger_entry"]["entry_id"] == recorded["entry_id"]
    mine = [e for e in ledger(runtime) if e["run_id"] == run_id]
    assert [(e["entry_id"], e["vendor_id"], e["total"]) for e in mine] == [(recorded["entry_id"], "V-1001", "476.00")]
    assert entry(run, "validate")["flags"] == [] and entry(run, "compare")["flags"] == []
    assert "approval" not in {e["step"] for e in run["timeline"]}


def test_given_a_text_pdf_then_its_text_layer_is_read_and_the_invoice_recorded(runtime: Runtime) -> None:
    run_id = send(runtime, sample("pdf"))

    run = runtime.wait_status(run_id, "completed")

    document = entry(run, "take_document")
    assert (document["kind"], document["pages"], document["text_layer"]) == ("pdf", 1, True)
    assert "text" not in document  # the timeline keeps what the document was, not its text
    assert entry(run, "record_entry", "completed")["invoice_number"] == "NW-88123"


def test_given_a_scanned_pdf_without_text_then_a_person_is_told_and_the_run_ends_escalated(runtime: Runtime) -> None:
    before = len(ledger(runtime))
    run_id = send(runtime, sample("scanned"))

    run = runtime.wait_status(run_id, "escalated")

    handed = entry(run, "hand_over", "escalated")
    assert (handed["reason"], handed["notified"]) == ("no_text_layer", 2)
    assert "extract" not in {e["step"] for e in run["timeline"]}
    told = runtime.wait_emails(lambda m: m["Subject"] == "Invoice needs manual entry"
                               and f"Run: {run_id}" in m.get_body(preferencelist=("plain",)).get_content(),
                               count=len(POOL))
    assert sorted(str(m["To"]) for m in told) == sorted(POOL)
    assert len(ledger(runtime)) == before


def test_given_a_duplicate_invoice_then_it_is_refused_and_never_recorded_twice(runtime: Runtime) -> None:
    first = send(runtime, sample("clean", **{"ACME-2025-1001": "ACME-2025-1101", "PO-4500": "PO-4505",
                                              "476.00": "595.00", "400.00": "500.00", "76.00": "95.00",
                                              "- 4 x Toner cartridge, black @ 75.00 = 300.00":
                                                  "- 4 x Toner cartridge, black @ 100.00 = 400.00"}))
    runtime.wait_status(first, "completed")
    count = len(ledger(runtime))

    again = send(runtime, sample("clean", **{"ACME-2025-1001": "acme-2025-1101", "PO-4500": "PO-4505",
                                              "476.00": "595.00", "400.00": "500.00", "76.00": "95.00",
                                              "- 4 x Toner cartridge, black @ 75.00 = 300.00":
                                                  "- 4 x Toner cartridge, black @ 100.00 = 400.00"}))
    seeded = send(runtime, sample("duplicate"))

    for run_id in (again, seeded):
        run = runtime.wait_status(run_id, "rejected")
        refused = entry(run, "refuse", "rejected")
        assert refused["reason"] == "duplicate_invoice", refused
        assert refused["duplicate_of"] is not None
        assert "record_entry" not in {e["step"] for e in run["timeline"]}
    assert len(ledger(runtime)) == count


def test_given_an_invoice_that_does_not_match_its_po_then_a_person_approves_it_and_it_is_recorded(
    runtime: Runtime,
) -> None:
    run_id = send(runtime, sample("mismatch"))

    request = pending(runtime, run_id)
    link = links(runtime, run_id)

    assert request["required"] == 1
    assert "po_amount_mismatch" in request["reasons"] and "total_at_or_above_auto_limit" in request["reasons"]
    page = httpx.get(link["ann@corp.test"], timeout=10).text
    assert "Approve invoice NW-88120 from Northwind Logistics Ltd for GBP 1150.00?" in page
    assert "po_amount_mismatch" in page and "800.00 of 2000.00 left" in page
    assert "1150.00 (confidence 0.99) (flagged)" in page  # the field beside the flag that caused the review
    assert decide(link["ann@corp.test"], "approve").status_code == 200
    run = runtime.wait_status(run_id, "completed")
    recorded = entry(run, "record_entry", "completed")
    assert recorded["approved_by"] == ["ann@corp.test"]
    assert [e["approved_by"] for e in ledger(runtime) if e["run_id"] == run_id] == [["ann@corp.test"]]


def test_given_a_changed_bank_account_then_it_is_flagged_and_a_rejection_records_nothing(runtime: Runtime) -> None:
    run_id = send(runtime, sample("bank_change"))

    request = pending(runtime, run_id)
    link = links(runtime, run_id)

    assert request["reasons"] == ["bank_details_changed"] and request["required"] == 1
    page = httpx.get(link["bob@corp.test"], timeout=10).text
    assert "GB33BUKB20201555555555" in page and "DE89370400440532013000" in page
    assert "confirm the change with the vendor" in page
    assert decide(link["bob@corp.test"], "reject").status_code == 200
    run = runtime.wait_status(run_id, "rejected")
    assert entry(run, "outcome", "rejected")["reason"] == "approver_rejected"
    assert [e for e in ledger(runtime) if e["run_id"] == run_id] == []


def test_given_a_large_invoice_then_two_different_approvers_must_approve_before_it_is_recorded(
    runtime: Runtime,
) -> None:
    run_id = send(runtime, sample("large"))

    request = pending(runtime, run_id)
    link = links(runtime, run_id)

    assert request["required"] == 2 and request["reasons"] == ["total_at_or_above_two_person_limit"]
    assert decide(link["ann@corp.test"], "approve").status_code == 200
    assert decide(link["ann@corp.test"], "approve").status_code != 500  # the same person again counts once
    time.sleep(1.0)
    assert runtime.run(run_id)["status"] == "pending_approval"  # one of two
    assert decide(link["bob@corp.test"], "approve").status_code == 200
    run = runtime.wait_status(run_id, "completed")
    recorded = entry(run, "record_entry", "completed")
    assert sorted(recorded["approved_by"]) == sorted(POOL)
    assert recorded["total"] == "48400.00"


def test_given_a_large_invoice_when_one_of_the_two_approvers_rejects_then_nothing_is_recorded(
    runtime: Runtime,
) -> None:
    run_id = send(runtime, sample("large", **{"GLX-77001": "GLX-77002"}))

    pending(runtime, run_id)
    link = links(runtime, run_id)
    assert decide(link["bob@corp.test"], "reject").status_code == 200

    run = runtime.wait_status(run_id, "rejected")
    assert [e["details"].get("approver") for e in run["timeline"] if e["state"] == "rejected"] == ["bob@corp.test",
                                                                                                  None]
    assert [e for e in ledger(runtime) if e["run_id"] == run_id] == []
    assert decide(link["ann@corp.test"], "approve").status_code == 409  # the request is closed


def test_given_a_broken_pdf_then_the_run_fails_with_a_named_reason_and_nothing_is_recorded(runtime: Runtime) -> None:
    broken = {"type": "invoice.received",
              "data": {"document": {"pdf_base64": base64.b64encode(b"%PDF-1.4\nnot really a pdf").decode()}}}
    run_id = send(runtime, broken)

    run = runtime.wait_status(run_id, "failed")

    assert entry(run, "outcome", "failed")["reason"] == "broken_pdf"


def test_given_an_invoice_pdf_too_large_for_an_event_then_it_is_uploaded_and_read_by_its_reference(
    runtime: Runtime,
) -> None:
    import importlib.util
    import uuid

    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    text = make.TEXTS["pdf"].replace("NW-88123", "NW-88999").replace("PO-4504", "PO-4501")
    # a PDF over the webhook body limit: the invoice, and pages of terms after it
    import hashlib

    references = (hashlib.sha512(str(n).encode()).hexdigest() + hashlib.sha256(str(n).encode()).hexdigest()
                  for n in range(850))  # incompressible
    pdf = make.text_pdf(text + "\n".join(f"Delivery note {n}: {ref}" for n, ref in enumerate(references)))
    assert len(pdf) > 64 * 1024
    body = json.dumps({"content_type": "application/pdf", "size": len(pdf)}).encode()
    signed = signed_headers(SECRET, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
    grant = httpx.post(f"{runtime.url}/uploads", content=body, timeout=10,
                       headers={"Content-Type": "application/json", **signed}).json()
    assert httpx.put(grant["url"], content=pdf, headers=grant["headers"], timeout=10).status_code == 200

    run_id = send(runtime, {"type": "invoice.received", "data": {"document": {"upload": grant["upload"]}}})

    run = runtime.wait_status(run_id, "pending_approval")
    document = entry(run, "take_document")
    assert (document["kind"], document["bytes"], document["truncated"]) == ("upload_pdf", len(pdf), True)
    assert entry(run, "extract", "processing")  # read from the upload's text layer
    request = entry(run, "approval", "pending_approval")
    assert "document_truncated" in request["reasons"]  # more text than a run carries: a person looks
