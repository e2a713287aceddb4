"""The local Lambda runtime: context, JSON boundary, error shapes, import failures, timeouts."""

from __future__ import annotations

import uuid

from interlock.local.functions import LocalLambda


def test_invoke_passes_a_json_copy_and_a_lambda_context(functions: LocalLambda, monkeypatch) -> None:
    # Given an event the caller keeps mutating
    monkeypatch.setenv("LT_VALUE", "from-env")
    event = {"a": [1, 2], "b": "x"}

    # When the function is invoked by its ARN
    invocation = functions.invoke(functions.arn("echo"), event)
    event["a"].append(3)

    # Then it ran with a copy of the event and a context shaped like the Python runtime's
    assert invocation.ok, invocation.error
    result = invocation.payload
    assert result["event"] == {"a": [1, 2], "b": "x"}
    assert result["function_name"] == "interlock-echo"
    assert result["function_version"] == "$LATEST"
    assert result["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:interlock-echo"
    assert result["memory_limit_in_mb"] == "256"
    assert str(uuid.UUID(result["aws_request_id"])) == result["aws_request_id"] == invocation.request_id
    assert result["log_group_name"] == "/aws/lambda/interlock-echo"
    assert 0 < result["remaining_ms"] <= 1000
    assert result["env"] == "from-env"


def test_names_resolve_from_name_physical_name_and_qualified_arn(functions: LocalLambda) -> None:
    for identifier in ("echo", "interlock-echo", functions.arn("echo"), functions.arn("echo") + ":$LATEST"):
        assert functions.resolve(identifier).module == "lt_echo"


def test_a_raised_error_comes_back_in_the_runtime_error_shape(functions: LocalLambda) -> None:
    invocation = functions.invoke("fail", {})

    assert not invocation.ok
    payload = invocation.error.payload()
    assert payload["errorType"] == "PartnerDown"
    assert payload["errorMessage"] == '{"reason": "partner_down"}'
    assert payload["requestId"] == invocation.request_id
    assert any("lt_fail.py" in frame for frame in payload["stackTrace"])


def test_an_unserialisable_result_is_a_marshal_error(functions: LocalLambda) -> None:
    invocation = functions.invoke("fail", {"unserialisable": True})

    assert invocation.error.error_type == "Runtime.MarshalError"


def test_an_import_failure_fails_only_that_function(functions: LocalLambda) -> None:
    broken = functions.invoke("broken", {})

    assert broken.error.error_type == "Runtime.ImportModuleError"
    assert "Unable to import module 'lt_broken'" in broken.error.error_message
    assert functions.invoke("echo", {}).ok


def test_an_overrun_answers_sandbox_timedout(functions: LocalLambda) -> None:
    invocation = functions.invoke("echo", {"sleep": 1.3})  # the echo function's timeout is 1 s

    assert invocation.error.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in invocation.error.error_message


def test_a_closed_runtime_refuses_new_invocations(functions: LocalLambda) -> None:
    assert functions.close(timeout=1)

    assert functions.invoke("echo", {}).error.error_type == "Lambda.ServiceException"
