"""moto's DynamoDB, as the local runtime patches it (interlock.local.dynamodb_lock): a failed transaction rolls
back exactly the items it named, without copying the table, and a query reads only its partition."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from interlock.local import dynamodb_lock
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

from .support import create_keyed_table

TABLE = "patched"
STORED = 500  # items already in the table: a copy of it would copy each


def _s(value: str) -> dict[str, str]:
    return {"S": value}


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_keyed_table(client, TABLE)
        uninstall = dynamodb_lock.install()
        try:
            for i in range(STORED):
                client.put_item(TableName=TABLE, Item={"pk": _s(f"P#{i % 50}"), "sk": _s(f"S#{i:05d}"),
                                                       "n": {"N": str(i)}, "m": {"M": {"tags": {"L": [_s("a")]}}}})
            yield client
        finally:
            uninstall()


def _everything(client: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": TABLE}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _failing_transaction(last: dict[str, Any]) -> list[dict[str, Any]]:
    """A put of a new item, an update and a delete of existing ones, then ``last``."""
    return [
        {"Put": {"TableName": TABLE, "Item": {"pk": _s("P#new"), "sk": _s("S#new"), "n": {"N": "1"}}}},
        {"Update": {"TableName": TABLE, "Key": {"pk": _s("P#1"), "sk": _s("S#00001")},
                    "UpdateExpression": "SET n = :n, m.tags = :t",
                    "ExpressionAttributeValues": {":n": {"N": "-1"}, ":t": {"L": []}}}},
        {"Delete": {"TableName": TABLE, "Key": {"pk": _s("P#2"), "sk": _s("S#00002")}}},
        last,
    ]


FAILING_CONDITION = {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": _s("P#3"), "sk": _s("S#00003")},
                                        "ConditionExpression": "attribute_not_exists(pk)"}}


def test_given_a_transaction_whose_condition_fails_then_the_table_is_exactly_as_before(dynamodb: Any) -> None:
    before = _everything(dynamodb)

    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=_failing_transaction(FAILING_CONDITION))

    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _everything(dynamodb) == before  # the put undone, the update and the delete put back, nothing else


def test_given_a_transaction_naming_one_item_twice_then_what_it_wrote_is_undone(dynamodb: Any) -> None:
    before = _everything(dynamodb)
    twice = {"Put": {"TableName": TABLE, "Item": {"pk": _s("P#new"), "sk": _s("S#new"), "n": {"N": "2"}}}}

    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=_failing_transaction(twice))

    assert _everything(dynamodb) == before


def test_given_a_transaction_that_succeeds_then_each_of_its_writes_is_applied(dynamodb: Any) -> None:
    passing = {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": _s("P#3"), "sk": _s("S#00003")},
                                  "ConditionExpression": "attribute_exists(pk)"}}

    dynamodb.transact_write_items(TransactItems=_failing_transaction(passing))

    get = lambda pk, sk: dynamodb.get_item(TableName=TABLE, Key={"pk": _s(pk), "sk": _s(sk)}).get("Item")  # noqa: E731
    assert get("P#new", "S#new") is not None
    assert get("P#1", "S#00001")["n"] == {"N": "-1"}
    assert get("P#2", "S#00002") is None
    assert len(_everything(dynamodb)) == STORED


def test_a_transaction_copies_the_items_it_names_not_the_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = dynamodb_backends["123456789012"]["us-east-1"]
    table = backend.tables[TABLE]
    copied: list[Item] = []
    original = Item.__deepcopy__

    def counting(self: Item, memo: dict[int, Any]) -> Item:
        copied.append(self)
        return original(self, memo)

    monkeypatch.setattr(Item, "__deepcopy__", counting)

    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=_failing_transaction(FAILING_CONDITION))

    named = {("P#new", "S#new"), ("P#1", "S#00001"), ("P#2", "S#00002"), ("P#3", "S#00003")}
    assert {(i.hash_key.value, i.range_key.value) for i in copied} <= named  # no other item of the table copied
    assert backend.tables[TABLE] is table  # rolled back in place: the table is the same object


def test_without_the_patch_moto_copies_the_whole_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the patch saves (so that the test above can fail): moto's own transaction copies every item."""
    copied: list[Item] = []
    original = Item.__deepcopy__

    def counting(self: Item, memo: dict[int, Any]) -> Item:
        copied.append(self)
        return original(self, memo)

    monkeypatch.setattr(Item, "__deepcopy__", counting)
    from moto.dynamodb import models

    monkeypatch.setattr(models, "copy", __import__("copy"))  # moto's view of `copy`, unpatched

    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=_failing_transaction(FAILING_CONDITION))

    assert len(copied) >= STORED


def test_a_query_on_the_table_key_reads_only_its_partition(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    patched = Table.all_items

    def measuring(self: Table) -> list[Any]:
        items = patched(self)
        seen.append(len(items))
        return items

    monkeypatch.setattr(Table, "all_items", measuring)

    answer = dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
                            ExpressionAttributeValues={":pk": _s("P#7"), ":s": _s("S#")}, ScanIndexForward=False)

    assert seen == [STORED // 50]  # the partition's items, not the table's
    expected = sorted((i for i in _everything(dynamodb) if i["pk"]["S"] == "P#7"), key=lambda i: i["sk"]["S"])
    assert answer["Items"] == expected[::-1]


def test_a_paged_query_answers_as_moto_does_unpatched(dynamodb: Any) -> None:
    def pages() -> list[list[dict[str, Any]]]:
        found: list[list[dict[str, Any]]] = []
        kwargs: dict[str, Any] = {"TableName": TABLE, "KeyConditionExpression": "pk = :pk AND sk > :s",
                                  "ExpressionAttributeValues": {":pk": _s("P#9"), ":s": _s("S#00100")},
                                  "Limit": 3}
        while True:
            page = dynamodb.query(**kwargs)
            found.append(page["Items"])
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    patched = pages()
    installed = (Table.query, Table.all_items)
    Table.query, Table.all_items = Table.query.__wrapped__, Table.all_items.__wrapped__  # type: ignore[attr-defined]
    try:
        unpatched = pages()
    finally:
        Table.query, Table.all_items = installed  # type: ignore[method-assign]

    assert patched == unpatched
    assert [len(page) for page in patched] == [3, 3, 2]
