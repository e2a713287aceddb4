"""Domain errors and how a Catch's {"Error", "Cause"} becomes a reason on the timeline."""

from __future__ import annotations

import json

import pytest
from interlock.errors import (
    CrmUnavailable,
    HelpdeskRejected,
    HelpdeskUnavailable,
    MissingData,
    NotConfigured,
    StepError,
    TransientError,
    parse_cause,
)


def _lambda_cause(exc: Exception) -> dict[str, str]:
    """What Step Functions hands a Catch when a Python Lambda raised ``exc``."""
    return {
        "Error": type(exc).__name__,
        "Cause": json.dumps({
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "requestId": "9d2b0e2e-0000-4000-8000-000000000000",
            "stackTrace": ['  File "/var/task/step.py", line 1, in handler\n'],
        }),
    }


def test_given_a_step_error_when_raised_then_its_message_is_json_with_reason_step_and_details():
    exc = MissingData("the ticket is missing subject", step="validate", fields=["subject"])

    assert json.loads(str(exc)) == {
        "reason": "missing_data", "step": "validate", "message": "the ticket is missing subject",
        "fields": ["subject"],
    }
    assert exc.retryable is False


def test_given_an_explicit_reason_when_raised_then_it_overrides_the_class_reason():
    exc = NotConfigured("no helpdesk", step="send_reply", reason="helpdesk_not_configured")

    assert exc.reason == "helpdesk_not_configured"
    assert NotConfigured.reason == "not_configured"
    assert json.loads(str(exc))["reason"] == "helpdesk_not_configured"


@pytest.mark.parametrize(
    ("cls", "retryable", "reason"),
    [
        (TransientError, True, "transient_error"),
        (CrmUnavailable, True, "crm_unavailable"),
        (HelpdeskUnavailable, True, "helpdesk_unavailable"),
        (HelpdeskRejected, False, "helpdesk_rejected"),
        (MissingData, False, "missing_data"),
        (NotConfigured, False, "not_configured"),
    ],
)
def test_given_each_domain_error_then_its_retryability_and_reason_are_the_workflow_contract(cls, retryable, reason):
    exc = cls("x")

    assert isinstance(exc, StepError)
    assert exc.retryable is retryable
    assert exc.reason == reason


def test_given_the_asl_then_every_retried_error_name_is_a_retryable_domain_error_class():
    from interlock.topology import TOPOLOGY

    asl = json.loads(TOPOLOGY.state_machine("support_triage").definition_path.read_text())
    names = {
        name
        for state in asl["States"].values()
        for retry in state.get("Retry", [])
        for name in retry["ErrorEquals"]
        if not name.startswith(("Lambda.", "States.", "Sandbox.", "StepFunctions."))  # the services' own names
    }
    classes = {c.__name__: c for c in (TransientError, CrmUnavailable, HelpdeskUnavailable)}
    assert names == set(classes)
    assert all(c.retryable for c in classes.values())


def test_given_our_json_error_in_a_lambda_cause_when_parsed_then_the_reason_and_details_come_back():
    cause = _lambda_cause(CrmUnavailable("CRM answered 503", step="fetch_account", status=503))

    reason, details = parse_cause(cause)

    assert reason == "crm_unavailable"
    assert details == {"error": "CrmUnavailable", "step": "fetch_account", "message": "CRM answered 503",
                       "status": 503}


def test_given_our_json_error_directly_as_the_cause_when_parsed_then_the_reason_comes_back():
    exc = MissingData("the ticket is missing body", step="validate", fields=["body"])

    reason, details = parse_cause({"Error": "MissingData", "Cause": json.dumps({"errorMessage": str(exc)})})

    assert reason == "missing_data"
    assert details["fields"] == ["body"]
    assert details["error"] == "MissingData"


def test_given_a_plain_python_exception_from_lambda_when_parsed_then_the_reason_is_its_snake_cased_name():
    reason, details = parse_cause(_lambda_cause(ZeroDivisionError("division by zero")))

    assert reason == "zero_division_error"
    assert details == {"error": "ZeroDivisionError", "message": "division by zero"}


def test_given_a_key_error_from_lambda_when_parsed_then_the_message_is_kept():
    reason, details = parse_cause(_lambda_cause(KeyError("reply_id")))

    assert reason == "key_error"
    assert details["message"] == "'reply_id'"


def test_given_states_timeout_with_an_empty_cause_when_parsed_then_the_reason_is_timeout():
    assert parse_cause({"Error": "States.Timeout", "Cause": ""}) == ("timeout", {"error": "States.Timeout"})


def test_given_states_timeout_without_a_cause_when_parsed_then_the_reason_is_timeout():
    assert parse_cause({"Error": "States.Timeout"}) == ("timeout", {"error": "States.Timeout"})


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("States.TaskFailed", "task_failed"),
        ("States.HeartbeatTimeout", "heartbeat_timeout"),
        ("States.Runtime", "runtime"),
        ("Lambda.Unknown", "unknown"),
        ("Lambda.TooManyRequestsException", "too_many_requests_exception"),
        ("Lambda.ServiceException", "service_exception"),
    ],
)
def test_given_a_service_error_name_when_parsed_then_the_reason_is_snake_case(error, reason):
    got, details = parse_cause({"Error": error, "Cause": "Some text from the service."})

    assert got == reason
    assert details == {"error": error, "message": "Some text from the service."}


@pytest.mark.parametrize(
    "error",
    [None, {}, {"Error": "", "Cause": ""}],
    ids=["none", "empty", "blank"],
)
def test_given_no_usable_error_when_parsed_then_the_reason_is_unknown_error(error):
    reason, _ = parse_cause(error)

    assert reason == "unknown_error"


@pytest.mark.parametrize(
    "cause",
    [
        "not json at all",
        "{broken",
        "[1, 2, 3]",
        "42",
        json.dumps({"errorMessage": "{\"no_reason\": true}"}),
        json.dumps({"errorMessage": None}),
        json.dumps({"errorMessage": ["a", "list"]}),
        json.dumps({"errorMessage": "[\"reason\"]"}),
    ],
)
def test_given_a_garbage_cause_when_parsed_then_it_falls_back_to_the_error_name_without_raising(cause):
    reason, details = parse_cause({"Error": "SomethingOdd", "Cause": cause})

    assert reason == "something_odd"
    assert details["error"] == "SomethingOdd"


def test_given_a_very_long_non_json_cause_when_parsed_then_the_message_is_truncated():
    _, details = parse_cause({"Error": "Boom", "Cause": "x" * 5000})

    assert details["message"] == "x" * 500


def test_given_a_cause_that_is_not_a_string_when_parsed_then_it_does_not_raise():
    reason, details = parse_cause({"Error": "Weird", "Cause": {"nested": True}})  # type: ignore[dict-item]

    assert reason == "weird"
    assert "nested" in details["message"]
