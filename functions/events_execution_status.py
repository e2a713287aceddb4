"""EventBridge rule target: a workflow execution stopped FAILED, TIMED_OUT or ABORTED; end its run with a reason."""

from typing import Any

from interlock import watchdog
from interlock.observability import logger, metrics, tracer
from interlock.wiring import timeline_store


@logger.inject_lambda_context(correlation_id_path="detail.name", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return watchdog.record_execution_status(watchdog.ExecutionStatusChange.model_validate(event), timeline_store())
