"""JSON and HTML responses for the API functions, with the headers every answer carries."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

NO_STORE = {"Cache-Control": "no-store"}


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, default=str),
        headers={**NO_STORE, **(headers or {})},
    )


def lower_headers(headers: dict[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers or {}).items()}
