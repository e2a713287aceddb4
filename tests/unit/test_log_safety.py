"""What never reaches a log: the CRM lookup's email at any level, the network libraries' wire records, and
outsider text's control characters (plain-text console lines and Powertools' JSON lines)."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from interlock.connectors.crm import HttpCrm
from interlock.errors import CrmUnavailable
from interlock.log_safety import CONSOLE_FORMAT, WITHHELD, ConsoleFormatter, escape_controls, hold_wire_loggers
from leak_check import everything_at_debug

EMAIL = "ada.lovelace+vip@example.com"
ACCOUNT = {"account_id": "acc_1", "name": "Ada Lovelace", "email": EMAIL}
HOSTILE = ("Refund\x1b[2J\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07\r\nFAKE 00:00:00 INFO approved"
           "\u202egnp.exe\x9b31m\x7f")


# -- the CRM connector ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda r: httpx.Response(200, json=ACCOUNT),
        lambda r: httpx.Response(404, json={"error": "not_found", "email": EMAIL}),
        lambda r: httpx.Response(503, json={"error": "unavailable", "email": EMAIL}),
        lambda r: httpx.Response(200, json={"name": f"no id for {EMAIL}"}),
        lambda r: httpx.Response(200, content=f"<html>{EMAIL}</html>".encode()),
    ],
    ids=["found", "not-found", "unavailable", "unreadable", "not-json"],
)
def test_given_every_logger_at_debug_when_the_crm_is_asked_then_no_log_record_holds_the_email(caplog, answer):
    # Given the root logger, every logger and Powertools' at DEBUG
    with everything_at_debug(caplog) as logs:
        # When the CRM is asked for the account (whatever it answers), and the error is logged as handlers do
        crm = HttpCrm("https://crm.example.com/api", transport=httpx.MockTransport(answer))
        try:
            crm.find_account(EMAIL)
        except CrmUnavailable as exc:
            logging.getLogger("interlock").exception("step failed: %s", exc)

    # Then the address is in no record, raw, URL-encoded or base64, in caplog or in Powertools' JSON
    assert logs.leaks([EMAIL]) == []
    assert any(r.name == "httpx" for r in caplog.records)  # httpx's request line was made, and emptied


def test_given_the_crm_cannot_be_reached_when_the_error_is_logged_then_it_names_the_failure_not_the_request(caplog):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect for {request.url} {request.content.decode()}", request=request)

    with everything_at_debug(caplog) as logs, pytest.raises(CrmUnavailable) as raised:
        try:
            HttpCrm("https://crm.example.com", transport=httpx.MockTransport(refuse)).find_account(EMAIL)
        except CrmUnavailable:
            logging.getLogger("interlock").exception("step failed")
            raise

    assert raised.value.message == "CRM request failed: ConnectError"
    assert EMAIL not in str(raised.value)
    assert logs.leaks([EMAIL]) == []


def test_given_the_crm_answers_an_unreadable_account_then_the_error_names_the_fields_not_their_values():
    mock = httpx.MockTransport(lambda r: httpx.Response(200, json={"name": f"Ada <{EMAIL}>"}))

    with pytest.raises(CrmUnavailable) as raised:
        HttpCrm("https://crm.example.com", transport=mock).find_account(EMAIL)

    assert raised.value.message == "CRM answered with an unreadable account (account_id)"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no ValidationError quoting values


# -- the wire loggers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["botocore.endpoint", "botocore.parsers", "urllib3.connectionpool", "httpx",
                                  "httpcore.http11", "openai._base_client", "aws_lambda_powertools.event_handler",
                                  "s3transfer", "boto3.resources", "moto.core"])
def test_given_a_wire_logger_set_to_debug_by_hand_then_its_records_carry_nothing(caplog, name):
    with everything_at_debug(caplog) as logs:
        logging.getLogger(name).debug("Response body: %s", b'{"SecretString": "whsec_topsecret"}')
        logging.getLogger(name).info("HTTP Request: GET https://crm.example.com/accounts?email=%s", EMAIL)

    assert logs.leaks(["whsec_topsecret", EMAIL]) == []
    assert [r.msg for r in caplog.records if r.name == name] == [WITHHELD, WITHHELD]


def test_given_the_root_at_debug_when_the_wire_loggers_are_held_then_they_make_no_records_below_warning(caplog):
    logging.getLogger("botocore").setLevel(logging.NOTSET)
    caplog.set_level(logging.DEBUG)

    hold_wire_loggers()  # what loading interlock.observability does, at every cold start

    for name in ("botocore", "botocore.endpoint", "httpx", "httpcore", "urllib3", "boto3", "openai", "s3transfer"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    logging.getLogger("httpx").info("HTTP Request: GET https://crm.example.com/accounts?email=%s", EMAIL)
    assert not [r for r in caplog.records if r.name == "httpx"]
    logging.getLogger("botocore.credentials").warning("a warning still gets through")
    assert [r.getMessage() for r in caplog.records] == ["a warning still gets through"]


# -- escaping ---------------------------------------------------------------------------------------------


def test_control_and_invisible_characters_are_written_as_escapes():
    assert escape_controls("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert escape_controls("line\r\nforged\tx") == "line\\r\\nforged\\tx"
    assert escape_controls("\x00\x7f\x9b\u202e\u2066\u200b\ufeff") == "\\x00\\x7f\\x9b\\u202e\\u2066\\u200b\\ufeff"
    assert escape_controls("Zoë 🙂 ½") == "Zoë 🙂 ½"  # printable text is left as it is
    assert escape_controls("Traceback\n  line\tx\x1b", keep_line_breaks=True) == "Traceback\n  line\tx\\x1b"


def _console_line(record_args: tuple[object, ...], exc: BaseException | None = None) -> str:
    record = logging.LogRecord("localcloud.gateway", logging.WARNING, __file__, 1, "ticket %s: %s", record_args,
                               (type(exc), exc, exc.__traceback__) if exc else None)
    return ConsoleFormatter(CONSOLE_FORMAT, datefmt="%H:%M:%S").format(record)


def test_a_console_line_shows_outsider_control_characters_escaped_and_stays_one_line():
    line = _console_line(("run-1", HOSTILE))

    assert "\n" not in line and "\r" not in line
    assert not any(ch in line for ch in "\x1b\x07\x9b\x7f\u202e")
    assert "Refund\\x1b[2J" in line and "\\r\\nFAKE 00:00:00 INFO approved" in line and "\\u202egnp.exe" in line


def test_a_console_traceback_keeps_its_lines_but_escapes_the_exception_text():
    try:
        raise ValueError(HOSTILE)
    except ValueError as exc:
        line = _console_line(("run-1", "x"), exc)

    assert "Traceback (most recent call last):\n" in line
    assert "\x1b" not in line and "\x9b" not in line and "\u202e" not in line
    assert "ValueError: Refund\\x1b[2J" in line


def test_powertools_json_lines_escape_every_control_character_and_read_back_unchanged():
    from interlock.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    record = logging.LogRecord("interlock", logging.INFO, __file__, 1, "subject: %s", (HOSTILE,), None)
    record.subject = HOSTILE
    handler.emit(record)

    line = stream.getvalue()
    assert line.count("\n") == 1 and line.endswith("\n")  # one line, whatever the subject holds
    assert not any(ch in line for ch in "\x1b\x07\r\x9b\x7f\u202e")  # JSON escapes C0; the rest escaped too
    document = json.loads(line)
    assert document["message"] == f"subject: {HOSTILE}" and document["subject"] == HOSTILE


# -- events ---------------------------------------------------------------------------------------------------


def test_given_powertools_event_logging_switched_on_when_a_handler_runs_then_its_event_is_not_logged(
    caplog, monkeypatch, lambda_context,
):
    from interlock.observability import logger

    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    token = "tok_" + "q" * 40

    @logger.inject_lambda_context(clear_state=True)
    def handler(event, context):
        logger.info("handled")
        return {}

    @logger.inject_lambda_context
    def bare(event, context):
        return {}

    with everything_at_debug(caplog) as logs:
        handler({"path": f"/approvals/{token}", "body": EMAIL}, lambda_context)
        bare({"path": f"/approvals/{token}"}, lambda_context)

    assert logs.leaks([token, EMAIL]) == []
    assert "handled" in logs.json_lines.getvalue()


def test_given_a_step_input_that_fails_validation_then_the_error_names_the_field_not_the_value() -> None:
    from interlock.steps import StepInput
    from pydantic import BaseModel, ValidationError

    class Email(BaseModel):
        count: int

    class Step(StepInput):
        ticket: Email

    with pytest.raises(ValidationError) as refused:
        Step.model_validate({"run_id": "r", "ticket": {"count": "grace@example.com"}})
    assert "ticket.count" in str(refused.value)
    assert "grace@example.com" not in str(refused.value)
