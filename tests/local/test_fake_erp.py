"""The ERP connector (``interlock.connectors.erp``) speaking to the local fake ERP: through an httpx MockTransport
handing each request to the fake as the gateway does, and over real HTTP through the local gateway."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from interlock.connectors.erp import (
    ErpRejected,
    ErpUnavailable,
    HttpErp,
    LedgerConflict,
    NewLedgerEntry,
    NewPayment,
    ledger_key,
)
from interlock.local.fakes import SEED_SALES_ORDERS, FakeErp
from interlock.local.gateway import Gateway
from interlock.topology import Topology

from .test_fake_enrichment_slack import transport
from .test_gateway import FakeFunctions


def erp(fake: FakeErp, token: str | None = None) -> HttpErp:
    return HttpErp("http://127.0.0.1:8000/_local/erp", transport=transport(fake.handle, "erp"), token=lambda: token)


def entry(**changes: Any) -> NewLedgerEntry:
    fields: dict[str, Any] = {"vendor_id": "V-1001", "invoice_number": "ACME-2025-1001", "currency": "EUR",
                              "total": "476.00", "subtotal": "400.00", "tax": "76.00", "po_number": "PO-4500",
                              "issue_date": "2025-03-03", "due_date": "2025-04-02", "run_id": "run-1"}
    return NewLedgerEntry(**{**fields, **changes})


# -- the vendor master and purchase orders ------------------------------------------------------------------------


def test_a_vendor_is_found_by_its_id_and_by_its_tax_id_with_its_bank_details() -> None:
    connector = erp(FakeErp())

    by_id = connector.get_vendor("V-1001")
    by_tax_id = connector.find_vendor_by_tax_id(" de123456789 ")

    assert by_id is not None and by_id == by_tax_id
    assert (by_id.name, by_id.currency, by_id.bank.iban, by_id.bank.bic) == (
        "Acme Office Supplies GmbH", "EUR", "DE89370400440532013000", "COBADEFFXXX")
    assert connector.get_vendor("V-9999") is None
    assert connector.find_vendor_by_tax_id("FR00000000000") is None


def test_a_purchase_order_answers_its_remaining_amount_exactly() -> None:
    connector = erp(FakeErp())

    po = connector.get_purchase_order("PO-4501")

    assert po is not None and (po.vendor_id, po.status, po.currency) == ("V-1002", "open", "GBP")
    assert po.remaining == Decimal("800.00")
    assert connector.get_purchase_order("PO-0000") is None


def test_an_identifier_that_could_change_the_url_is_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []
    fake = FakeErp()

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    connector = HttpErp("http://127.0.0.1:8000/_local/erp", transport=httpx.MockTransport(record))
    for bad in ("../ledger-entries", "PO 4500", "a/b", "", "x" * 65):
        with pytest.raises(ErpRejected):
            connector.get_purchase_order(bad)
    assert seen == [] and fake.ledger() == FakeErp().ledger()


# -- sales orders ---------------------------------------------------------------------------------------------------


def test_a_shipped_sales_order_is_served_with_its_carrier_and_tracking_number() -> None:
    order = erp(FakeErp()).get_sales_order("SO-10042")

    assert order is not None
    assert (order.number, order.status, order.placed_on, order.shipped_on, order.items) == (
        "SO-10042", "shipped", date(2026, 11, 25), date(2026, 11, 28), 2)
    assert (order.carrier, order.tracking_number, order.customer_phone) == ("DHL", "JD014600003828", "447700900123")


def test_sales_orders_are_matched_whatever_the_case_and_each_names_its_customer() -> None:
    connector = erp(FakeErp())

    processing = connector.get_sales_order("so-10043")
    other_customers = connector.get_sales_order("So-20001")

    assert processing is not None and (processing.number, processing.status, processing.items) == (
        "SO-10043", "processing", 1)
    assert (processing.shipped_on, processing.carrier, processing.tracking_number) == (None, None, None)
    assert processing.customer_phone == "447700900123"
    assert other_customers is not None and other_customers.status == "delivered"
    assert other_customers.customer_phone == "14155550100"


def test_an_unknown_sales_order_is_none_and_a_404_from_the_fake() -> None:
    fake = FakeErp()
    client = httpx.Client(transport=transport(fake.handle, "erp"))

    assert erp(fake).get_sales_order("SO-99999") is None
    assert erp(fake).get_sales_order("PO-4500") is None  # a purchase order is not a customer's order
    answer = client.get("http://127.0.0.1:8000/_local/erp/sales-orders/SO-99999")
    assert (answer.status_code, answer.json()) == (404, {"error": "not_found"})
    odd = client.get("http://127.0.0.1:8000/_local/erp/sales-orders/SO%2010042")
    assert odd.status_code == 400
    assert client.post("http://127.0.0.1:8000/_local/erp/sales-orders/SO-10042", json={}).status_code == 405


def test_the_fake_serves_the_sales_orders_it_is_given_and_every_seeded_one_reads() -> None:
    mine = {"number": "so-1", "status": "cancelled", "placed_on": "2026-12-01", "shipped_on": None,
            "carrier": None, "tracking_number": None, "items": 0, "customer_phone": "4915112345678"}
    connector = erp(FakeErp(sales_orders=(mine,)))

    order = connector.get_sales_order("SO-1")

    assert order is not None and (order.status, order.items) == ("cancelled", 0)
    assert connector.get_sales_order("SO-10042") is None
    seeded = erp(FakeErp())
    assert all(seeded.get_sales_order(o["number"]) is not None for o in SEED_SALES_ORDERS)


def test_a_sales_order_in_an_outage_is_unavailable_and_retried() -> None:
    fake = FakeErp()
    fake.outage.enabled = True

    with pytest.raises(ErpUnavailable) as down:
        erp(fake).get_sales_order("SO-10042")

    assert down.value.retryable and down.value.details["status"] == 503 and down.value.step == "look_up_order"


def test_a_sales_order_number_that_could_change_the_url_is_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    connector = HttpErp("http://127.0.0.1:8000/_local/erp", transport=httpx.MockTransport(record))
    for bad in ("../ledger-entries", "SO 10042", "a/b", "", "x" * 65):
        with pytest.raises(ErpRejected):
            connector.get_sales_order(bad)
    assert seen == []


# -- the ledger ---------------------------------------------------------------------------------------------------


def test_an_entry_is_recorded_once_per_key_and_a_repeat_answers_the_first_entry() -> None:
    fake = FakeErp()
    connector = erp(fake)
    key = ledger_key("V-1001", "ACME-2025-1001")

    first = connector.create_ledger_entry(entry(), key)
    again = connector.create_ledger_entry(entry(), key)

    assert first.created and not again.created
    assert first.entry.entry_id == again.entry.entry_id == "LE-000002"
    assert [e["invoice_number"] for e in fake.ledger()] == ["ACME-2025-0990", "ACME-2025-1001"]
    assert connector.get_purchase_order("PO-4500").remaining == Decimal("4.00")  # type: ignore[union-attr]
    found = connector.find_ledger_entry("V-1001", "acme-2025-1001 ")
    assert found is not None and found.entry_id == "LE-000002" and found.total == Decimal("476.00")


def test_the_key_is_the_vendor_and_the_invoice_number_however_the_number_is_written() -> None:
    assert ledger_key("V-1001", " acme-2025 1001") == ledger_key("V-1001", "ACME-20251001") == \
        "invoice:V-1001:ACME-20251001"
    assert ledger_key("V-1002", "ACME-20251001") != ledger_key("V-1001", "ACME-20251001")


def test_the_same_key_with_other_figures_or_the_same_invoice_under_another_key_is_a_conflict() -> None:
    fake = FakeErp()
    connector = erp(fake)
    key = ledger_key("V-1001", "ACME-2025-1001")
    connector.create_ledger_entry(entry(), key)

    with pytest.raises(LedgerConflict) as other_figures:
        connector.create_ledger_entry(entry(total="999.00"), key)
    with pytest.raises(LedgerConflict):
        connector.create_ledger_entry(entry(invoice_number="ACME-2025-0990"), "another-key")

    assert other_figures.value.reason == "duplicate_invoice"
    assert len(fake.ledger()) == 2  # the seeded entry and the first one: nothing recorded twice


# -- payments -------------------------------------------------------------------------------------------------------


def payment(**changes: Any) -> NewPayment:
    return NewPayment(**{"entry_id": "LE-000001", "vendor_id": "V-1001", "amount": "310.00", "currency": "EUR",
                         "pay_on": "2026-12-10", **changes})


def test_a_payment_goes_to_the_vendor_masters_account_once_per_key() -> None:
    fake = FakeErp()
    connector = erp(fake)

    first = connector.schedule_payment(payment(), "payment:LE-000001")
    again = connector.schedule_payment(payment(), "payment:LE-000001")

    assert first.created and not again.created and first.payment == again.payment
    assert (first.payment.payment_id, first.payment.amount, first.payment.pay_on) == (
        "PAY-000001", Decimal("310.00"), "2026-12-10")
    assert [(p["entry_id"], p["to_iban"]) for p in fake.scheduled_payments()] == [
        ("LE-000001", "DE89370400440532013000")]


def test_a_reused_key_another_payment_of_an_entry_or_wrong_figures_pay_nothing() -> None:
    fake = FakeErp()
    connector = erp(fake)
    connector.schedule_payment(payment(), "payment:LE-000001")

    with pytest.raises(LedgerConflict):
        connector.schedule_payment(payment(pay_on="2026-12-11"), "payment:LE-000001")  # the key, other figures
    with pytest.raises(LedgerConflict):
        connector.schedule_payment(payment(), "another-key")  # the entry has its payment
    for wrong in (payment(entry_id="LE-999999"), payment(vendor_id="V-1002"), payment(amount="300.00"),
                  payment(currency="USD"), payment(pay_on="10/12/2026")):
        with pytest.raises(ErpRejected) as refused:
            connector.schedule_payment(wrong, "key-of-a-wrong-payment")
        assert refused.value.details["status"] == 400
    assert len(fake.scheduled_payments()) == 1


def test_a_payment_in_an_outage_is_unavailable_and_one_without_a_key_is_refused_by_the_erp() -> None:
    fake = FakeErp()
    fake.outage.enabled = True
    with pytest.raises(ErpUnavailable) as down:
        erp(fake).schedule_payment(payment(), "payment:LE-000001")
    fake.outage.enabled = False
    unkeyed = httpx.Client(transport=transport(fake.handle, "erp")).post(
        "http://127.0.0.1:8000/_local/erp/payments", json=payment().model_dump())

    assert down.value.retryable and down.value.details["status"] == 503
    assert unkeyed.status_code == 400 and unkeyed.json()["error"] == "invalid_request"
    assert fake.scheduled_payments() == []


def test_an_outage_is_unavailable_and_retried_and_bad_input_is_rejected() -> None:
    fake = FakeErp()
    connector = erp(fake)

    fake.outage.enabled = True
    with pytest.raises(ErpUnavailable) as down:
        connector.get_vendor("V-1001")
    fake.outage.enabled = False
    with pytest.raises(ErpRejected) as refused:
        connector.create_ledger_entry(entry(vendor_id="V-9999"), "k")

    assert down.value.retryable and down.value.details["status"] == 503
    assert not refused.value.retryable and refused.value.details["status"] == 400


def test_a_token_is_sent_as_a_bearer_token_and_a_wrong_one_is_refused() -> None:
    fake = FakeErp(token="erp-secret")

    assert erp(fake, token="erp-secret").get_vendor("V-1003") is not None
    with pytest.raises(ErpRejected) as wrong:
        erp(fake, token="other").get_vendor("V-1003")
    assert "erp-secret" not in str(wrong.value) and "other" not in str(wrong.value)


def test_a_refused_connection_names_the_exception_never_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused to http://secret-host/vendors/V-1001")

    connector = HttpErp("http://secret-host", transport=httpx.MockTransport(refuse))
    with pytest.raises(ErpUnavailable) as failed:
        connector.get_vendor("V-1001")
    assert "secret-host" not in str(failed.value) and "ConnectError" in str(failed.value)


def test_an_unreadable_answer_names_the_fields_never_the_values() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"number": "PO-1", "vendor_id": "V-1", "status": "lost", "currency": "EUR",
                                         "amount": "secret-amount"})

    connector = HttpErp("http://erp", transport=httpx.MockTransport(answer))
    with pytest.raises(ErpUnavailable) as unreadable:
        connector.get_purchase_order("PO-1")
    assert "amount" in str(unreadable.value) and "status" in str(unreadable.value)
    assert "secret-amount" not in str(unreadable.value) and "lost" not in str(unreadable.value)


# -- over real HTTP ---------------------------------------------------------------------------------------------


@pytest.fixture
def gateway(topology: Topology) -> Iterator[Gateway]:
    served = Gateway(topology, port=0)
    served.start(FakeFunctions().invoke)
    yield served
    served.stop()


def test_the_connector_reads_and_records_through_the_gateway_and_the_ledger_is_listed(gateway: Gateway) -> None:
    connector = HttpErp(f"{gateway.url}/_local/erp")
    key = ledger_key("V-1003", "GLX-77001")

    vendor = connector.find_vendor_by_tax_id("NL123456789B01")
    po = connector.get_purchase_order("PO-4502")
    made = connector.create_ledger_entry(entry(vendor_id="V-1003", invoice_number="GLX-77001", total="48400.00",
                                               po_number="PO-4502"), key)
    again = connector.create_ledger_entry(entry(vendor_id="V-1003", invoice_number="GLX-77001", total="48400.00",
                                                po_number="PO-4502"), key)

    assert vendor is not None and vendor.vendor_id == "V-1003" and po is not None and po.status == "open"
    assert made.created and not again.created and made.entry == again.entry
    listed = httpx.get(f"{gateway.url}/_local/erp/ledger-entries").json()["results"]
    assert [e["invoice_number"] for e in listed] == ["ACME-2025-0990", "GLX-77001"]
    assert httpx.post(f"{gateway.url}/_local/erp/ledger-entries", json={}).status_code == 400  # no key: a 4xx


def test_a_sales_order_is_read_through_the_gateway(gateway: Gateway) -> None:
    connector = HttpErp(f"{gateway.url}/_local/erp")

    order = connector.get_sales_order("so-10042")

    assert order is not None and (order.number, order.tracking_number) == ("SO-10042", "JD014600003828")
    assert connector.get_sales_order("SO-00000") is None
