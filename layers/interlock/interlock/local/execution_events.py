"""An execution watch's EventBridge rule, emulated: Step Functions' execution status changes as events.

On AWS, Step Functions puts a "Step Functions Execution Status Change" event on the default event bus
whenever a Standard execution changes status, and the watch's rule sends the matching ones to its function.
moto runs the state machines but emits no events, so for each topology
:class:`~interlock.topology.ExecutionWatch` this polls the watched state machines' executions
(:class:`EndedExecutions`, from moto's own record of them), and for each one that ended in a watched status
and has not been announced yet builds the event as AWS shapes it (:func:`status_change_event`, from
``DescribeExecution``) and invokes the watch's function through the local Lambda runtime.

Delivery follows the deployed target: the function is invoked asynchronously (here: from the poller's own
thread), and a failed invocation is tried again, ``1 + async_retry_attempts`` times in all (on the next
polls, without Lambda's minutes of backoff), after which Lambda's invocation record goes to the watch's
DLQ, shaped as Lambda's on-failure destination sends it.

What it remembers lives in memory: a new runtime is a new moto with no executions but those it resumed from
the saved state (:mod:`interlock.local.persistence`), which are new executions there, announced once when they
end; the executions the runtime stops on its way out are never announced (the watches stop first).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from interlock.local import get_logger
from interlock.local.functions import Invocation
from interlock.local.polling import Poller
from interlock.topology import ExecutionWatch

log = get_logger(__name__)

DETAIL_TYPE = "Step Functions Execution Status Change"
SOURCE = "aws.states"
Invoke = Callable[[str, Any], Invocation]


def _millis(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _iso_seconds(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_change_event(execution: Mapping[str, Any], region: str, account: str,
                        event_id: str | None = None) -> dict[str, Any]:
    """The EventBridge event for an execution, from ``DescribeExecution``'s answer (boto3's shape).

    The envelope is EventBridge's (``version`` "0", ``time`` to the second, ``resources`` the execution);
    the ``detail`` is the execution with its dates in epoch milliseconds, ``inputDetails`` and
    ``outputDetails`` where there is an input or output, and ``error`` and ``cause`` (null unless it failed).
    """
    stopped = execution.get("stopDate")
    input_ = execution.get("input")
    output = execution.get("output")
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account,
        "time": _iso_seconds(stopped or datetime.now(UTC)),
        "region": region,
        "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "startDate": _millis(execution.get("startDate")),
            "stopDate": _millis(stopped),
            "input": input_,
            "inputDetails": {"included": True} if input_ is not None else None,
            "output": output,
            "outputDetails": {"included": True} if output is not None else None,
            "error": execution.get("error"),
            "cause": execution.get("cause"),
            "redriveCount": execution.get("redriveCount", 0),
        },
    }


# What an Express execution's log group holds when it ends unsuccessfully (its log level ERROR).
LOG_EVENT_TYPES = {"FAILED": "ExecutionFailed", "TIMED_OUT": "ExecutionTimedOut", "ABORTED": "ExecutionAborted"}


def logs_subscription_event(execution: Mapping[str, Any], log_group: str, account: str) -> dict[str, Any]:
    """What a CloudWatch Logs subscription filter delivers to a Lambda function for an Express execution's
    end: ``{"awslogs": {"data": base64(gzip(JSON))}}`` with one log event, the execution's log record."""
    import base64
    import gzip

    stopped = execution.get("stopDate") or datetime.now(UTC)
    record = {
        "id": "1",
        "type": LOG_EVENT_TYPES[execution["status"]],
        "details": {"error": execution.get("error"), "cause": execution.get("cause")},
        "previous_event_id": "0",
        "event_timestamp": str(_millis(stopped)),
        "execution_arn": execution["executionArn"],
        "redrive_count": str(execution.get("redriveCount", 0)),
    }
    message = {
        "messageType": "DATA_MESSAGE",
        "owner": account,
        "logGroup": log_group,
        "logStream": f"states/{execution['name']}/{uuid.uuid4().hex}",
        "subscriptionFilters": ["interlock-express-failures"],
        "logEvents": [{"id": uuid.uuid4().hex, "timestamp": _millis(stopped), "message": json.dumps(record)}],
    }
    data = base64.b64encode(gzip.compress(json.dumps(message).encode())).decode()
    return {"awslogs": {"data": data}}


def invocation_record(event: dict[str, Any], invocation: Invocation, function_arn: str,
                      attempts: int) -> dict[str, Any]:
    """What Lambda sends an on-failure destination once an asynchronous invocation's retries are spent."""
    error = invocation.error
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": invocation.request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": error.payload() if error else invocation.payload,
    }


class EndedExecutions:
    """The executions of some state machines that have ended since the last :meth:`poll`, read from moto's
    Step Functions backend: the emulated service's own record of its executions, as AWS's event source reads
    its own. Each poll looks only at the executions started since the last one and those still running, so its
    cost follows the executions in flight, not every execution the runtime has run (``ListExecutions`` with a
    status filter, which this replaced, answered every stopped execution at every poll, serialised)."""

    def __init__(self, state_machine_arns: list[str], region: str, account: str) -> None:
        self.arns = list(state_machine_arns)
        self.region = region
        self.account = account
        self._seen: dict[str, tuple[int, int]] = {}  # arn -> (id of its executions list, how many seen)
        self._running: list[Any] = []

    def _machines(self) -> Iterator[Any]:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        wanted = set(self.arns)
        for machine in list(stepfunctions_parser_backends[self.account][self.region].state_machines):
            if machine.arn in wanted:
                yield machine

    def poll(self) -> list[Any]:
        """moto's execution objects (``exec_arn``, ``status``, ``stop_date``) that ended since the last poll."""
        for machine in self._machines():
            executions = machine.executions
            list_id, seen = self._seen.get(machine.arn, (id(executions), 0))
            if list_id != id(executions) or seen > len(executions):
                seen = 0  # a new backend (the runtime restarted moto): every execution is new
            fresh = executions[seen:]
            self._seen[machine.arn] = (id(executions), seen + len(fresh))
            self._running.extend(fresh)
        ended = [execution for execution in self._running if status(execution) != "RUNNING"]
        if ended:
            self._running = [execution for execution in self._running if status(execution) == "RUNNING"]
        return ended


def status(execution: Any) -> str:
    """A moto execution's status; one created and not started yet is running."""
    current = execution.exec_status
    return "RUNNING" if current is None else str(current.value)


class ExecutionStatusEvents(Poller):
    """One watch's rule: :meth:`poll_once` announces what stopped since the last poll, :meth:`start` loops it."""

    def __init__(self, watch: ExecutionWatch, state_machine_arns: Mapping[str, str], invoke: Invoke, sfn: Any,
                 sqs: Any, dlq_url: str, function_arn: str, region: str, account: str,
                 idle_seconds: float = 0.5) -> None:
        watched = (*watch.state_machines, *watch.express_state_machines)
        missing = sorted(set(watched) - set(state_machine_arns))
        if missing:
            raise KeyError(f"execution watch {watch.name!r} watches state machines that do not exist: {missing}")
        super().__init__(f"watch-{watch.name}", idle_seconds)
        self.watch = watch
        self.arns = [state_machine_arns[name] for name in watched]
        self.express = {state_machine_arns[name] for name in watch.express_state_machines}
        self.invoke = invoke
        self.sfn = sfn
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.function_arn = function_arn
        self.region = region
        self.account = account
        self._ended = EndedExecutions(self.arns, region, account)
        self._done: set[tuple[str, str]] = set()
        self._pending: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}  # event, failed attempts

    @property
    def announced(self) -> frozenset[str]:
        """The executions whose event has been handled (delivered, or dead-lettered after its retries)."""
        done = frozenset(self._done)  # one C-level copy: the poller's thread may be adding to it
        return frozenset(arn for arn, _ in done)

    def poll_once(self) -> int:
        """Deliver an event for each execution that stopped in a watched status; the number of invocations."""
        ended = list(self._stopped())
        invoked = 0
        for key in [*self._pending, *ended]:  # a failed delivery is tried again at the next poll
            if self.stopping:
                break
            if key in self._done:
                continue
            self._deliver(key)
            invoked += 1
        return invoked

    def _stopped(self) -> Iterator[tuple[str, str]]:
        """The key (ARN, stop date) of each execution that ended in a watched status since the last poll."""
        for execution in self._ended.poll():
            if status(execution) in self.watch.statuses:
                yield execution.exec_arn, str(execution.stop_date)

    def _deliver(self, key: tuple[str, str]) -> None:
        if key in self._pending:  # a retry delivers the same event, id included
            event, failures = self._pending[key]
        else:
            described = self.sfn.describe_execution(executionArn=key[0])
            if described["stateMachineArn"] in self.express:
                name = described["stateMachineArn"].rsplit(":", 1)[-1]
                event = logs_subscription_event(described, f"/aws/vendedlogs/states/{name}", self.account)
            else:
                event = status_change_event(described, self.region, self.account)
            failures = 0
        invocation = self.invoke(self.watch.function, event)
        if invocation.ok:
            self._pending.pop(key, None)
            self._done.add(key)
            return
        failures += 1
        if failures <= self.watch.async_retry_attempts:
            self._pending[key] = (event, failures)
            return
        self._pending.pop(key, None)
        self._done.add(key)
        record = invocation_record(event, invocation, self.function_arn, failures)
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps(record))
        log.warning("%s failed %d times on the end event of %s; its invocation record is in %s",
                    self.watch.function, failures, key[0], self.watch.dlq_name)
