"""Step Functions -> Lambda, in-process: moto's ASL interpreter calls our handlers through Lambda's API.

moto's interpreter invokes Lambda through ``lambda_eval_utils.boto_client_for(...).invoke(**params)``
for both the direct function-ARN task form and ``arn:aws:states:::lambda:invoke[.waitForTaskToken]``.
The bridge swaps that factory for one whose Lambda client answers the Invoke API from
:class:`~interlock.local.functions.LocalLambda`: ``StatusCode`` 200, ``FunctionError: "Unhandled"`` and
the runtime's error document when the handler raised. That is the protocol Step Functions itself sees,
so Retry/Catch on an error name (``CrmUnavailable``, ``States.Timeout``, ...) behaves as deployed.

It also resumes executions a restart of the local runtime interrupted (:class:`ResumePlan`, registered with
:func:`resume` before ``StartExecution`` of the same name on the same state machine): the execution starts at
the state it was in (a copy of the definition whose ``StartAt`` is that state), and one that was waiting for a
callback (``.waitForTaskToken``) gets back the task token it had, without its Lambda being invoked again, so
the token the approval record holds (``SendTaskSuccess``/``SendTaskFailure``) reaches the resumed execution.

And it parses each definition once (:func:`parsed_program`), where moto would parse the ASL at every execution.
"""

from __future__ import annotations

import functools
import io
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from interlock.local.functions import LocalLambda

_install_lock = threading.Lock()
_installed: list[Callable[..., Any]] = []  # the original factory while a bridge is installed


@dataclass
class ResumePlan:
    """How to resume one interrupted execution (by its ARN, which its name and state machine determine)."""

    execution_arn: str
    definition: str  # the state machine's definition, StartAt the state it was in
    state: str  # that state
    task_token: str | None = None  # the token it was waiting with: reused, and its Lambda not invoked again


_plans_lock = threading.Lock()
_plans: dict[str, ResumePlan] = {}  # execution ARN -> its plan, until the execution has used it
_resumed_tokens: set[str] = set()  # tokens handed back whose Lambda invocation is to be skipped


def resume(plan: ResumePlan) -> None:
    """Register ``plan``; the next ``StartExecution`` that creates ``plan.execution_arn`` follows it."""
    with _plans_lock:
        _plans[plan.execution_arn] = plan


def wait_until_waiting(timeout: float = 10.0) -> bool:
    """Wait until every resumed execution that had a token waits for it again (so a callback sent with it
    now finds it); False if some did not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _plans_lock:
            if not _resumed_tokens and not any(plan.task_token for plan in _plans.values()):
                return True
        time.sleep(0.01)
    return False


def resume_definition(definition: str, state: str, timeout_seconds: int | None = None) -> str:
    """``definition`` starting at ``state``; with ``timeout_seconds``, that state's timeout replaced by it
    (what remains of the wait an interrupted execution had started)."""
    document = json.loads(definition)
    if state not in document.get("States", {}):
        raise KeyError(f"the definition has no top-level state {state!r}")
    document["StartAt"] = state
    if timeout_seconds is not None:
        task = document["States"][state]
        task.pop("TimeoutSecondsPath", None)
        task["TimeoutSeconds"] = max(1, int(timeout_seconds))
    return json.dumps(document)


def _plan_definition(execution_arn: str) -> str | None:
    with _plans_lock:
        plan = _plans.get(execution_arn)
        if plan is None:
            return None
        if plan.task_token is None:
            del _plans[execution_arn]  # nothing more to hand back
        return plan.definition


def _plan_token(execution_arn: str) -> str | None:
    """The token to hand back to the first task of a resumed execution that asks for one: the state it
    starts at (moto asks before it records the state's name in the context object)."""
    with _plans_lock:
        plan = _plans.get(execution_arn)
        if plan is None or plan.task_token is None:
            return None
        del _plans[execution_arn]
        _resumed_tokens.add(plan.task_token)
        return plan.task_token


def _take_resumed_token(payload: bytes | str | None) -> bool:
    """Whether ``payload`` carries a token handed back to a resumed execution (which is then forgotten)."""
    if not payload or not _resumed_tokens:
        return False
    text = payload.decode(errors="replace") if isinstance(payload, bytes) else payload
    with _plans_lock:
        for token in _resumed_tokens:
            if token in text:
                _resumed_tokens.discard(token)
                return True
    return False


class LocalLambdaClient:
    """The slice of a boto3 Lambda client that moto's interpreter uses: ``invoke``."""

    def __init__(self, functions: LocalLambda, on_change: Callable[[], None] | None = None) -> None:
        self.functions = functions
        self.on_change = on_change  # called when a step's invocation ends (the execution has moved on)

    def invoke(self, FunctionName: str, Payload: bytes | str | None = None,
               InvocationType: str = "RequestResponse", **_: Any) -> dict[str, Any]:
        try:
            self.functions.resolve(FunctionName)
        except KeyError:
            raise _not_found(FunctionName) from None
        if _take_resumed_token(Payload):
            # A resumed execution re-entering the wait it was in: its callback was requested before the
            # restart (the approval email is out, the record holds this token), so it only waits again.
            return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": io.BytesIO(b'{"resumed": true}')}
        event = _event(Payload)
        if InvocationType == "Event":
            threading.Thread(target=self.functions.invoke, args=(FunctionName, event), daemon=True).start()
            return {"StatusCode": 202, "Payload": io.BytesIO(b"")}
        invocation = self.functions.invoke(FunctionName, event)
        if self.on_change is not None:
            self.on_change()
        response: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "Payload": io.BytesIO(invocation.response_payload()),
            "ResponseMetadata": {"RequestId": invocation.request_id, "HTTPStatusCode": 200},
        }
        if not invocation.ok:
            response["FunctionError"] = "Unhandled"
        return response


class ServiceIntegrationClient:
    """A boto3 client as Step Functions' service integrations call it: with the API's own parameter names.

    An ASL task such as ``arn:aws:states:::states:startExecution`` passes ``StateMachineArn``, ``Name`` and
    ``Input`` (the API's member names, capitalised); boto3 wants ``stateMachineArn``, ``name``, ``input``. moto's
    interpreter hands the ASL's names to boto3 unchanged, which refuses them, so every such task failed with
    ``States.Runtime``. This maps each name onto the operation's member of the same name, case aside, as Step
    Functions does; the answer and the errors are boto3's own."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method) or name.startswith("_") or name in ("meta", "exceptions"):
            return method
        model = self._client.meta.service_model
        operation = next((op for op in model.operation_names if _snake(op) == name), None)
        if operation is None:
            return method
        shape = model.operation_model(operation).input_shape
        members = {m.lower(): m for m in (shape.members if shape is not None else {})}

        def call(**params: Any) -> Any:
            return method(**{members.get(key.lower(), key): value for key, value in params.items()})

        return call


def _snake(operation: str) -> str:
    from botocore import xform_name

    return str(xform_name(operation))


def install(functions: LocalLambda, on_change: Callable[[], None] | None = None) -> Callable[[], None]:
    """Route moto's Lambda invocations to ``functions``, and follow the registered :class:`ResumePlan`\\ s;
    returns the function that undoes it."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sfn
    from moto.stepfunctions.parser.asl.eval.states import ContextObject
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    client = LocalLambdaClient(functions, on_change)
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
        original_sfn_client = state_task_service_sfn.boto_client_for

        def sfn_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            return ServiceIntegrationClient(original_sfn_client(region=region, service=service,
                                                                state_credentials=state_credentials))

        state_task_service_sfn.boto_client_for = sfn_client_for

        original_entrypoint = ExecutionWorker._get_evaluation_entrypoint
        original_token = ContextObject.update_task_token

        def entrypoint(worker: Any) -> Any:
            definition = _plan_definition(worker._evaluation_details.execution_details.arn)
            if definition is None:
                definition = worker._evaluation_details.state_machine_details.definition
            return parsed_program(definition)

        def update_task_token(context: Any) -> str:
            data = context.context_object_data
            token = _plan_token(data.get("Execution", {}).get("Id", ""))
            if token is None:
                return str(original_token(context))
            data["Task"] = {"Token": token}
            return token

        ExecutionWorker._get_evaluation_entrypoint = entrypoint  # type: ignore[method-assign,assignment]
        ContextObject.update_task_token = update_task_token  # type: ignore[method-assign,assignment]

    def uninstall() -> None:
        with _install_lock:
            if _installed and lambda_eval_utils.boto_client_for is boto_client_for:
                lambda_eval_utils.boto_client_for = _installed.pop()
                state_task_service_sfn.boto_client_for = original_sfn_client
                ExecutionWorker._get_evaluation_entrypoint = original_entrypoint  # type: ignore[method-assign]
                ContextObject.update_task_token = original_token  # type: ignore[method-assign]
            with _plans_lock:
                _plans.clear()
                _resumed_tokens.clear()

    return uninstall


# -- the parsed program, once per definition ---------------------------------------------------------------------

PROGRAM_CACHE_SIZE = 64  # definitions (a state machine's, and each resumed execution's copy of it)


@functools.lru_cache(maxsize=PROGRAM_CACHE_SIZE)
def parsed_program(definition: str) -> Any:
    """moto's program for ``definition``, parsed once: moto would parse the ASL at every execution (ANTLR, about
    a tenth of a run's CPU). A program holds no execution's state (that lives in the execution's environment,
    the retry counters in its heap under each component's ``heap_key``), so executions share it; every heap key
    is made here, before any execution can race to make one."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    program = AmazonStateLanguageParser.parse(definition)[0]
    _make_heap_keys(program)
    return program


def _make_heap_keys(root: Any) -> None:
    from moto.stepfunctions.parser.asl.component.component import Component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    seen: set[int] = set()
    pending: list[Any] = [root]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, EvalComponent):
            _ = value.heap_key
        if isinstance(value, Component):
            pending.extend(vars(value).values())
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list | tuple | set | frozenset):
            pending.extend(value)


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
