"""Test API handler: queues the request body, like a thin ingest function."""

import os
from typing import Any

import boto3


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=os.environ["LT_QUEUE_URL"], MessageBody=event["body"],
                     MessageAttributes={"source": {"DataType": "String",
                                                   "StringValue": event["pathParameters"]["source"]}})
    return {"statusCode": 202, "headers": {"Content-Type": "application/json"}, "body": '{"queued": true}'}
