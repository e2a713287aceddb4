"""Helpers for the integration tests: names, the moto resources' handles, API Gateway events."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE_NAME = "interlock-test-timeline"
QUEUE_NAME = "interlock-test-ingest"
SECRET_PREFIX = "interlock/webhooks/"


@dataclass
class Cloud:
    """Handles on the moto resources a test uses."""

    dynamodb: Any
    sqs: Any
    queue_url: str

    def items(self) -> list[dict[str, Any]]:
        """Every item of the table, a kept envelope (zlib-compressed JSON) shown as its text, so a test that looks
        for what must never be stored sees inside it too."""
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": TABLE_NAME, "ConsistentRead": True}
        while True:
            page = self.dynamodb.scan(**kwargs)
            out.extend(_readable(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def messages(self) -> list[dict[str, Any]]:
        """Every message on the ingest queue (received with a zero visibility timeout, so left in place)."""
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                          MessageAttributeNames=["All"], WaitTimeSeconds=0)
        return answer.get("Messages", [])

    def queue_depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def create_table(dynamodb: Any) -> None:
    from interlock.local.cloud import timeline_table_request
    from interlock.topology import TOPOLOGY

    table = TOPOLOGY.table
    dynamodb.create_table(**timeline_table_request(table, TABLE_NAME))
    dynamodb.update_time_to_live(
        TableName=TABLE_NAME,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
    )


def rest_event(
    method: str,
    path: str,
    resource: str,
    path_parameters: dict[str, str],
    *,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    is_base64: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy event."""
    headers = dict(headers or {})
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "resourceId": "res1",
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTimeEpoch": 1_700_000_000_000,
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "pytest"},
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def header(response: dict[str, Any], name: str) -> str | None:
    """A response header, whether the resolver put it in ``headers`` or ``multiValueHeaders``."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return value
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return ",".join(values)
    return None


def _readable(item: dict[str, Any]) -> dict[str, Any]:
    return {name: {"S": zlib.decompress(value["B"]).decode()} if "B" in value else value
            for name, value in item.items()}
