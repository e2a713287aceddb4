"""The safety net under the workflows: an execution that ended outside every Catch still ends its run.

A state machine's Catch blocks record a failing step's reason (``RecordFailure``), but some endings are
out of their reach: ``States.Runtime`` and ``States.DataLimitExceeded`` (which ``States.ALL`` does not
catch), the recorder task itself failing after its retries, an operator aborting the execution, or a
Standard execution timing out. Left alone, such a run would stay ``processing`` forever.

Step Functions emits an EventBridge "Step Functions Execution Status Change" event for every Standard
execution that stops. The topology's :class:`~interlock.topology.ExecutionWatch` routes the FAILED,
TIMED_OUT and ABORTED ones to this logic, which records a ``failed`` entry (step ``execution``) on the run
named by the execution, with a reason saying how it ended:

=============  ========================
status         reason
=============  ========================
FAILED         ``execution_failed``
TIMED_OUT      ``execution_timed_out``
ABORTED        ``execution_aborted``
=============  ========================

An execution that failed in the workflow's own terminal ``Fail`` state (error :data:`RUN_FAILED`) was
already recorded by ``RecordFailure`` and is skipped. A redelivered event adds nothing: the entry is
written once per execution (and per redrive), by a conditional write. A run that is already terminal
gets the entry but keeps its status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from interlock.errors import RUN_FAILED
from interlock.models import EntryState, TimelineEntry
from interlock.observability import count, logger
from interlock.timeline import RecordOnce, TimelineStore

DETAIL_TYPE = "Step Functions Execution Status Change"
SOURCE = "aws.states"
STEP = "execution"
CAUSE_LIMIT = 500  # characters of the execution's cause kept on the timeline

REASONS: dict[str, str] = {
    "FAILED": "execution_failed",
    "TIMED_OUT": "execution_timed_out",
    "ABORTED": "execution_aborted",
}


class Outcome(StrEnum):
    RECORDED = "recorded"  # a failed entry, and the run is now failed
    KEPT_STATUS = "kept_status"  # a failed entry, but the run was already terminal and keeps its status
    DUPLICATE = "duplicate"  # this execution's ending is on the timeline already: nothing written
    ALREADY_RECORDED = "already_recorded"  # the workflow's RunFailed state: RecordFailure wrote it
    NOT_A_FAILURE = "not_a_failure"  # RUNNING, SUCCEEDED, ...: the workflow records those itself
    UNKNOWN_RUN = "unknown_run"  # an execution whose name is no run (started by hand): nothing written


class ExecutionStatusDetail(BaseModel):
    """The ``detail`` of the event: the execution as ``DescribeExecution`` shows it, dates in epoch ms."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    execution_arn: str = Field(alias="executionArn", min_length=1)
    state_machine_arn: str = Field(alias="stateMachineArn", min_length=1)
    name: str = Field(min_length=1)  # the run id: the router names each execution after its run
    status: str
    start_date: int | None = Field(default=None, alias="startDate")
    stop_date: int | None = Field(default=None, alias="stopDate")
    error: str | None = None
    cause: str | None = None
    redrive_count: int = Field(default=0, alias="redriveCount")


class ExecutionStatusChange(BaseModel):
    """An EventBridge "Step Functions Execution Status Change" event (source ``aws.states``)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    source: Literal["aws.states"]
    time: datetime
    detail: ExecutionStatusDetail


# An Express execution's end, as its log group records it (level ERROR), delivered by a subscription filter.
_LOG_STATUS = {"ExecutionFailed": "FAILED", "ExecutionTimedOut": "TIMED_OUT", "ExecutionAborted": "ABORTED"}
# A run's executions are named after it: "<run id>" and, for the automatic path resumed after a wait,
# "<run id>-resume".
RESUME_SUFFIX = "-resume"


def run_id_of(execution_name: str) -> str:
    return execution_name.removesuffix(RESUME_SUFFIX)


def from_logs(event: dict[str, Any]) -> list[ExecutionStatusChange]:
    """The execution endings in a CloudWatch Logs subscription event (``{"awslogs": {"data"}}``) of Express
    machines' log groups, as the EventBridge events Standard executions send."""
    import base64
    import gzip
    import json

    try:
        message = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ValueError(f"not a CloudWatch Logs subscription event: {type(exc).__name__}") from None
    changes = []
    for log_event in message.get("logEvents", []):
        record = json.loads(log_event["message"])
        status = _LOG_STATUS.get(record.get("type", ""))
        arn = str(record.get("execution_arn", ""))
        parts = arn.split(":")
        if status is None or len(parts) < 8:
            continue
        details = record.get("details") or {}
        stopped = int(record.get("event_timestamp") or log_event.get("timestamp") or 0)
        changes.append(ExecutionStatusChange.model_validate({
            "id": str(log_event.get("id", "")), "detail-type": DETAIL_TYPE, "source": SOURCE,
            "time": datetime.fromtimestamp(stopped / 1000, UTC),
            "detail": {"executionArn": arn, "stateMachineArn": ":".join([*parts[:5], "stateMachine", parts[6]]),
                       "name": parts[7], "status": status, "stopDate": stopped, "error": details.get("error"),
                       "cause": details.get("cause"), "redriveCount": int(record.get("redrive_count") or 0)},
        }))
    return changes


def truncate(text: str | None, limit: int = CAUSE_LIMIT) -> str | None:
    """``text`` cut to at most ``limit`` characters, the cut marked with an ellipsis."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def once_key(detail: ExecutionStatusDetail) -> str:
    """One timeline entry per execution ending: a redriven execution keeps its ARN but ends again."""
    return f"execution-status:{detail.execution_arn}:{detail.redrive_count}"


def record_execution_status(change: ExecutionStatusChange, store: TimelineStore) -> dict[str, Any]:
    detail = change.detail
    run_id = run_id_of(detail.name)
    logger.append_keys(correlation_id=run_id)
    reason = REASONS.get(detail.status)
    if reason is None:
        return {"run_id": run_id, "outcome": Outcome.NOT_A_FAILURE.value}
    if detail.status == "FAILED" and detail.error == RUN_FAILED:
        logger.info("the workflow recorded this failure itself", extra={"execution_arn": detail.execution_arn})
        return {"run_id": run_id, "outcome": Outcome.ALREADY_RECORDED.value}
    stopped = datetime.fromtimestamp(detail.stop_date / 1000, UTC) if detail.stop_date else None
    # Recorded now, like every entry, so it follows what the execution's steps wrote (EventBridge may deliver
    # late, after retries); when the execution stopped is in the details.
    entry = TimelineEntry(
        state=EntryState.FAILED,
        step=STEP,
        details={
            "reason": reason,
            "error": detail.error,
            "cause": truncate(detail.cause),
            "execution_arn": detail.execution_arn,
            "status": detail.status,
            "stopped_at": stopped.isoformat() if stopped else None,
        },
    )
    result = store.record_once(run_id, entry, once_key(detail))
    outcome = {
        RecordOnce.RECORDED: Outcome.RECORDED,
        RecordOnce.RECORDED_KEPT_STATUS: Outcome.KEPT_STATUS,
        RecordOnce.DUPLICATE: Outcome.DUPLICATE,
        RecordOnce.UNKNOWN_RUN: Outcome.UNKNOWN_RUN,
    }[result]
    if outcome is Outcome.UNKNOWN_RUN:
        logger.warning("an execution ended that belongs to no run", extra={"execution_arn": detail.execution_arn,
                                                                           "status": detail.status})
    elif outcome in (Outcome.RECORDED, Outcome.KEPT_STATUS):
        count("ExecutionFailuresRecorded")
        if outcome is Outcome.RECORDED:
            count("RunsFailed")
        logger.warning("a workflow execution ended outside its own recording", extra={
            "reason": reason, "error": detail.error, "execution_arn": detail.execution_arn, "outcome": outcome.value,
        })
    return {"run_id": run_id, "outcome": outcome.value, "reason": reason}
