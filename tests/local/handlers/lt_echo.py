"""Test handler: answers with what it saw, so tests can check the event and the context."""

import os
import time
from typing import Any

CALLS: list[dict[str, Any]] = []


def handler(event: Any, context: Any) -> dict[str, Any]:
    CALLS.append(event)
    if isinstance(event, dict) and event.get("sleep"):
        time.sleep(float(event["sleep"]))
    return {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env": os.environ.get("LT_VALUE"),
    }
