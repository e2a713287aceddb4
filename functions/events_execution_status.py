"""A workflow execution stopped FAILED, TIMED_OUT or ABORTED; end its run with a reason.

Fed by an EventBridge rule (Standard machines' status-change events) and by a CloudWatch Logs subscription filter
on the Express machines' log groups (which send no events)."""

from typing import Any

from interlock import watchdog
from interlock.observability import logger, metrics, tracer
from interlock.wiring import timeline_store


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any] | list[dict[str, Any]]:
    if "awslogs" in event:
        return [watchdog.record_execution_status(change, timeline_store()) for change in watchdog.from_logs(event)]
    return watchdog.record_execution_status(watchdog.ExecutionStatusChange.model_validate(event), timeline_store())
