"""Step Functions -> Lambda, in-process: moto's ASL interpreter calls our handlers through Lambda's API.

moto's interpreter invokes Lambda through ``lambda_eval_utils.boto_client_for(...).invoke(**params)``
for both the direct function-ARN task form and ``arn:aws:states:::lambda:invoke[.waitForTaskToken]``.
The bridge swaps that factory for one whose Lambda client answers the Invoke API from
:class:`~interlock.local.functions.LocalLambda`: ``StatusCode`` 200, ``FunctionError: "Unhandled"`` and
the runtime's error document when the handler raised. That is the protocol Step Functions itself sees,
so Retry/Catch on an error name (``CrmUnavailable``, ``States.Timeout``, ...) behaves as deployed.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from interlock.local.functions import LocalLambda

_install_lock = threading.Lock()
_installed: list[Callable[..., Any]] = []  # the original factory while a bridge is installed


class LocalLambdaClient:
    """The slice of a boto3 Lambda client that moto's interpreter uses: ``invoke``."""

    def __init__(self, functions: LocalLambda) -> None:
        self.functions = functions

    def invoke(self, FunctionName: str, Payload: bytes | str | None = None,
               InvocationType: str = "RequestResponse", **_: Any) -> dict[str, Any]:
        try:
            self.functions.resolve(FunctionName)
        except KeyError:
            raise _not_found(FunctionName) from None
        event = _event(Payload)
        if InvocationType == "Event":
            threading.Thread(target=self.functions.invoke, args=(FunctionName, event), daemon=True).start()
            return {"StatusCode": 202, "Payload": io.BytesIO(b"")}
        invocation = self.functions.invoke(FunctionName, event)
        response: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "Payload": io.BytesIO(invocation.response_payload()),
            "ResponseMetadata": {"RequestId": invocation.request_id, "HTTPStatusCode": 200},
        }
        if not invocation.ok:
            response["FunctionError"] = "Unhandled"
        return response


def install(functions: LocalLambda) -> Callable[[], None]:
    """Route moto's Lambda invocations to ``functions``; returns the function that undoes it."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    client = LocalLambdaClient(functions)
    with _install_lock:
        if _installed:
            raise RuntimeError("a local Step Functions -> Lambda bridge is already installed in this process")
        original = lambda_eval_utils.boto_client_for
        _installed.append(original)

        def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            if service == "lambda":
                return client
            return original(region=region, service=service, state_credentials=state_credentials)

        lambda_eval_utils.boto_client_for = boto_client_for

    def uninstall() -> None:
        with _install_lock:
            if _installed and lambda_eval_utils.boto_client_for is boto_client_for:
                lambda_eval_utils.boto_client_for = _installed.pop()

    return uninstall


def _event(payload: bytes | str | None) -> Any:
    if payload is None or payload in (b"", ""):
        return {}
    text = payload.decode() if isinstance(payload, bytes) else payload
    return json.loads(text)


def _not_found(function_name: str) -> ClientError:
    """What Lambda answers for an unknown function; Step Functions reports it as Lambda.ResourceNotFoundException."""
    response: Any = {
        "Error": {"Code": "ResourceNotFoundException", "Message": f"Function not found: {function_name}"},
        "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": str(uuid.uuid4())},
    }
    return ClientError(response, "Invoke")
