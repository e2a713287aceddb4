"""Cached, lazily created AWS clients: nothing is created at import, so cold start pays only for use."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3  # deferred: a module that never talks to AWS never pays for boto3's import

    return boto3.client(service)


def reset() -> None:
    """Forget every cached client (tests and the local runtime switch endpoints)."""
    client.cache_clear()


class DynamoTable:
    """Base of the DynamoDB adapters: the table's name and its client, created on first use unless given."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client("dynamodb")
        return self._client
