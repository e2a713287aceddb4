"""Cached, lazily created AWS clients: nothing is created at import, so cold start pays only for use.

A client is created once per process, however many threads ask for it first: a burst that reaches a fresh
container (or the local runtime, whose functions share one process) would otherwise have each thread build
its own client, each taking a lock on boto3's default session and loading the service model, so that the
first requests queue behind one another for seconds. boto3 clients are thread-safe once created.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

T = TypeVar("T")


def once_per_process(factory: Callable[..., T]) -> Callable[..., T]:
    """Like ``functools.cache``, except that concurrent first calls wait for one another: the factory runs once
    per distinct argument tuple. The wrapper has ``cache_clear`` (which the local runtime's cold-start reset
    calls on every cached factory it finds)."""
    values: dict[tuple[Any, ...], T] = {}
    lock = threading.RLock()  # re-entrant: a factory may call another cached factory, or itself with other args

    @wraps(factory)
    def cached(*args: Any) -> T:
        try:
            return values[args]
        except KeyError:
            pass
        with lock:
            if args not in values:
                values[args] = factory(*args)
            return values[args]

    def cache_clear() -> None:
        with lock:
            values.clear()

    cached.cache_clear = cache_clear  # type: ignore[attr-defined]
    return cached


@once_per_process
def client(service: str) -> Any:
    import boto3  # deferred: a module that never talks to AWS never pays for boto3's import

    return boto3.client(service)


def reset() -> None:
    """Forget every cached client (tests and the local runtime switch endpoints)."""
    client.cache_clear()  # type: ignore[attr-defined]


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
