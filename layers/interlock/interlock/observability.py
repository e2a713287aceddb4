"""Powertools Logger, Metrics and Tracer, one of each per process.

The service name is the function's (``POWERTOOLS_SERVICE_NAME``); the metrics namespace comes from
``POWERTOOLS_METRICS_NAMESPACE``. The correlation id of every log line is the run id.

Logs: the keys an invocation adds (the Lambda context's, ``cold_start``, the correlation id) belong to that
invocation, not to the process (:class:`InvocationKeysFormatter`): on AWS a process serves one invocation at a
time and nothing changes, while the local runtime, which runs every function in threads of one process, gets
each line stamped with the function and run that wrote it. Loading this module holds the network libraries'
loggers at WARNING and escapes what JSON leaves raw (:mod:`interlock.log_safety`, docs/logging.md).

Tracing: Lambda's active tracing (set by the CDK stack) records every invocation in X-Ray at no cold-start
cost. The Powertools Tracer adds subsegments and patches boto3/httpx, but importing the X-Ray SDK costs
about 0.4 s of cold start on its own (more than ``import boto3`` plus a client, see
``benchmarks/cold_start.py``), so it is opt-in: set ``POWERTOOLS_TRACE_DISABLED=false`` to turn it on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit

from interlock.log_safety import escape_json_controls, hold_wire_loggers


class InvocationKeysFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, whose appended keys live in a context variable (Powertools'
    ``thread_safe_*`` keys) instead of one dict shared by every thread, and whose output escapes the
    characters JSON leaves raw (DEL, C1 controls, bidirectional overrides).

    The keys given to the constructor (the service) are the process's; everything appended later --
    ``inject_lambda_context``'s function name, request id and ``cold_start``, ``append_keys(correlation_id=)``
    -- is the current thread's (each local invocation runs in a thread of its own, with a fresh context).
    ``clear_state`` clears both, as Powertools' own does.
    """

    def append_keys(self, **additional_keys: Any) -> None:
        self.thread_safe_append_keys(**additional_keys)

    def get_current_keys(self) -> dict[str, Any]:
        return {**self.log_format, **self.thread_safe_get_current_keys()}

    def remove_keys(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        super().remove_keys(keys)
        current = dict(self.thread_safe_get_current_keys())  # never the shared default dict, mutated
        for key in keys:
            current.pop(key, None)
        self.thread_safe_clear_keys()
        self.thread_safe_append_keys(**current)

    def clear_state(self) -> None:
        super().clear_state()
        self.thread_safe_clear_keys()

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        return escape_json_controls(super().serialize(log))


class InterlockLogger(Logger):
    """Powertools' Logger, whose ``inject_lambda_context`` never logs the event (``POWERTOOLS_LOGGER_LOG_EVENT``
    is ignored): an event holds webhook bodies, approval paths with their tokens and customers' data."""

    def inject_lambda_context(self, lambda_handler: Any = None, log_event: bool | None = None,
                              correlation_id_path: str | None = None, clear_state: bool | None = False,
                              flush_buffer_on_uncaught_error: bool = False) -> Any:
        return super().inject_lambda_context(lambda_handler, log_event=False, correlation_id_path=correlation_id_path,
                                             clear_state=clear_state,
                                             flush_buffer_on_uncaught_error=flush_buffer_on_uncaught_error)


_SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "interlock")
logger = InterlockLogger(service=_SERVICE, logger_formatter=InvocationKeysFormatter(service=_SERVICE))
hold_wire_loggers()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Interlock"), service=_SERVICE)

__all__ = ["InterlockLogger", "InvocationKeysFormatter", "MetricUnit", "count", "logger", "metrics",
           "sdk_tracing_enabled", "tracer"]


def sdk_tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() in ("false", "0", "no")


class _NoTracer:
    """The Tracer's decorator surface, doing nothing, for when the X-Ray SDK is not loaded."""

    def capture_lambda_handler(self, lambda_handler: Callable[..., Any] | None = None, **_: Any) -> Any:
        return lambda_handler if lambda_handler is not None else (lambda fn: fn)

    def capture_method(self, method: Callable[..., Any] | None = None, **_: Any) -> Any:
        return method if method is not None else (lambda fn: fn)

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        return None


if sdk_tracing_enabled():
    from aws_lambda_powertools import Tracer

    tracer: Any = Tracer(service=_SERVICE)
else:
    tracer = _NoTracer()


def count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
