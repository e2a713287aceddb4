"""moto's DynamoDB answers with their items serialised directly (interlock.local.moto_dynamodb_json): every item
operation answers exactly what unpatched moto answers, for items holding every attribute type."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError
from interlock.local import moto_dynamodb_json
from moto import mock_aws

from .support import create_keyed_table

TABLE = "answers"

EVERY_TYPE: dict[str, Any] = {
    "pk": {"S": "P#1"},
    "sk": {"S": "S#0001"},
    "text": {"S": "héllo \"quoted\" \u2603"},
    "empty": {"S": ""},
    "number": {"N": "-12.50"},
    "blob": {"B": b"\x00\x01binary\xff"},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"\x00", b"\xfe\xff"]},
    "yes": {"BOOL": True},
    "no": {"BOOL": False},
    "nothing": {"NULL": True},
    "list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"B": b"\x10"}, "flag": {"BOOL": False}}}, {"L": []}]},
    "map": {"M": {"inner": {"M": {"list": {"L": [{"NULL": True}, {"SS": ["z"]}]}}}, "none": {"M": {}}}},
}


def _key(i: int) -> dict[str, Any]:
    return {"pk": {"S": "P#1"}, "sk": {"S": f"S#{i:04d}"}}


def _item(i: int) -> dict[str, Any]:
    return {**EVERY_TYPE, **_key(i)}


def _operations(client: Any) -> list[Callable[[], Any]]:
    put = {"TableName": TABLE, "ReturnConsumedCapacity": "TOTAL"}
    return [
        lambda: client.put_item(Item=_item(1), **put),
        lambda: client.put_item(Item=_item(1), ReturnValues="ALL_OLD", **put),
        lambda: client.put_item(Item=_item(2), **put),
        lambda: client.get_item(TableName=TABLE, Key=_key(1)),
        lambda: client.get_item(TableName=TABLE, Key=_key(1), ProjectionExpression="#b, #m.inner",
                                ExpressionAttributeNames={"#b": "blob", "#m": "map"}),
        lambda: client.get_item(TableName=TABLE, Key=_key(99)),
        lambda: client.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                             ExpressionAttributeValues={":p": {"S": "P#1"}}, ReturnConsumedCapacity="INDEXES"),
        lambda: client.query(TableName=TABLE, KeyConditionExpression="pk = :p", Limit=1,
                             ExpressionAttributeValues={":p": {"S": "P#1"}}),
        lambda: client.query(TableName=TABLE, KeyConditionExpression="pk = :p", Select="COUNT",
                             ExpressionAttributeValues={":p": {"S": "P#1"}}),
        lambda: client.scan(TableName=TABLE),
        lambda: client.update_item(TableName=TABLE, Key=_key(1), ReturnValues="ALL_NEW",
                                   UpdateExpression="SET #n = :n, added = :b",
                                   ExpressionAttributeNames={"#n": "number"},
                                   ExpressionAttributeValues={":n": {"N": "3"}, ":b": {"B": b"\x02"}}),
        lambda: client.update_item(TableName=TABLE, Key=_key(1), ReturnValues="UPDATED_OLD",
                                   UpdateExpression="REMOVE added"),
        lambda: client.batch_get_item(RequestItems={TABLE: {"Keys": [_key(1), _key(2), _key(3)]}}),
        lambda: client.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": _item(3)}},
                                                              {"DeleteRequest": {"Key": _key(2)}}]}),
        lambda: client.transact_get_items(TransactItems=[{"Get": {"TableName": TABLE, "Key": _key(1)}},
                                                         {"Get": {"TableName": TABLE, "Key": _key(3)}}]),
        lambda: client.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": _item(4)}}]),
        # errors carrying items
        lambda: client.put_item(TableName=TABLE, Item=_item(1), ConditionExpression="attribute_not_exists(pk)",
                                ReturnValuesOnConditionCheckFailure="ALL_OLD"),
        lambda: client.transact_write_items(TransactItems=[{"Put": {
            "TableName": TABLE, "Item": _item(4), "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}]),
        lambda: client.delete_item(TableName=TABLE, Key=_key(3), ReturnValues="ALL_OLD"),
    ]


def _answers(patched: bool) -> list[tuple[int, Any]]:
    """Each operation's HTTP status and parsed body, on a fresh moto."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_keyed_table(client, TABLE)
        bodies: list[tuple[int, Any]] = []

        def keep(http_response: Any, **_: Any) -> None:
            bodies.append((http_response.status_code, json.loads(http_response.content)))

        client.meta.events.register("after-call.dynamodb", keep)
        client.meta.events.register("after-call-error.dynamodb", keep)
        uninstall = moto_dynamodb_json.install() if patched else None
        try:
            for operation in _operations(client):
                with contextlib.suppress(ClientError):
                    operation()
        finally:
            if uninstall is not None:
                uninstall()
        return bodies


def test_every_item_operation_answers_what_unpatched_moto_answers() -> None:
    expected = _answers(patched=False)
    actual = _answers(patched=True)

    assert len(expected) == len(_operations(None))  # every operation answered, errors included
    assert [status for status, _ in expected].count(400) == 2  # the two conditional failures
    assert any("Item" in body for _, body in expected if isinstance(body, dict))
    for (status, body), (want_status, want_body) in zip(actual, expected, strict=True):
        assert (status, body) == (want_status, want_body)


def test_an_attribute_value_is_written_as_the_json_protocol_writes_it() -> None:
    assert moto_dynamodb_json.attribute_value({"B": b"\x00\xff", "S": None}) == {"B": "AP8="}
    assert moto_dynamodb_json.attribute_value({"N": 5, "SS": ["a"], "bogus": {"S": "x"}}) == {"N": "5", "SS": ["a"]}
    assert moto_dynamodb_json.attribute_value({"M": {"a": {"L": [{"BS": [b"\x01"]}]}}}) == {
        "M": {"a": {"L": [{"BS": ["AQ=="]}]}}}


def test_other_services_keep_motos_own_serializer() -> None:
    uninstall = moto_dynamodb_json.install()
    try:
        with mock_aws():
            client = boto3.client("sqs", region_name="us-east-1")
            url = client.create_queue(QueueName="q")["QueueUrl"]
            client.send_message(QueueUrl=url, MessageBody="b", MessageAttributes={
                "k": {"DataType": "Binary", "BinaryValue": b"\x00"}})
            (message,) = client.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
            assert message["MessageAttributes"]["k"]["BinaryValue"] == b"\x00"
    finally:
        uninstall()
