"""One DynamoDB call at a time on the embedded local cloud.

moto's ``TransactWriteItems`` backs up every table it touches (a deep copy) before applying its items and,
when a condition fails, puts the backup back. The local runtime serves many threads (the HTTP gateway, the
SQS pollers, the state machines' task threads), so a write another thread makes while a transaction is in
flight would be erased by that transaction's rollback: a timeline entry lost, while the run's status (written
after it) survives. A conditional transaction failing is routine here (a duplicate delivery, an approval
decided twice), so the loss is not hypothetical. DynamoDB itself isolates transactions; moto does not, so
the local cloud serialises every DynamoDB API call through one lock while it runs.

The same wrapper knows when a table may have changed: ``install(on_change)`` calls ``on_change`` after every
call that is not a read (what the local state's flusher waits for), and :data:`lock` lets a reader see all the
tables at one instant.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.RLock()
lock = _lock  # held by whoever reads the tables as a whole (a snapshot of the local state)

# The calls that change nothing; every other one may have.
READS = frozenset({
    "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "ListTagsOfResource", "DescribeContinuousBackups", "DescribeEndpoints",
})


def install(on_change: Callable[[], None] | None = None) -> Callable[[], None]:
    """Serialise moto's DynamoDB request handling, calling ``on_change`` after each call that is not a
    read; returns the function that undoes it."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with _lock:
            try:
                return original(self)
            finally:
                if on_change is not None and _action(self) not in READS:
                    on_change()

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]

    def uninstall() -> None:
        DynamoHandler.call_action = original  # type: ignore[method-assign]

    return uninstall


def _action(handler: Any) -> str:
    target = handler.headers.get("X-Amz-Target") or handler.headers.get("x-amz-target") or ""
    return str(target).rsplit(".", 1)[-1]
