"""JSON and HTML responses for the API functions, with the headers every answer carries."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

NO_STORE = {"Cache-Control": "no-store"}
# A path parameter used in a DynamoDB key (a run id) longer than this names nothing: it is answered 404
# without a lookup (DynamoDB refuses a key over 2,048 bytes, which would otherwise be a 5xx).
MAX_PATH_ID_BYTES = 256


def can_name_a_record(value: str) -> bool:
    """True if a path parameter could be an id Interlock made: at most :data:`MAX_PATH_ID_BYTES` of printable
    UTF-8."""
    return value.isprintable() and len(value.encode("utf-8", "surrogatepass")) <= MAX_PATH_ID_BYTES


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, default=str),
        headers={**NO_STORE, **(headers or {})},
    )


def lower_headers(headers: dict[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers or {}).items()}
