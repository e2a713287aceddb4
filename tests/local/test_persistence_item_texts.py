"""The local state's save makes each item's text once per version of the item (interlock.local.persistence)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from interlock.local import dynamodb_lock, persistence
from moto import mock_aws

from .support import create_keyed_table

TABLE = "saved"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_keyed_table(client, TABLE)
        undo = [dynamodb_lock.install(), persistence.install_dynamodb_hook()]
        try:
            for i in range(20):
                client.put_item(TableName=TABLE, Item={"pk": _s(f"RUN#{i}"), "sk": _s("#RUN"), "n": {"N": str(i)},
                                                       "m": {"M": {"tags": {"L": [_s("a")]}}}})
            yield client
        finally:
            for step in reversed(undo):
                step()


def _by_key(texts: list[str]) -> dict[str, str]:
    return {json.loads(text)["pk"]["S"]: text for text in texts}


def test_an_unchanged_item_keeps_its_text_and_every_change_is_in_the_next_capture(dynamodb: Any) -> None:
    first = _by_key(persistence.capture_table_texts([TABLE])[TABLE])

    dynamodb.update_item(TableName=TABLE, Key={"pk": _s("RUN#1"), "sk": _s("#RUN")},
                         UpdateExpression="SET m.tags = :t", ExpressionAttributeValues={":t": {"L": [_s("b")]}})
    dynamodb.put_item(TableName=TABLE, Item={"pk": _s("RUN#2"), "sk": _s("#RUN"), "n": {"N": "-2"}})
    dynamodb.delete_item(TableName=TABLE, Key={"pk": _s("RUN#3"), "sk": _s("#RUN")})
    dynamodb.transact_write_items(TransactItems=[{"Update": {
        "TableName": TABLE, "Key": {"pk": _s("RUN#4"), "sk": _s("#RUN")}, "UpdateExpression": "SET n = :n",
        "ExpressionAttributeValues": {":n": {"N": "-4"}}}}])
    second = _by_key(persistence.capture_table_texts([TABLE])[TABLE])

    assert json.loads(second["RUN#1"])["m"] == {"M": {"tags": {"L": [_s("b")]}}}  # changed in place: made again
    assert json.loads(second["RUN#2"]) == {"pk": _s("RUN#2"), "sk": _s("#RUN"), "n": {"N": "-2"}}
    assert "RUN#3" not in second
    assert json.loads(second["RUN#4"])["n"] == {"N": "-4"}
    unchanged = set(first) - {"RUN#1", "RUN#2", "RUN#3", "RUN#4"}
    assert len(unchanged) == 16 and all(second[k] is first[k] for k in unchanged)  # the same text, not made again
    assert persistence.capture_tables([TABLE])[TABLE] == [json.loads(t) for t in
                                                         persistence.capture_table_texts([TABLE])[TABLE]]


def test_a_failed_transaction_leaves_the_saved_text_as_the_item_is(dynamodb: Any) -> None:
    persistence.capture_table_texts([TABLE])
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE, "Key": {"pk": _s("RUN#5"), "sk": _s("#RUN")},
                        "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "-5"}}}},
            {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": _s("RUN#6"), "sk": _s("#RUN")},
                                "ConditionExpression": "attribute_not_exists(pk)"}},
        ])

    saved = _by_key(persistence.capture_table_texts([TABLE])[TABLE])
    assert json.loads(saved["RUN#5"])["n"] == {"N": "5"}


def test_a_snapshot_written_from_texts_reads_back_as_the_items(dynamodb: Any, tmp_path: Path) -> None:
    path = persistence.state_path(tmp_path)
    snapshot = persistence.Snapshot(saved_at=datetime.now(UTC)).with_table_texts(
        persistence.capture_table_texts([TABLE]))

    persistence.write(path, snapshot)

    read = persistence.read(path)
    assert read is not None
    assert read.tables == persistence.capture_tables([TABLE])
    assert len(read.tables[TABLE]) == 20
