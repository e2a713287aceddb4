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

Two of moto's costs grow with the table, and ``install`` patches both narrowly while it is installed:

* **the transaction's backup.** moto deep-copies every table a ``TransactWriteItems`` names before applying it
  (1.8 ms on an empty table, 271 ms at 9,000 items, under the lock, for every ingest and every approval). With
  the calls serialised nothing else can change the table meanwhile, so only the items the transaction names
  need putting back when it fails: :func:`_rollback_backups` hands moto, for each table, a backup of just
  those items (copied before the first write), and when moto "restores the table" from it, those items are put
  back as they were (or removed, where they did not exist) on the table itself. Stream records are not rolled
  back (moto's own rollback drops them; the runtime's table has no stream).
* **the query's scan.** moto answers a ``Query`` on the table's own key by sorting *every* item of the table and
  keeping those of the partition; :func:`_query_one_partition` has it look only at the partition asked for
  (which holds exactly the items that filter kept), so reading a run costs the same with 10 runs stored or 10,000.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    read, and patch its transaction backup and its query (see the module's docstring); returns the function
    that undoes it all."""
    from moto.dynamodb.responses import DynamoHandler

    uninstall_transactions = _rollback_backups()
    uninstall_query = _query_one_partition()
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
        uninstall_query()
        uninstall_transactions()

    return uninstall


def _action(handler: Any) -> str:
    target = handler.headers.get("X-Amz-Target") or handler.headers.get("x-amz-target") or ""
    return str(target).rsplit(".", 1)[-1]


# -- the transaction's backup: the items it names, not the table ----------------------------------------------


class TouchedItems:
    """What moto gets instead of a deep copy of ``table`` as a transaction's backup: a copy of each item the
    transaction names, as it was before the transaction (None: it did not exist)."""

    def __init__(self, table: Any, transact_items: list[dict[str, Any]]) -> None:
        self.table = table
        self.before: dict[tuple[Any, Any], Any] = {}
        for entry in transact_items:
            for operation in entry.values():
                if isinstance(operation, dict) and operation.get("TableName") == table.name:
                    key = _key_of(table, operation)
                    if key is not None and key not in self.before:
                        current = table.get_item(*key) if table.range_key_attr else table.get_item(key[0])
                        self.before[key] = copy.deepcopy(current)

    def restore(self) -> None:
        """Put every item named back as it was, on the table itself."""
        items = self.table.items
        for (hash_key, range_key), item in self.before.items():
            if self.table.range_key_attr is None:
                if item is None:
                    items.pop(hash_key, None)
                else:
                    items[hash_key] = item
                continue
            if item is not None:
                items[hash_key][range_key] = item
                continue
            partition = items.get(hash_key)
            if partition is not None:
                partition.pop(range_key, None)
                if not partition:
                    del items[hash_key]


def _key_of(table: Any, operation: dict[str, Any]) -> tuple[Any, Any] | None:
    """The (hash, range) key, as moto indexes the table by, that one transaction operation names; None when
    it names none that could be written (moto refuses that operation before it writes anything)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    attrs = operation.get("Item") if "Item" in operation else operation.get("Key")
    if not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
        return None
    range_value = None
    if table.range_key_attr is not None:
        if table.range_key_attr not in attrs:
            return None
        range_value = DynamoType(attrs[table.range_key_attr])
    return DynamoType(attrs[table.hash_key_attr]), range_value


_transaction = threading.local()  # .items: the TransactItems of the transaction this thread is in


class _CopyInTransactions:
    """moto's DynamoDB models module's view of :mod:`copy`: a table deep-copied inside a transaction is
    :class:`TouchedItems` of it; everything else is copied as :mod:`copy` copies it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        transact_items = getattr(_transaction, "items", None)
        if transact_items is not None and isinstance(value, Table):
            return TouchedItems(value, transact_items)
        return copy.deepcopy(value, memo)


@contextmanager
def _restoring(backend: Any) -> Iterator[None]:
    """After moto's transaction: a table it "restored" from a backup (a :class:`TouchedItems`) is the table
    again, with the items the backup holds put back."""
    try:
        yield
    finally:
        for name, value in list(backend.tables.items()):
            if isinstance(value, TouchedItems):
                backend.tables[name] = value.table
                value.restore()


def _rollback_backups() -> Callable[[], None]:
    from moto.dynamodb import models

    backend_class = models.DynamoDBBackend
    original = backend_class.transact_write_items
    original_copy = models.copy

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _lock, _restoring(self):
            _transaction.items = transact_items
            try:
                return original(self, transact_items)
            finally:
                _transaction.items = None

    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]
    models.copy = _CopyInTransactions()  # type: ignore[assignment]

    def uninstall() -> None:
        backend_class.transact_write_items = original  # type: ignore[method-assign]
        models.copy = original_copy

    return uninstall


# -- the query: one partition, not the table -------------------------------------------------------------------

_partition = threading.local()  # .key: (table, hash key) while this thread queries that table's own key


def _query_one_partition() -> Callable[[], None]:
    from moto.dynamodb.models.table import Table

    original_query = Table.query
    original_all_items = Table.all_items

    @functools.wraps(original_query)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name") if "index_name" in kwargs else (args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or self.range_key_attr is None:
            return original_query(self, hash_key, *args, **kwargs)
        _partition.key = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _partition.key = None

    @functools.wraps(original_all_items)
    def all_items(self: Any) -> list[Any]:
        asked = getattr(_partition, "key", None)
        if asked is None or asked[0] is not self:
            return original_all_items(self)
        partition = self.items.get(asked[1])
        return sorted(partition.values(), key=lambda item: item.range_key) if partition else []

    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]

    def uninstall() -> None:
        Table.query = original_query  # type: ignore[method-assign]
        Table.all_items = original_all_items  # type: ignore[method-assign]

    return uninstall
