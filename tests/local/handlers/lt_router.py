"""Test queue consumer: one Step Functions execution per record, reporting partial batch failures."""

import json
import os
from typing import Any

import boto3


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    failures = []
    for record in event["Records"]:
        try:
            body = json.loads(record["body"])
            sfn.start_execution(stateMachineArn=os.environ["LT_STATE_MACHINE_ARN"], name=body["id"],
                                input=json.dumps(body))
        except Exception:
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
