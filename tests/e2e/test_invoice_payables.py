"""The invoice intake after its ledger entry, through ``interlock run`` over real HTTP: each recorded invoice's
record in the workflow's ``invoices`` table; the daily past-due check (fired by skipping the scheduler's clock and
by ``interlock trigger``) starting one follow-up run per invoice per day that tells the payables team; and an
invoice moved to ``approved`` in the table (by ``interlock change``) scheduling its payment in the fake ERP, while a
move to another status starts nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.conftest import Runtime, _start

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).parents[2] / "layers/interlock/interlock/workflows/invoice_intake/samples"
PAYABLES = "payables@corp.test"
CHECK = "invoice_intake.past_due_check"
VENDOR_IBAN = "DE89370400440532013000"  # the vendor master's account of V-1001 in the fake ERP
# A second clean invoice of the same vendor, against another purchase order (the first one's is used up by then).
SECOND = {"ACME-2025-1001": "ACME-2025-1102", "PO-4500": "PO-4505", "476.00": "595.00", "400.00": "500.00",
          "76.00": "95.00", "- 4 x Toner cartridge, black @ 75.00 = 300.00":
          "- 4 x Toner cartridge, black @ 100.00 = 400.00"}
# And one not due for a while.
NOT_DUE = {**SECOND, "ACME-2025-1102": "ACME-2025-1103", "PO-4505": "PO-4503", "Due date: 2025-04-02":
           "Due date: 2099-04-02"}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from _start(tmp_path_factory.mktemp("payables"), INTERLOCK_PAYABLES_EMAIL=PAYABLES)


def sample(name: str, **replace: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((SAMPLES / f"form_invoice_{name}.json").read_text())
    for old, new in replace.items():
        event["data"]["document"]["text"] = event["data"]["document"]["text"].replace(old, new)
    return event


def cli(rt: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interlock.cli", *args, "--url", rt.url], capture_output=True,
                          text=True, env={**os.environ, **rt.env}, timeout=60)


def local(rt: Runtime, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{rt.url}/_local{path}", timeout=10, **kwargs)


def run_of(rt: Runtime, run_id: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
    """The run once it has ``status``: a run a queue message starts exists only once the router has taken it."""
    deadline = time.monotonic() + timeout
    while httpx.get(f"{rt.url}/runs/{run_id}", timeout=10).status_code == 404:
        assert time.monotonic() < deadline, f"run {run_id} was never created:\n{rt.log_tail()}"
        time.sleep(0.2)
    return rt.wait_status(run_id, status)


def details(run: dict[str, Any], step: str, state: str | None = None) -> dict[str, Any]:
    found = [e["details"] for e in run["timeline"] if e["step"] == step and (state is None or e["state"] == state)]
    assert found, f"no {step} entry: {[(e['state'], e['step']) for e in run['timeline']]}"
    return dict(found[-1])


def record(rt: Runtime, invoice_id: str) -> dict[str, Any]:
    items = local(rt, "GET", "/tables/invoices/items").json()["items"]
    (found,) = [i for i in items if i["invoice_id"] == invoice_id]
    return dict(found)


def recorded(rt: Runtime, event: dict[str, Any]) -> str:
    """Send an invoice that is recorded automatically; its ledger entry id (its record's key)."""
    answer = rt.send(event)
    assert answer.status_code == 202, answer.text
    run = rt.wait_status(answer.json()["run_id"], "completed")
    entry = details(run, "record_entry", "completed")
    assert entry["record"] == f"invoices/{entry['entry_id']}"
    return str(entry["entry_id"])


def follow_up_of(check: dict[str, Any], invoice_id: str) -> str:
    found = details(check, "find_past_due", "completed")
    (run_id,) = [r["run_id"] for r in found["runs"] if r["invoice_id"] == invoice_id]
    return str(run_id)


def fired(rt: Runtime, seconds: int) -> dict[str, Any]:
    """Skip the scheduler's clock; the past-due check's run it fired, once completed."""
    answer = local(rt, "POST", "/scheduler/advance", json={"seconds": seconds})
    assert answer.status_code == 200, answer.text
    (firing,) = [f for f in answer.json()["fired"] if f["schedule"] == CHECK]
    return run_of(rt, firing["run_id"], "completed")


def triggered(rt: Runtime) -> dict[str, Any]:
    done = cli(rt, "trigger", CHECK)
    assert done.returncode == 0, done.stderr
    return run_of(rt, done.stdout.split("run ", 1)[1].split()[0], "completed")


def reminders(rt: Runtime, invoice_number: str, count: int) -> list[Any]:
    return rt.wait_emails(lambda m: m["To"] == PAYABLES and invoice_number in str(m["Subject"]), count)


@pytest.fixture(scope="module")
def invoices(runtime: Runtime) -> dict[str, str]:
    return {"first": recorded(runtime, sample("clean")), "second": recorded(runtime, sample("clean", **SECOND)),
            "not_due": recorded(runtime, sample("clean", **NOT_DUE))}


def test_given_recorded_invoices_then_each_has_its_record_with_its_status(runtime: Runtime,
                                                                          invoices: dict[str, str]) -> None:
    first = record(runtime, invoices["first"])

    assert {k: first[k] for k in ("status", "vendor_id", "invoice_number", "total", "currency", "due_date")} == {
        "status": "recorded", "vendor_id": "V-1001", "invoice_number": "ACME-2025-1001", "total": "476.00",
        "currency": "EUR", "due_date": "2025-04-02"}
    assert record(runtime, invoices["not_due"])["due_date"] == "2099-04-02"


def test_given_a_day_skipped_then_the_daily_check_starts_a_follow_up_per_past_due_invoice_that_tells_payables(
    runtime: Runtime, invoices: dict[str, str],
) -> None:
    check = fired(runtime, 86400)

    received = check["timeline"][0]["details"]
    assert (received["event_source"], received["event_type"]) == ("schedule", CHECK)
    found = details(check, "find_past_due", "completed")
    listed = {r["invoice_id"] for r in found["runs"]}
    assert listed == {invoices["first"], invoices["second"]}  # not the one due in 2099
    assert (found["past_due"], found["not_listed"]) == (2, 0)
    follow_up = run_of(runtime, follow_up_of(check, invoices["first"]), "escalated")
    first = follow_up["timeline"][0]["details"]
    assert (first["event_source"], first["event_type"]) == ("workflow", "invoice_intake.past_due")
    assert details(follow_up, "check_past_due")["still_due"] is True
    told = details(follow_up, "remind_payables", "escalated")
    assert (told["reason"], told["notified"], told["status"]) == ("invoice_past_due", True, "recorded")
    (email,) = reminders(runtime, "ACME-2025-1001", 1)
    body = email.get_body(preferencelist=("plain",)).get_content()
    assert f"Ledger entry: {invoices['first']}" in body and f"Run: {follow_up['run_id']}" in body


def test_given_the_check_fired_twice_on_a_day_then_each_invoice_has_one_follow_up_and_one_email(
    runtime: Runtime, invoices: dict[str, str],
) -> None:
    # `interlock trigger` fires at the scheduler's clock: twice in a row is the same day (unless midnight passed
    # in between, when the pair is taken again).
    earlier = triggered(runtime)
    later = triggered(runtime)
    while details(later, "find_past_due")["as_of"] != details(earlier, "find_past_due")["as_of"]:
        earlier, later = later, triggered(runtime)

    run_id = follow_up_of(earlier, invoices["second"])
    assert follow_up_of(later, invoices["second"]) == run_id
    follow_up = run_of(runtime, run_id, "escalated")
    deadline = time.monotonic() + 15
    while not [e for e in follow_up["timeline"] if e["step"] == "router" and e["state"] == "duplicate"]:
        assert time.monotonic() < deadline, [(e["state"], e["step"]) for e in follow_up["timeline"]]
        time.sleep(0.2)
        follow_up = runtime.wait_status(run_id, "escalated")
    assert [e["step"] for e in follow_up["timeline"]].count("remind_payables") == 1
    day = details(earlier, "find_past_due")["as_of"]
    assert len([m for m in reminders(runtime, "ACME-2025-1102", 1)
                if follow_up["run_id"] in m.get_body(preferencelist=("plain",)).get_content()]) == 1
    assert details(follow_up, "check_past_due")["as_of"] == day


def test_given_the_next_day_then_a_new_follow_up_and_a_paid_invoice_is_no_longer_listed(
    runtime: Runtime, invoices: dict[str, str],
) -> None:
    today = triggered(runtime)
    before = follow_up_of(today, invoices["first"])
    paid = cli(runtime, "change", "invoices", "--key", f"invoice_id={invoices['second']}", "--set", "status=paid")
    assert paid.returncode == 0, paid.stderr
    assert "matched no status change: no run started" in paid.stdout  # recorded -> paid is not the pipe's change

    check = fired(runtime, 86400)
    if details(check, "find_past_due")["as_of"] == details(today, "find_past_due")["as_of"]:
        check = fired(runtime, 86400)  # the clock was before the day's 07:00: that firing was still today's

    found = details(check, "find_past_due", "completed")
    assert {r["invoice_id"] for r in found["runs"]} == {invoices["first"]}
    assert follow_up_of(check, invoices["first"]) != before
    run_of(runtime, follow_up_of(check, invoices["first"]), "escalated")


def test_given_an_invoice_approved_in_the_table_then_its_payment_is_scheduled_once_to_the_vendor_master_account(
    runtime: Runtime, invoices: dict[str, str],
) -> None:
    invoice_id = invoices["not_due"]
    done = cli(runtime, "change", "invoices", "--key", f"invoice_id={invoice_id}", "--set", "status=approved")

    assert done.returncode == 0, done.stderr
    assert "is the status change approved_for_payment: run " in done.stdout
    run = run_of(runtime, done.stdout.split(": run ", 1)[1].split()[0], "completed")
    received = run["timeline"][0]["details"]
    assert (received["event_source"], received["event_type"]) == ("table", "invoices.status:recorded->approved")
    paid = details(run, "schedule_payment", "completed")
    assert (paid["amount"], paid["currency"], paid["pay_on"], paid["created"]) == ("595.00", "EUR", "2099-04-02",
                                                                                  True)
    payments = [p for p in local(runtime, "GET", "/erp/payments").json()["results"] if p["entry_id"] == invoice_id]
    assert [(p["payment_id"], p["to_iban"], p["amount"]) for p in payments] == [
        (paid["payment_id"], VENDOR_IBAN, "595.00")]
    after = record(runtime, invoice_id)
    assert (after["status"], after["payment_id"], after["pay_on"]) == ("scheduled", paid["payment_id"], "2099-04-02")
    # scheduled -> approved again (a second approval) matches no pipe: recorded -> approved is the change
    again = cli(runtime, "change", "invoices", "--key", f"invoice_id={invoice_id}", "--set", "status=approved")
    assert again.returncode == 0, again.stderr
    assert "no run started" in again.stdout
    assert len([p for p in local(runtime, "GET", "/erp/payments").json()["results"]
                if p["entry_id"] == invoice_id]) == 1


def test_interlock_change_reports_a_record_that_does_not_exist_and_a_bad_pair(runtime: Runtime) -> None:
    missing = cli(runtime, "change", "invoices", "--key", "invoice_id=LE-NOPE", "--set", "status=approved")
    assert missing.returncode == 1 and "no item with that key" in missing.stderr

    bad = cli(runtime, "change", "invoices", "--key", "invoice_id", "--set", "status=approved")
    assert bad.returncode == 1 and "--key takes NAME=VALUE" in bad.stderr

    table = cli(runtime, "change", "ledger", "--key", "id=1", "--set", "status=approved")
    assert table.returncode == 1 and "no workflow declares the table" in table.stderr
