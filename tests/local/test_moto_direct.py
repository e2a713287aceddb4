"""boto3 calls handed to moto at the client (interlock.local.moto_direct): every answer and every error is what the
usual path (signed, sent, caught by moto's stubber, parsed by the endpoint) gives, and no call is signed or sent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.signers import RequestSigner
from interlock.local import moto_direct
from moto import mock_aws

REGION = "us-east-1"
TABLE = "direct"


def _scrub(value: Any) -> Any:
    """An answer without what differs from call to call (request ids, dates, generated ids)."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()
                if k not in {"ResponseMetadata", "MessageId", "ReceiptHandle", "MD5OfMessageBody",
                             "MD5OfMessageAttributes", "creationDate", "startDate", "stopDate", "CreatedDate",
                             "VersionId", "SentTimestamp", "ApproximateFirstReceiveTimestamp", "Attributes"}}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _calls(clients: dict[str, Any]) -> list[Callable[[], Any]]:
    ddb, sqs, sfn, ses, secrets = (clients[n] for n in ("dynamodb", "sqs", "stepfunctions", "ses", "secretsmanager"))
    key = {"pk": {"S": "a"}}
    item = {**key, "b": {"B": b"\x00\xff"}, "n": {"N": "1"}, "l": {"L": [{"M": {"x": {"BOOL": True}}}]}}
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    role = "arn:aws:iam::123456789012:role/r"

    def queue() -> str:
        return str(sqs.get_queue_url(QueueName="q")["QueueUrl"])

    return [
        lambda: ddb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                                 BillingMode="PAY_PER_REQUEST")["TableDescription"]["TableName"],
        lambda: ddb.put_item(TableName=TABLE, Item=item),
        lambda: ddb.get_item(TableName=TABLE, Key=key),
        lambda: ddb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)",
                             ReturnValuesOnConditionCheckFailure="ALL_OLD"),
        lambda: ddb.transact_write_items(TransactItems=[{"Put": {
            "TableName": TABLE, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}]),
        lambda: ddb.get_item(TableName="missing", Key=key),
        lambda: sqs.create_queue(QueueName="q")["QueueUrl"],
        lambda: sqs.send_message(QueueUrl=queue(), MessageBody="héllo", MessageAttributes={
            "bin": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
            "s": {"DataType": "String", "StringValue": "v"}}),
        lambda: sqs.receive_message(QueueUrl=queue(), MessageAttributeNames=["All"], MaxNumberOfMessages=10),
        lambda: sqs.get_queue_url(QueueName="absent"),
        lambda: sfn.create_state_machine(name="m", definition=definition, roleArn=role)["stateMachineArn"],
        lambda: sfn.describe_state_machine(
            stateMachineArn=f"arn:aws:states:{REGION}:123456789012:stateMachine:m")["definition"],
        lambda: sfn.describe_execution(executionArn=f"arn:aws:states:{REGION}:123456789012:execution:m:none"),
        lambda: ses.verify_email_identity(EmailAddress="ops@example.com"),
        lambda: ses.send_email(Source="ops@example.com", Destination={"ToAddresses": ["a@example.com"]},
                               Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}),
        lambda: ses.send_email(Source="unverified@example.com", Destination={"ToAddresses": ["a@example.com"]},
                               Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}),
        lambda: secrets.create_secret(Name="s", SecretString="v")["Name"],
        lambda: secrets.get_secret_value(SecretId="s")["SecretString"],
        lambda: secrets.get_secret_value(SecretId="absent"),
    ]


def _outcomes(direct: bool) -> tuple[list[Any], int]:
    """Each call's answer or error, on a fresh moto, and how many requests were signed."""
    signed = 0
    original_sign = RequestSigner.sign

    def sign(self: RequestSigner, *args: Any, **kwargs: Any) -> Any:
        nonlocal signed
        signed += 1
        return original_sign(self, *args, **kwargs)

    outcomes: list[Any] = []
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(RequestSigner, "sign", sign)
        uninstall = moto_direct.install() if direct else None
        try:
            clients = {name: boto3.client(name, region_name=REGION)
                       for name in ("dynamodb", "sqs", "stepfunctions", "ses", "secretsmanager")}
            for call in _calls(clients):
                try:
                    outcomes.append(("ok", _scrub(call())))
                except ClientError as error:
                    outcomes.append(("error", type(error).__name__, _scrub(error.response),
                                     error.response["ResponseMetadata"]["HTTPStatusCode"]))
        finally:
            if uninstall is not None:
                uninstall()
    return outcomes, signed


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[tuple[list[Any], int], tuple[list[Any], int]]]:
    yield _outcomes(direct=False), _outcomes(direct=True)


def test_every_answer_and_error_is_what_the_usual_path_gives(both: Any) -> None:
    (usual, _), (direct, _) = both
    errors = [o for o in usual if o[0] == "error"]
    assert len(errors) == 7  # errors of every service, modelled fields and all
    assert any("Item" in o[2] for o in errors)  # the conditional failure's item (a modelled error field)
    assert any("CancellationReasons" in o[2] for o in errors)
    for got, want in zip(direct, usual, strict=True):
        assert got == want


def test_no_call_is_signed_or_sent_on_the_direct_path(both: Any) -> None:
    (_, usual_signed), (_, direct_signed) = both
    calls = len(_calls({n: None for n in ("dynamodb", "sqs", "stepfunctions", "ses", "secretsmanager")}))
    assert usual_signed >= calls  # every call, and the queue URL look-ups some of them make
    assert direct_signed == 0


def test_after_the_undo_calls_take_the_usual_path_again() -> None:
    with mock_aws():
        uninstall = moto_direct.install()
        client = boto3.client("sqs", region_name=REGION)
        client.create_queue(QueueName="q")
        uninstall()
        signed: list[str] = []
        client.meta.events.register("request-created", lambda request, **_: signed.append(request.url))
        assert client.list_queues()["QueueUrls"]
        assert signed  # the request was prepared (and signed) as usual
