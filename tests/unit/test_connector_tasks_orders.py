"""The helpdesk's tasks and the ERP's sales orders over httpx, against ``httpx.MockTransport`` (no network)."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest
from interlock.connectors.erp import ErpRejected, ErpUnavailable, HttpErp, SalesOrder
from interlock.connectors.helpdesk import HttpHelpdesk
from interlock.errors import HelpdeskRejected, HelpdeskUnavailable

from .test_connectors import transport

TASK = {"title": "Refund for order SO-10042", "body": "The customer asks for a refund of a damaged item.",
        "requester": "ada@example.com"}
SHIPPED = {"number": "SO-10042", "status": "shipped", "placed_on": "2026-11-25", "shipped_on": "2026-11-28",
           "carrier": "DHL", "tracking_number": "JD014600003828", "items": 2, "customer_phone": "447700900123",
           "unexpected": "ignored"}


def create_task(handler, key: str = "run-1:open_task", **changes: str) -> tuple[str, list[httpx.Request]]:
    mock, seen = transport(handler)
    helpdesk = HttpHelpdesk("https://helpdesk.example.com/", transport=mock)
    return helpdesk.create_task(key, **{**TASK, **changes}), seen


# -- helpdesk tasks -----------------------------------------------------------------------------------------------


def test_given_the_helpdesk_opens_the_task_then_its_id_comes_back_and_the_key_is_sent_as_idempotency_key():
    task_id, seen = create_task(lambda r: httpx.Response(201, json={"task_id": "task_7"}), team="billing")

    assert task_id == "task_7"
    assert len(seen) == 1
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", "https://helpdesk.example.com/tasks")
    assert request.headers["Idempotency-Key"] == "run-1:open_task"
    assert json.loads(request.content) == {**TASK, "team": "billing"}


def test_given_no_team_when_a_task_is_opened_then_it_goes_to_support_and_a_200_replay_answers_the_id():
    task_id, seen = create_task(lambda r: httpx.Response(200, json={"task_id": 42},
                                                         headers={"Idempotent-Replayed": "true"}))

    assert task_id == "42"
    assert json.loads(seen[0].content)["team"] == "support"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_given_the_helpdesk_is_failing_or_throttling_when_a_task_is_opened_then_unavailable_is_retryable(status):
    with pytest.raises(HelpdeskUnavailable) as exc_info:
        create_task(lambda r: httpx.Response(status, json={"echo": TASK["body"]}))

    assert exc_info.value.retryable is True
    assert exc_info.value.step == "create_task"
    assert exc_info.value.reason == "helpdesk_unavailable"


@pytest.mark.parametrize(
    "error", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused to https://helpdesk.example.com/tasks")],
    ids=["timeout", "connect-error"],
)
def test_given_the_helpdesk_cannot_be_reached_when_a_task_is_opened_then_unavailable_names_only_the_class(error):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(HelpdeskUnavailable) as exc_info:
        HttpHelpdesk("https://helpdesk.example.com", transport=httpx.MockTransport(fail)).create_task(
            "k", **TASK)

    assert type(error).__name__ in str(exc_info.value)
    assert "helpdesk.example.com" not in str(exc_info.value) and exc_info.value.step == "create_task"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_given_the_helpdesk_refuses_the_task_with_4xx_then_rejected_not_retryable_never_quoting_it(status):
    with pytest.raises(HelpdeskRejected) as exc_info:
        create_task(lambda r: httpx.Response(status, json={"error": "invalid_task", "echo": TASK["title"]}))

    assert exc_info.value.retryable is False
    assert exc_info.value.details == {"status": status}
    assert exc_info.value.step == "create_task"
    assert TASK["title"] not in str(exc_info.value) and TASK["requester"] not in str(exc_info.value)


@pytest.mark.parametrize("answer", [{"id": "x"}, {"task_id": None}, {"task_id": ""}, {"task_id": True},
                                    {"task_id": {"a": 1}}, [], "ok"])
def test_given_the_helpdesk_accepts_the_task_without_a_task_id_then_rejected_not_a_key_error(answer):
    with pytest.raises(HelpdeskRejected) as exc_info:
        create_task(lambda r: httpx.Response(201, json=answer))

    assert exc_info.value.reason == "helpdesk_rejected" and exc_info.value.step == "create_task"
    assert "task_id" in str(exc_info.value)


def test_given_the_helpdesk_answers_201_with_no_json_then_rejected():
    with pytest.raises(HelpdeskRejected):
        create_task(lambda r: httpx.Response(201, content=b"<html>created</html>"))


def test_the_reply_is_still_sent_as_before_next_to_the_tasks():
    mock, seen = transport(lambda r: httpx.Response(201, json={"reply_id": "rep_1"}))

    assert HttpHelpdesk("https://h.example.com", transport=mock).send_reply("run-9", "a@b.co", "s", "b") == "rep_1"
    assert str(seen[0].url) == "https://h.example.com/replies" and seen[0].headers["Idempotency-Key"] == "run-9"


# -- ERP sales orders ---------------------------------------------------------------------------------------------


def test_given_the_erp_has_the_order_when_looked_up_then_it_is_read_with_its_dates_and_the_token():
    mock, seen = transport(lambda r: httpx.Response(200, json=SHIPPED))
    erp = HttpErp("https://erp.example.com/api/", transport=mock, token=lambda: "erp-token")

    order = erp.get_sales_order("SO-10042")

    assert order == SalesOrder(number="SO-10042", status="shipped", placed_on=date(2026, 11, 25),
                               shipped_on=date(2026, 11, 28), carrier="DHL", tracking_number="JD014600003828",
                               items=2, customer_phone="447700900123")
    assert len(seen) == 1
    assert (seen[0].method, str(seen[0].url)) == ("GET", "https://erp.example.com/api/sales-orders/SO-10042")
    assert seen[0].headers["Authorization"] == "Bearer erp-token"


def test_given_an_order_not_shipped_yet_then_its_shipping_fields_are_none():
    mock, _ = transport(lambda r: httpx.Response(200, json={
        "number": "SO-10043", "status": "processing", "placed_on": "2026-11-30", "shipped_on": None,
        "carrier": None, "tracking_number": None, "items": 1, "customer_phone": "447700900123"}))

    order = HttpErp("https://erp.example.com", transport=mock).get_sales_order("SO-10043")

    assert order is not None and order.status == "processing"
    assert (order.shipped_on, order.carrier, order.tracking_number) == (None, None, None)


def test_given_the_erp_has_no_such_order_then_none_is_returned():
    mock, _ = transport(lambda r: httpx.Response(404, json={"error": "not_found"}))

    assert HttpErp("https://erp.example.com", transport=mock).get_sales_order("SO-99999") is None


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_given_the_erp_is_failing_when_an_order_is_looked_up_then_unavailable_is_retryable(status):
    mock, _ = transport(lambda r: httpx.Response(status))

    with pytest.raises(ErpUnavailable) as exc_info:
        HttpErp("https://erp.example.com", transport=mock).get_sales_order("SO-10042")

    assert exc_info.value.retryable is True
    assert exc_info.value.details == {"status": status}
    assert exc_info.value.step == "look_up_order"


@pytest.mark.parametrize("status", [400, 401, 403, 409])
def test_given_the_erp_refuses_an_order_lookup_then_rejected_not_retryable(status):
    mock, _ = transport(lambda r: httpx.Response(status, json={"error": "nope"}))

    with pytest.raises(ErpRejected) as exc_info:
        HttpErp("https://erp.example.com", transport=mock).get_sales_order("SO-10042", step="answer_customer")

    assert exc_info.value.retryable is False
    assert exc_info.value.details == {"status": status}
    assert exc_info.value.step == "answer_customer"


@pytest.mark.parametrize("bad", ["../vendors/V-1001", "SO 10042", "SO-1/../2", "", "x" * 65, "SO-1?x=1", "SO-1#",
                                 "%2e%2e", " SO-10042"])
def test_an_order_number_that_could_change_the_url_is_refused_before_any_request(bad):
    mock, seen = transport(lambda r: httpx.Response(500))

    with pytest.raises(ErpRejected) as exc_info:
        HttpErp("https://erp.example.com", transport=mock).get_sales_order(bad)

    assert seen == []
    assert exc_info.value.retryable is False and exc_info.value.step == "look_up_order"
    assert exc_info.value.message == "not an ERP identifier" and (not bad or bad not in str(exc_info.value))


@pytest.mark.parametrize(
    "changes",
    [{"status": "lost"}, {"placed_on": "25/11/2026"}, {"items": -1}, {"customer_phone": "+447700900123"},
     {"customer_phone": "07700 900123"}, {"number": ""}],
    ids=["status", "placed_on", "items", "phone-with-plus", "phone-national", "number"],
)
def test_an_unreadable_order_is_unavailable_naming_the_field_never_its_value(changes):
    field, value = next(iter(changes.items()))
    mock, _ = transport(lambda r: httpx.Response(200, json={**SHIPPED, **changes}))

    with pytest.raises(ErpUnavailable) as exc_info:
        HttpErp("https://erp.example.com", transport=mock).get_sales_order("SO-10042")

    message = str(exc_info.value)
    assert "unreadable sales order" in message and field in message
    assert (not value or str(value) not in message) and "447700900123" not in message


def test_an_order_answer_that_is_not_json_is_unavailable():
    mock, _ = transport(lambda r: httpx.Response(200, content=b"<html>login</html>"))

    with pytest.raises(ErpUnavailable, match="not JSON"):
        HttpErp("https://erp.example.com", transport=mock).get_sales_order("SO-10042")
