"""API Gateway POST /webhooks/{source} (and GET, for providers' handshakes): the ingest function.

It reads API Gateway's REST (v1) proxy event and writes its answer itself, without Powertools'
``APIGatewayRestResolver``: importing ``aws_lambda_powertools.event_handler`` loads every resolver Powertools has
(AppSync, Bedrock, VPC Lattice...), all its event data classes and asyncio, 124 modules this function never
uses, on every cold start (docs/cold-start.md). It does what the resolver did for this one route: the same
path pattern, a 404 ``{"statusCode":404,"message":"Not found"}`` for anything else, the same answer shape
(:func:`interlock.http.proxy_answer`), and an error escapes to Lambda.
"""

import json
import re
import time
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from interlock.http import json_answer, lower_headers, proxy_answer
from interlock.ingest.service import RawRequest
from interlock.observability import logger, metrics, tracer
from interlock.wiring import ingest_service

# "/webhooks/<source>" as the resolver compiles it: <source> is one segment of RFC 3986's characters (and \w).
ROUTE = re.compile(r"^/webhooks/(?P<source>[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+)$")
METHODS = ("POST", "GET")


def not_found() -> dict[str, Any]:
    """The resolver's answer to a path or method it has no route for (API Gateway sends none here)."""
    return {"statusCode": 404, "body": json.dumps({"statusCode": 404, "message": "Not found"}, separators=(",", ":")),
            "isBase64Encoded": False, "multiValueHeaders": {"Content-Type": ["application/json"]}}


def receive(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method = event["httpMethod"].upper()
    route = ROUTE.match(event["path"]) if method in METHODS else None
    if route is None:
        return not_found()
    # The invocation's end (the same context locally): the service finishes, or undoes and answers 503, before it.
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    outcome = ingest_service().accept(
        RawRequest(source=route["source"], headers=lower_headers(event.get("headers")), body=event.get("body"),
                   is_base64=bool(event.get("isBase64Encoded")), method=event["httpMethod"],
                   query=dict(event.get("queryStringParameters") or {}), path=event["path"]),
        deadline=time.monotonic() + remaining() / 1000 if callable(remaining) else None,
    )
    if isinstance(outcome.body, str):
        return proxy_answer(outcome.status, outcome.body, outcome.content_type)
    return json_answer(outcome.status, outcome.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return receive(event, context)
