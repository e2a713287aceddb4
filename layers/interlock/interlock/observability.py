"""Powertools Logger, Metrics and Tracer, one of each per process.

The service name is the function's (``POWERTOOLS_SERVICE_NAME``); the metrics namespace comes from
``POWERTOOLS_METRICS_NAMESPACE``. The correlation id of every log line is the run id.

Tracing: Lambda's active tracing (set by the CDK stack) records every invocation in X-Ray at no cold-start
cost. The Powertools Tracer adds subsegments and patches boto3/httpx, but importing the X-Ray SDK costs
about 0.4 s of cold start on its own (more than ``import boto3`` plus a client, see
``benchmarks/cold_start.py``), so it is opt-in: set ``POWERTOOLS_TRACE_DISABLED=false`` to turn it on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

_SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "interlock")
logger = Logger(service=_SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Interlock"), service=_SERVICE)

__all__ = ["MetricUnit", "count", "logger", "metrics", "sdk_tracing_enabled", "tracer"]


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
