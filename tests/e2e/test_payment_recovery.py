"""Failed-payment recovery end to end through ``interlock run``, over real HTTP with Stripe's own signing: the dunning
email, the wait for Stripe's next event for the same invoice (before and after the wait registered), reminders and
escalation, and a second failure joining the open run."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

from tests.e2e.conftest import Runtime, _start, accepted

SAMPLES = resources.files("interlock") / "workflows" / "payment_recovery" / "samples"


def stripe_event(event_type: str, invoice_id: str, attempt: int = 1) -> bytes:
    """A Stripe invoice event for ``invoice_id``, from the bundled samples, with a fresh event id."""
    name = "stripe_invoice_paid.json" if event_type != "invoice.payment_failed" else \
        "stripe_invoice_payment_failed.json"
    event = json.loads((SAMPLES / name).read_text())
    event["id"] = f"evt_{uuid.uuid4().hex[:24]}"
    event["type"] = event_type
    event["data"]["object"]["id"] = invoice_id
    event["data"]["object"]["attempt_count"] = attempt
    event["data"]["object"]["hosted_invoice_url"] = hosted_url(invoice_id)
    return json.dumps(event).encode()


def hosted_url(invoice_id: str) -> str:
    return f"https://invoice.stripe.com/i/acct_1QkL9sJq2X8pYz7a/test_{invoice_id}"


def post(rt: Runtime, event_type: str, invoice_id: str, attempt: int = 1) -> str:
    (event,) = accepted(rt.send_as("stripe", stripe_event(event_type, invoice_id, attempt)))
    return str(event["run_id"])


def new_invoice() -> str:
    return f"in_{uuid.uuid4().hex[:24]}"


def last(run: dict[str, Any]) -> dict[str, Any]:
    return dict(run["timeline"][-1])


def text(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


def emails_about(rt: Runtime, address: str, invoice_id: str, count: int = 1) -> list[Any]:
    """The emails to ``address`` about ``invoice_id`` (its Stripe page's link is in each), once the outbox holds
    ``count`` of them (it copies what SES sent a moment later)."""
    return rt.wait_emails(lambda m: m["To"] == address and hosted_url(invoice_id) in text(m), count, timeout=10)


def test_given_a_failed_payment_then_a_dunning_email_and_a_wait_that_invoice_paid_completes(runtime: Runtime) -> None:
    rt = runtime
    invoice = new_invoice()
    run_id = post(rt, "invoice.payment_failed", invoice)

    waiting = rt.wait_status(run_id, "waiting")
    assert last(waiting)["details"]["correlation_key"] == f"stripe:invoice:{invoice}"
    sent = [e for e in waiting["timeline"] if e["step"] == "send_dunning"]
    assert sent and sent[0]["details"]["tone"] == "gentle"  # a priority customer's first failure
    (message,) = emails_about(rt, "ada@example.com", invoice)
    assert message["Subject"] == "Your payment for invoice A1B2C3D4-0007 did not go through"
    body = text(message)
    assert body.startswith("Hi Ada Lovelace,")
    assert "Amount due: USD 49.00\nDue date: 2025-12-08\n" in body

    paid_run = post(rt, "invoice.paid", invoice)
    done = rt.wait_status(run_id, "completed")
    assert last(done)["step"] == "settle" and last(done)["details"]["outcome"] == "paid"
    paid = rt.wait_status(paid_run, "completed")
    assert last(paid)["details"]["reason"] == "resumed_waiting_run"
    assert last(paid)["details"]["run"] == run_id


def test_given_invoice_paid_before_the_failure_then_it_is_kept_and_ends_the_wait_with_no_email(
        runtime: Runtime) -> None:
    """Stripe does not promise the order of its events: the payment that went through is routed first, kept under
    the invoice's key, and the recovery that starts next finds it before it emails anyone."""
    rt = runtime
    invoice = new_invoice()
    paid_run = post(rt, "invoice.paid", invoice)
    paid = rt.wait_status(paid_run, "ignored")
    assert last(paid)["details"]["reason"] == "no_waiting_run"

    run_id = post(rt, "invoice.payment_failed", invoice)
    done = rt.wait_status(run_id, "completed")
    assert last(done)["details"]["outcome"] == "paid"
    steps = [(e["state"], e["step"]) for e in done["timeline"]]
    assert ("waiting", "wait_for_event") not in steps  # the wait found its event at once
    assert not any(step == "send_dunning" for _, step in steps)
    assert emails_about(rt, "ada@example.com", invoice, count=0) == []


def test_given_a_second_failure_for_the_same_invoice_then_it_joins_the_open_run(runtime: Runtime) -> None:
    rt = runtime
    invoice = new_invoice()
    run_id = post(rt, "invoice.payment_failed", invoice)
    rt.wait_status(run_id, "waiting")

    second = post(rt, "invoice.payment_failed", invoice, attempt=2)
    joined = rt.wait_status(second, "ignored")
    assert last(joined)["details"] == {"reason": "joined_open_run", "joined_run_id": run_id,
                                       "event_type": "invoice.payment_failed"}
    owner = rt.wait_for(run_id, lambda r: any(e["state"] == "joined" for e in r["timeline"]), what="joined")
    assert owner["status"] == "waiting"  # still waiting: the join is on its timeline, nothing else changes

    post(rt, "invoice.voided", invoice)
    done = rt.wait_status(run_id, "completed")
    assert last(done)["details"]["outcome"] == "voided"


@pytest.fixture(scope="module")
def short_wait(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """Each wait for the payment lasts 1 s, with one reminder, and customer success has an address."""
    yield from _start(tmp_path_factory.mktemp("short-wait"), INTERLOCK_PAYMENT_WAIT_SECONDS="1",
                      INTERLOCK_PAYMENT_REMINDERS="1", INTERLOCK_CUSTOMER_SUCCESS_EMAIL="success@example.com")


def test_given_no_payment_then_a_reminder_then_customer_success(short_wait: Runtime) -> None:
    rt = short_wait
    invoice = new_invoice()
    run_id = post(rt, "invoice.payment_failed", invoice)

    run = rt.wait_status(run_id, "escalated", timeout=60)
    steps = [(e["state"], e["step"]) for e in run["timeline"]]
    assert ("processing", "send_reminder") in steps
    assert steps[-1] == ("escalated", "escalate")
    assert last(run)["details"]["reason"] == "payment_not_received"
    assert last(run)["details"]["reminders_sent"] == 1
    to_customer = emails_about(rt, "ada@example.com", invoice, count=2)
    assert [m["Subject"].startswith("Reminder:") for m in to_customer] == [False, True]
    (to_success,) = emails_about(rt, "success@example.com", invoice)
    note = text(to_success)
    assert invoice in note and run_id in note
    assert "ada@example.com" not in note  # the customer's address stays out of the internal note


def test_given_a_restart_while_waiting_then_the_payment_still_ends_the_wait(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    for rt in _start(tmp_path_factory.mktemp("recovery-restart")):
        invoice = new_invoice()
        run_id = post(rt, "invoice.payment_failed", invoice)
        rt.wait_status(run_id, "waiting")
        rt.restart()

        post(rt, "invoice.paid", invoice)
        done = rt.wait_status(run_id, "completed")
        assert last(done)["details"]["outcome"] == "paid"
        assert len(emails_about(rt, "ada@example.com", invoice)) == 1  # the dunning email, not sent again
