"""The local Lambda runtime: context, JSON boundary, error shapes, import failures, timeouts."""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from interlock.local.functions import LocalLambda
from interlock.topology import Function, Topology

from .conftest import HANDLERS

LOGGING_FUNCTIONS = (
    Function(name="log_first", module="lt_log_first", description="test: logs around another's invocation",
             timeout_seconds=10),
    Function(name="log_second", module="lt_log_second", description="test: logs while another runs",
             timeout_seconds=10),
)


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


# -- log lines name the invocation that wrote them ------------------------------------------------------------


@contextmanager
def powertools_lines() -> Iterator[list[dict[str, Any]]]:
    """The JSON lines Interlock's Powertools logger writes, parsed, while the block runs (at INFO)."""
    from interlock.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    service = logging.getLogger(logger.name)
    level = service.level
    service.addHandler(handler)
    service.setLevel(logging.INFO)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        service.removeHandler(handler)
        service.setLevel(level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def test_concurrent_invocations_of_two_functions_each_log_with_their_own_function_run_and_cold_start(
    topology: Topology,
) -> None:
    # Given two functions whose invocations overlap: the second starts (and appends its keys) while the first runs
    functions = LocalLambda(replace(topology, functions=(*topology.functions, *LOGGING_FUNCTIONS)),
                            functions_dir=HANDLERS)
    sys.path.insert(0, str(HANDLERS))
    import lt_sync

    lt_sync.reset()
    with powertools_lines() as lines, ThreadPoolExecutor(2) as pool:
        # When both are invoked at once
        first = pool.submit(functions.invoke, "log_first", {"run_id": "run-first"})
        second = pool.submit(functions.invoke, "log_second", {"run_id": "run-second"})
        first_done, second_done = first.result(timeout=30), second.result(timeout=30)
        # ... and the first once more, after both finished
        again = functions.invoke("log_first", {"run_id": "run-again", "wait": False})
    functions.close(timeout=2)

    # Then every line carries the function, request, run and cold start of the invocation that wrote it
    assert first_done.ok and second_done.ok and again.ok, (first_done.error, second_done.error, again.error)
    by_message = {(line["message"], line["correlation_id"]): line for line in lines}
    keys = ("function_name", "function_request_id", "correlation_id", "cold_start")
    expected = {
        ("first: before", "run-first"): ("interlock-log_first", first_done.request_id, "run-first", True),
        ("second", "run-second"): ("interlock-log_second", second_done.request_id, "run-second", True),
        ("first: after", "run-first"): ("interlock-log_first", first_done.request_id, "run-first", True),
        ("first: before", "run-again"): ("interlock-log_first", again.request_id, "run-again", False),
    }
    assert {key: tuple(by_message[key].get(k) for k in keys) for key in expected} == expected
    assert "step" not in by_message[("first: after", "run-first")]  # the second's own key stayed its own
    assert by_message[("second", "run-second")]["step"] == "second"
    assert all(line["service"] == "interlock" for line in lines)
