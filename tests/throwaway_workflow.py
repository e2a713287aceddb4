"""A throwaway workflow package, written where a test wants it: the kit's contract, proved by a workflow that
no platform code knows. Two steps: ``check`` (validate: the event carries a message) and ``deliver`` (act: send it
through the helpdesk connector, once), triggered by the form event type ``throwaway.ping``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PACKAGE = "throwaway_ping_wf"
EVENT_TYPE = "throwaway.ping"

INIT = '''
from interlock.kit import Job, Step, Trigger, Workflow

WORKFLOW = Workflow(
    name="throwaway_ping",
    description="A throwaway workflow: check a ping, deliver it once",
    package=__name__,
    triggers=(Trigger("form", "throwaway.ping"),),
    steps=(
        Step("check", Job.VALIDATE, "throwaway_ping_wf.steps:check"),
        Step("deliver", Job.ACT, "throwaway_ping_wf.steps:deliver", entry="completed", connectors=("helpdesk",)),
    ),
)
'''

STEPS = '''
from pydantic import BaseModel

from interlock.errors import MissingData
from interlock.kit.context import StepContext
from interlock.models import Envelope
from interlock.steps import StepInput


class CheckInput(StepInput):
    envelope: Envelope


class Ping(BaseModel):
    message: str
    to: str


class DeliverInput(StepInput):
    ping: Ping


class Delivered(BaseModel):
    reply_id: str


def check(data: CheckInput, ctx: StepContext) -> Ping:
    fields = data.envelope.payload.get("data") or {}
    if not str(fields.get("message") or "").strip():
        raise MissingData("the ping has no message", step="check", fields=["message"])
    return Ping(message=str(fields["message"]), to=str(fields.get("to") or "ops@example.com"))


def deliver(data: DeliverInput, ctx: StepContext) -> Delivered:
    helpdesk = ctx.connector("helpdesk")
    return ctx.once("ping", lambda key: Delivered(
        reply_id=helpdesk.send_reply(data.run_id, data.ping.to, "Ping", data.ping.message)), Delivered)
'''


def _task(job: str, step: str, result: str | None, nxt: str | None, **params: str) -> dict:
    task = {
        "Type": "Task",
        "Resource": f"${{Worker_{job}}}",
        "Parameters": {"workflow": "throwaway_ping", "step": step, "run_id.$": "$.run_id",
                       "attempt.$": "$$.State.RetryCount", **params},
        "ResultPath": result,
        "Retry": [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.Unknown", "Sandbox.Timedout", "TransientError"],
                   "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0, "JitterStrategy": "FULL"}],
    }
    if nxt:
        task["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}]
        task["Next"] = nxt
    return task


AUTOMATIC = {
    "Comment": "A throwaway workflow's automatic path",
    "StartAt": "Check",
    "States": {
        "Check": _task("validate", "check", "$.ping", "Deliver", **{"envelope.$": "$.envelope"}),
        "Deliver": _task("act", "deliver", "$.delivery", "Done", **{"ping.$": "$.ping"}),
        "Done": {"Type": "Succeed"},
        "RecordFailure": {**_task("record", "record", "$.outcome", "Failed", kind="failed", **{"error.$": "$.error"}),
                          "Catch": []},
        "Failed": {"Type": "Fail", "Error": "RunFailed", "Cause": "recorded on the run's timeline"},
    },
}
del AUTOMATIC["States"]["RecordFailure"]["Catch"]


def redelivering() -> dict:
    """The automatic path with ``deliver`` run a second time, as an at-least-once execution may run it."""
    definition = json.loads(json.dumps(AUTOMATIC))
    states = definition["States"]
    states["Deliver"]["Next"] = "DeliverAgain"
    states["DeliverAgain"] = {**states["Deliver"], "Next": "Done", "ResultPath": "$.again"}
    return definition


def write(root: Path, redeliver: bool = False) -> Path:
    """The package under ``root`` (put ``root`` on ``sys.path`` or ``PYTHONPATH`` to import it); ``redeliver``:
    its state machine runs the ``deliver`` step twice for every run."""
    package = root / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(INIT)
    (package / "steps.py").write_text(STEPS)
    (package / "automatic.asl.json").write_text(json.dumps(redelivering() if redeliver else AUTOMATIC, indent=2))
    return package


@contextmanager
def importable(root: Path) -> Iterator[str]:
    """The package written under ``root`` and importable in this process, for as long as the block runs."""
    from interlock.kit import registry

    write(root)
    sys.path.insert(0, str(root))
    registry.clear()
    try:
        yield PACKAGE
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
        registry.clear()
