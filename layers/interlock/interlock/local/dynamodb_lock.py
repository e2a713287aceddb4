"""One DynamoDB call at a time on the embedded local cloud.

moto's ``TransactWriteItems`` backs up every table it touches (a deep copy) before applying its items and,
when a condition fails, puts the backup back. The local runtime serves many threads (the HTTP gateway, the
SQS pollers, the state machines' task threads), so a write another thread makes while a transaction is in
flight would be erased by that transaction's rollback: a timeline entry lost, while the run's status (written
after it) survives. A conditional transaction failing is routine here (a duplicate delivery, an approval
decided twice), so the loss is not hypothetical. DynamoDB itself isolates transactions; moto does not, so
the local cloud serialises every DynamoDB API call through one lock while it runs.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.RLock()


def install() -> Callable[[], None]:
    """Serialise moto's DynamoDB request handling; returns the function that undoes it."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]

    def uninstall() -> None:
        DynamoHandler.call_action = original  # type: ignore[method-assign]

    return uninstall
