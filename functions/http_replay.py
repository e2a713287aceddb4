"""API Gateway POST /runs/{run_id}/replay: start a failed or ignored run's kept event again, as a new run."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from interlock.http import json_response
from interlock.observability import logger, metrics, tracer
from interlock.wiring import replay_service

app = APIGatewayRestResolver()


@app.post("/runs/<run_id>/replay")
def replay_run(run_id: str) -> Response:
    outcome = replay_service().replay(run_id)
    return json_response(outcome.status, outcome.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
