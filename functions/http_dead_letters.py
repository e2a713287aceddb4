"""API Gateway GET /dlqs: the DLQs an operator can redrive and what each holds; POST /dlqs/{name}/redrive: plan each
message (a dry run, by default) or move it back to its queue (interlock.dead_letters)."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from interlock.dead_letters import redrive_answer
from interlock.http import json_response
from interlock.observability import logger, metrics, tracer
from interlock.wiring import redrive

app = APIGatewayRestResolver()


@app.get("/dlqs")
def list_dlqs() -> Response:
    return json_response(200, {"dlqs": redrive().queues()})


@app.post("/dlqs/<name>/redrive")
def redrive_dlq(name: str) -> Response:
    return json_response(*redrive_answer(redrive(), name, app.current_event.body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
