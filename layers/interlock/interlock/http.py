"""JSON and HTML responses for the API functions, with the headers every answer carries.

The functions on Powertools' ``APIGatewayRestResolver`` answer with its ``Response`` (:func:`json_response`).
The ingest answers without the resolver (importing ``aws_lambda_powertools.event_handler`` costs its cold start
more than a hundred modules it never uses): :func:`proxy_answer` writes the Lambda proxy answer itself, as the
resolver would have written it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

NO_STORE = {"Cache-Control": "no-store"}
JSON = "application/json"
# A path parameter used in a DynamoDB key (a run id) longer than this names nothing: it is answered 404
# without a lookup (DynamoDB refuses a key over 2,048 bytes, which would otherwise be a 5xx).
MAX_PATH_ID_BYTES = 256


def can_name_a_record(value: str) -> bool:
    """True if a path parameter could be an id Interlock made: at most :data:`MAX_PATH_ID_BYTES` of printable
    UTF-8."""
    return value.isprintable() and len(value.encode("utf-8", "surrogatepass")) <= MAX_PATH_ID_BYTES


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    # Imported here: the resolvers' functions have event_handler loaded already, and the ingest never calls this.
    from aws_lambda_powertools.event_handler import Response

    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(body, default=str),
        headers={**NO_STORE, **(headers or {})},
    )


def proxy_answer(status: int, body: str, content_type: str,
                 headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway REST (v1) Lambda proxy answer with a text body, in the shape ``APIGatewayRestResolver``
    gives a ``Response`` (``multiValueHeaders``; ``Content-Type`` unless ``headers`` names one)."""
    merged = {**NO_STORE, **(headers or {})}
    merged.setdefault("Content-Type", content_type)
    return {"statusCode": status, "body": body, "isBase64Encoded": False,
            "multiValueHeaders": {name: [value] for name, value in merged.items()}}


def json_answer(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """:func:`proxy_answer` of ``body`` as JSON: what :func:`json_response` answers, through the resolver."""
    return proxy_answer(status, json.dumps(body, default=str), JSON, headers)


def lower_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers or {}).items()}


class BodyError(ValueError):
    """A request body that is not what the route takes: ``code`` is ``bad_body`` (not JSON) or ``bad_request``
    (JSON, but not the model: ``fields`` names what is wrong)."""

    def __init__(self, code: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(code)
        self.code = code
        self.fields = fields


def model_body(body: str | None, model: type[M]) -> M:
    """An operator route's optional JSON body as ``model`` (no body, or only whitespace, is ``{}``)."""
    from pydantic import ValidationError

    from interlock.webhooks.base import read_json

    try:
        data = read_json(body) if body and body.strip() else {}
    except ValueError:  # not JSON, nested too deep, or holding a lone surrogate
        raise BodyError("bad_body") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "(the body)" for err in exc.errors()})
        raise BodyError("bad_request", tuple(fields)) from None
