"""The CRM and helpdesk adapters over httpx, against ``httpx.MockTransport`` (no network)."""

from __future__ import annotations

import json

import httpx
import pytest
from interlock.connectors.crm import Account, HttpCrm
from interlock.connectors.helpdesk import HttpHelpdesk
from interlock.errors import CrmUnavailable, HelpdeskRejected, HelpdeskUnavailable

ACCOUNT = {"account_id": "acc_1", "name": "Ada Lovelace", "plan": "pro", "tier": "gold", "open_tickets": 2,
           "lifetime_value": 1234.5, "unexpected": "ignored"}


def transport(handler):
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return httpx.MockTransport(record), seen


# -- CRM ------------------------------------------------------------------------------------------------


def test_given_the_crm_has_the_account_when_looked_up_then_it_is_returned():
    mock, seen = transport(lambda r: httpx.Response(200, json=ACCOUNT))
    crm = HttpCrm("https://crm.example.com/api/", transport=mock)

    account = crm.find_account("ada+test@example.com")

    assert account == Account(account_id="acc_1", name="Ada Lovelace", plan="pro", tier="gold", open_tickets=2,
                              lifetime_value=1234.5)
    assert len(seen) == 1
    assert seen[0].method == "POST"
    assert str(seen[0].url) == "https://crm.example.com/api/accounts/search"  # the address is not in the URL
    assert json.loads(seen[0].content) == {"email": "ada+test@example.com"}


def test_given_the_crm_has_no_such_account_when_looked_up_then_none_is_returned():
    mock, _ = transport(lambda r: httpx.Response(404, json={"error": "not_found"}))

    assert HttpCrm("https://crm.example.com", transport=mock).find_account("nobody@example.com") is None


@pytest.mark.parametrize("status", [500, 502, 503, 429, 401, 302])
def test_given_the_crm_answers_an_error_status_when_looked_up_then_crm_unavailable_is_raised_retryable(status):
    mock, _ = transport(lambda r: httpx.Response(status))

    with pytest.raises(CrmUnavailable) as exc_info:
        HttpCrm("https://crm.example.com", transport=mock).find_account("a@example.com")

    assert exc_info.value.retryable is True
    assert exc_info.value.reason == "crm_unavailable"
    assert exc_info.value.details == {"status": status}
    assert exc_info.value.step == "fetch_account"


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("timed out"), httpx.ConnectTimeout("timed out"), httpx.ConnectError("refused"),
     httpx.RemoteProtocolError("peer closed")],
    ids=["read-timeout", "connect-timeout", "connect-error", "protocol-error"],
)
def test_given_the_crm_cannot_be_reached_when_looked_up_then_crm_unavailable_is_raised(error):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(CrmUnavailable) as exc_info:
        HttpCrm("https://crm.example.com", transport=httpx.MockTransport(fail)).find_account("a@example.com")

    assert exc_info.value.retryable is True
    assert type(error).__name__ in exc_info.value.message


@pytest.mark.parametrize(
    "response",
    [httpx.Response(200, content=b"<html>oops</html>"), httpx.Response(200, json={"name": "no id"}),
     httpx.Response(200, json=[ACCOUNT])],
    ids=["not-json", "missing-fields", "a-list"],
)
def test_given_the_crm_answers_200_with_an_unreadable_account_when_looked_up_then_crm_unavailable(response):
    mock, _ = transport(lambda r: response)

    with pytest.raises(CrmUnavailable, match="unreadable"):
        HttpCrm("https://crm.example.com", transport=mock).find_account("a@example.com")


def test_given_a_timeout_setting_when_the_crm_is_called_then_the_request_carries_it_with_connect_capped_at_2s():
    mock, seen = transport(lambda r: httpx.Response(404))

    HttpCrm("https://crm.example.com", timeout_seconds=3.0, transport=mock).find_account("a@example.com")

    timeout = seen[0].extensions["timeout"]
    assert timeout["read"] == 3.0
    assert timeout["connect"] == 2.0


# -- helpdesk -----------------------------------------------------------------------------------------


def test_given_the_helpdesk_accepts_the_reply_when_sent_then_its_id_comes_back_and_the_run_is_the_idempotency_key():
    mock, seen = transport(lambda r: httpx.Response(201, json={"reply_id": "rep_42"}))
    helpdesk = HttpHelpdesk("https://helpdesk.example.com/", transport=mock)

    reply_id = helpdesk.send_reply("run-123", "ada@example.com", "Re: invoice", "Hi Ada")

    assert reply_id == "rep_42"
    assert len(seen) == 1
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://helpdesk.example.com/replies"
    assert request.headers["Idempotency-Key"] == "run-123"
    assert json.loads(request.content) == {"run_id": "run-123", "to": "ada@example.com", "subject": "Re: invoice",
                                           "body": "Hi Ada"}


def test_given_the_helpdesk_answers_200_when_sent_then_the_reply_id_is_returned():
    mock, _ = transport(lambda r: httpx.Response(200, json={"reply_id": 7}))

    assert HttpHelpdesk("https://h.example.com", transport=mock).send_reply("r", "a@b.co", "s", "b") == "7"


@pytest.mark.parametrize("answer", [{"id": "x"}, [], "ok"])
def test_given_the_helpdesk_accepts_without_a_reply_id_then_helpdesk_rejected_not_a_key_error(answer):
    mock, _ = transport(lambda r: httpx.Response(201, json=answer))

    with pytest.raises(HelpdeskRejected) as exc_info:
        HttpHelpdesk("https://h.example.com", transport=mock).send_reply("r", "a@b.co", "s", "b")

    assert exc_info.value.reason == "helpdesk_rejected"


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_given_the_helpdesk_refuses_with_4xx_when_sent_then_helpdesk_rejected_is_raised_not_retryable(status):
    mock, _ = transport(lambda r: httpx.Response(status, json={"error": "nope"}))

    with pytest.raises(HelpdeskRejected) as exc_info:
        HttpHelpdesk("https://h.example.com", transport=mock).send_reply("r", "a@b.co", "s", "b")

    assert exc_info.value.retryable is False
    assert exc_info.value.details == {"status": status}
    assert exc_info.value.reason == "helpdesk_rejected"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_given_the_helpdesk_is_failing_or_throttling_when_sent_then_helpdesk_unavailable_is_retryable(status):
    mock, _ = transport(lambda r: httpx.Response(status))

    with pytest.raises(HelpdeskUnavailable) as exc_info:
        HttpHelpdesk("https://h.example.com", transport=mock).send_reply("r", "a@b.co", "s", "b")

    assert exc_info.value.retryable is True


@pytest.mark.parametrize(
    "error", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")], ids=["timeout", "connect-error"]
)
def test_given_the_helpdesk_cannot_be_reached_when_sent_then_helpdesk_unavailable_is_raised(error):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(HelpdeskUnavailable):
        HttpHelpdesk("https://h.example.com", transport=httpx.MockTransport(fail)).send_reply("r", "a@b.co", "s", "b")
