"""API Gateway POST /webhooks/{source} (and GET, for providers' handshakes): the ingest function."""

import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from interlock.http import NO_STORE, json_response, lower_headers
from interlock.ingest.service import RawRequest
from interlock.observability import logger, metrics, tracer
from interlock.wiring import ingest_service

app = APIGatewayRestResolver()


@app.post("/webhooks/<source>")
@app.get("/webhooks/<source>")
def receive(source: str) -> Response:
    event = app.current_event
    # The invocation's end (the same context locally): the service finishes, or undoes and answers 503, before it.
    remaining = getattr(app.lambda_context, "get_remaining_time_in_millis", None)
    outcome = ingest_service().accept(
        RawRequest(source=source, headers=lower_headers(event.headers), body=event.body,
                   is_base64=bool(event.is_base64_encoded), method=event.http_method,
                   query=dict(event.query_string_parameters or {}), path=event.path),
        deadline=time.monotonic() + remaining() / 1000 if callable(remaining) else None,
    )
    if isinstance(outcome.body, str):
        return Response(status_code=outcome.status, content_type=outcome.content_type, body=outcome.body,
                        headers=NO_STORE)
    return json_response(outcome.status, outcome.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
