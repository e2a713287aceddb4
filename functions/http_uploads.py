"""API Gateway POST /uploads: a presigned PUT URL and a reference for a document too large for a webhook body.

Thin: the request goes to :class:`interlock.uploads.UploadsApi`, which checks the Standard Webhooks signature
(the ``form`` source's secret), the declared type and size, and answers. Written without Powertools'
resolver, as the ingest is (one route; the resolver's imports would be most of the cold start).
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from interlock.http import json_answer, lower_headers
from interlock.observability import logger, metrics, tracer
from interlock.uploads import uploads_api

PATH = "/uploads"


def receive(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("path") != PATH:
        return json_answer(404, {"statusCode": 404, "message": "Not found"})
    answer = uploads_api().handle(str(event.get("httpMethod", "")).upper(), lower_headers(event.get("headers")),
                                  event.get("body"), bool(event.get("isBase64Encoded")))
    return json_answer(answer.status, answer.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return receive(event, context)
