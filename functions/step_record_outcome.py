"""Step Functions task (Catch targets): record a failed, rejected, escalated or partial outcome."""

from typing import Any

from interlock.observability import logger, metrics, tracer
from interlock.wiring import timeline_store
from interlock.workflows import triage


@logger.inject_lambda_context(correlation_id_path="run_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return triage.record_outcome(triage.OutcomeInput.model_validate(event), timeline_store())
