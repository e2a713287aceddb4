"""The plain HTTP request and response the local gateway hands to its mounted apps (the fakes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # decoded, without the query string
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: list[tuple[str, str]] = field(default_factory=list)  # as sent, in order
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The last value of a header, case-insensitively (as most servers read single-valued headers)."""
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        """The body as JSON (None without one), held to the limits every webhook body is: ``ValueError`` (a
        ``PayloadError``) when it is not JSON, nests too deep or holds a lone surrogate."""
        from interlock.webhooks.base import read_json

        return read_json(self.body) if self.body else None


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    extra = list((headers or {}).items())
    return Response(status, [("Content-Type", "application/json"), *extra], json.dumps(body).encode())
