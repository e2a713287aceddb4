"""API Gateway POST /runs/{run_id}/approvals/resend: a lost approval email sent again, as a new link to the same
request; the approver's older links stop working (interlock.approval_resend)."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from interlock.approval_resend import ResendOutcome, parse_request
from interlock.http import json_response
from interlock.observability import logger, metrics, tracer
from interlock.wiring import approval_resend

app = APIGatewayRestResolver()


@app.post("/runs/<run_id>/approvals/resend")
def resend(run_id: str) -> Response:
    request = parse_request(app.current_event.body)
    if isinstance(request, ResendOutcome):
        return json_response(request.status, request.body)
    # Who asked: the IAM principal API Gateway verified (none locally, where nothing is signed).
    principal = app.current_event.request_context.identity.user_arn
    outcome = approval_resend().resend(run_id, request, requested_by=principal)
    return json_response(outcome.status, outcome.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
