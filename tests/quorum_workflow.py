"""A throwaway workflow package that waits for two different approvers (``approvers: 2`` in its wait's task),
written where a test wants it: the quorum approval through a workflow no platform code knows. ``check`` (validate:
the event carries a purchase) -> its wait asks two approvers -> ``done`` (validate, entry ``completed``) when
approved, the ``rejected`` outcome otherwise. Triggered by the form event type ``throwaway.purchase``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PACKAGE = "throwaway_quorum_wf"
EVENT_TYPE = "throwaway.purchase"
WORKFLOW_NAME = "throwaway_quorum"
APPROVERS = 2

INIT = '''
from interlock.kit import Job, Step, Trigger, Workflow

WORKFLOW = Workflow(
    name="throwaway_quorum",
    description="A throwaway workflow: a purchase two different people approve",
    package=__name__,
    triggers=(Trigger("form", "throwaway.purchase"),),
    steps=(
        Step("check", Job.VALIDATE, "throwaway_quorum_wf.steps:check"),
        Step("done", Job.VALIDATE, "throwaway_quorum_wf.steps:done", entry="completed"),
    ),
    wait="wait.asl.json",
    approval_view="throwaway_quorum_wf.steps:view",
)
'''

STEPS = '''
from typing import Any

from pydantic import BaseModel

from interlock.approval_pages import ApprovalView
from interlock.errors import MissingData
from interlock.kit.context import StepContext
from interlock.models import Envelope
from interlock.steps import StepInput


class CheckInput(StepInput):
    envelope: Envelope


class Purchase(BaseModel):
    item: str
    amount: str


class DoneInput(StepInput):
    purchase: Purchase


def check(data: CheckInput, ctx: StepContext) -> Purchase:
    fields = data.envelope.payload.get("data") or {}
    if not str(fields.get("item") or "").strip():
        raise MissingData("the purchase names no item", step="check", fields=["item"])
    return Purchase(item=str(fields["item"]), amount=str(fields.get("amount") or "0"))


class Bought(BaseModel):
    bought: str


def done(data: DoneInput, ctx: StepContext) -> Bought:
    return Bought(bought=data.purchase.item)


def view(context: dict[str, Any]) -> ApprovalView:
    purchase = context.get("purchase") or {}
    return ApprovalView(title="Approve this purchase?",
                        fields=[("Item", str(purchase.get("item", ""))), ("Amount", str(purchase.get("amount", "")))])
'''

_RETRY = [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.Unknown", "Sandbox.Timedout", "TransientError"],
           "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0, "JitterStrategy": "FULL"}]
_SFN_RETRY = [{"ErrorEquals": ["StepFunctions.AWSStepFunctionsException", "StepFunctions.ThrottlingException"],
               "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0, "JitterStrategy": "FULL"}]


def _params(step: str, **params: Any) -> dict[str, Any]:
    return {"workflow": WORKFLOW_NAME, "step": step, "run_id.$": "$.run_id", "attempt.$": "$$.State.RetryCount",
            **params}


def _record(kind: str, nxt: str, **params: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": "${Worker_record}", "Parameters": _params("record", kind=kind, **params),
            "ResultPath": "$.outcome", "Retry": _RETRY, "Next": nxt}


AUTOMATIC = {
    "Comment": "A throwaway workflow's automatic path: check, hand over to the wait, and go on from its decision",
    "StartAt": "Entry",
    "States": {
        "Entry": {"Type": "Choice", "Choices": [{"Variable": "$.entry", "StringEquals": "decision",
                                                 "Next": "Decided"}], "Default": "Check"},
        "Check": {"Type": "Task", "Resource": "${Worker_validate}",
                  "Parameters": _params("check", **{"envelope.$": "$.envelope"}), "ResultPath": "$.purchase",
                  "Retry": _RETRY, "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                                               "Next": "RecordFailure"}], "Next": "WaitForApproval"},
        "WaitForApproval": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                            "Parameters": {"StateMachineArn": "${StateMachine_wait}", "Name.$": "$.run_id",
                                           "Input": {"run_id.$": "$.run_id", "policy.$": "$.policy",
                                                     "purchase.$": "$.purchase"}},
                            "ResultPath": None, "Retry": _SFN_RETRY,
                            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                                       "Next": "RecordFailure"}], "Next": "Waiting"},
        "Waiting": {"Type": "Succeed"},
        "Decided": {"Type": "Choice", "Choices": [{"Variable": "$.approval.decision", "StringEquals": "approved",
                                                   "Next": "Done"}], "Default": "RecordRejected"},
        "Done": {"Type": "Task", "Resource": "${Worker_validate}",
                 "Parameters": _params("done", **{"purchase.$": "$.purchase"}), "ResultPath": "$.done",
                 "Retry": _RETRY, "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                                              "Next": "RecordFailure"}], "Next": "Completed"},
        "Completed": {"Type": "Succeed"},
        "RecordRejected": _record("rejected", "Rejected", **{"approval.$": "$.approval"}),
        "Rejected": {"Type": "Succeed"},
        "RecordFailure": _record("failed", "Failed", **{"error.$": "$.error"}),
        "Failed": {"Type": "Fail", "Error": "RunFailed", "Cause": "recorded on the run's timeline"},
    },
}


def wait(approvers: int = APPROVERS) -> dict[str, Any]:
    return {
        "Comment": "A throwaway workflow's wait (STANDARD): two different approvers, within the approval timeout",
        "StartAt": "RequestApproval",
        "States": {
            "RequestApproval": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "${Worker_approve}", "Payload": {
                    **_params("request_approval", **{"task_token.$": "$$.Task.Token"}),
                    "reasons": ["two_person_rule"], "approvers": approvers,
                    "context": {"purchase.$": "$.purchase"}}},
                "TimeoutSecondsPath": "$.policy.approval_timeout_seconds", "ResultPath": "$.approval",
                "Retry": [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.Unknown", "TransientError"],
                           "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0, "JitterStrategy": "FULL"}],
                "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "RecordEscalated"},
                          {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
                "Next": "Resume"},
            "Resume": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                       "Parameters": {"StateMachineArn": "${StateMachine_automatic}",
                                      "Name.$": "States.Format('{}-resume', $.run_id)",
                                      "Input": {"entry": "decision", "run_id.$": "$.run_id", "policy.$": "$.policy",
                                                "purchase.$": "$.purchase", "approval.$": "$.approval"}},
                       "ResultPath": None, "Retry": _SFN_RETRY,
                       "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
                       "End": True},
            "RecordEscalated": _record("escalated", "Escalated", **{"error.$": "$.error"}),
            "Escalated": {"Type": "Succeed"},
            "RecordFailure": _record("failed", "Failed", **{"error.$": "$.error"}),
            "Failed": {"Type": "Fail", "Error": "RunFailed", "Cause": "recorded on the run's timeline"},
        },
    }


def write(root: Path, approvers: int = APPROVERS) -> Path:
    """The package under ``root`` (put ``root`` on ``sys.path`` or ``PYTHONPATH`` to import it); its wait asks
    ``approvers`` different approvers."""
    package = root / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(INIT)
    (package / "steps.py").write_text(STEPS)
    (package / "automatic.asl.json").write_text(json.dumps(AUTOMATIC, indent=2))
    (package / "wait.asl.json").write_text(json.dumps(wait(approvers), indent=2))
    return package
