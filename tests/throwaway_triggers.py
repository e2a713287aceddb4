"""A throwaway workflow started by the triggers that are not webhooks: a daily schedule (07:30 in Berlin), a rate
schedule, a table of its own (``tickets``) and a status change on it (``open -> escalated``). One step, ``note``
(validate), records what started the run and the physical name of its table (``StepContext.table``); no platform
code knows the package."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PACKAGE = "throwaway_triggers_wf"
WORKFLOW = "throwaway_triggers"
TABLE = "tickets"
DAILY = "daily_check"
HOURLY = "hourly"
CHANGE_TYPE = "tickets.status:open->escalated"

INIT = '''
from interlock.kit import DataTable, Job, Schedule, StatusChange, Step, Workflow

WORKFLOW = Workflow(
    name="throwaway_triggers",
    description="A throwaway workflow: started by a schedule or by a ticket escalated in its table",
    package=__name__,
    triggers=(),
    steps=(Step("note", Job.VALIDATE, "throwaway_triggers_wf.steps:note", entry="completed"),),
    schedules=(Schedule("daily_check", "cron(30 7 * * ? *)", timezone="Europe/Berlin"),
               Schedule("hourly", "rate(1 hour)")),
    tables=(DataTable("tickets", partition_key="ticket_id"),),
    status_changes=(StatusChange("escalated", table="tickets", from_="open", to="escalated"),),
)
'''

STEPS = '''
from pydantic import BaseModel

from interlock.kit.context import StepContext
from interlock.models import Envelope
from interlock.steps import StepInput


class NoteInput(StepInput):
    envelope: Envelope


class Noted(BaseModel):
    source: str
    type: str
    table: str
    payload: dict


def note(data: NoteInput, ctx: StepContext) -> Noted:
    return Noted(source=data.envelope.source, type=data.envelope.type, table=ctx.table("tickets"),
                 payload=data.envelope.payload)
'''

AUTOMATIC = {
    "Comment": "A throwaway workflow's automatic path",
    "StartAt": "Note",
    "States": {
        "Note": {
            "Type": "Task",
            "Resource": "${Worker_validate}",
            "Parameters": {"workflow": WORKFLOW, "step": "note", "run_id.$": "$.run_id",
                           "attempt.$": "$$.State.RetryCount", "envelope.$": "$.envelope"},
            "ResultPath": "$.note",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
        "RecordFailure": {
            "Type": "Task",
            "Resource": "${Worker_record}",
            "Parameters": {"workflow": WORKFLOW, "step": "record", "run_id.$": "$.run_id",
                           "attempt.$": "$$.State.RetryCount", "kind": "failed", "error.$": "$.error"},
            "ResultPath": "$.outcome",
            "Next": "Failed",
        },
        "Failed": {"Type": "Fail", "Error": "RunFailed", "Cause": "recorded on the run's timeline"},
    },
}


def write(root: Path) -> Path:
    """The package under ``root`` (put ``root`` on ``sys.path`` or ``PYTHONPATH`` to import it)."""
    package = root / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(INIT)
    (package / "steps.py").write_text(STEPS)
    (package / "automatic.asl.json").write_text(json.dumps(AUTOMATIC, indent=2))
    return package


@contextmanager
def importable(root: Path) -> Iterator[str]:
    """The package written under ``root``, importable and registered (``INTERLOCK_EXTRA_WORKFLOWS`` must name it:
    the caller sets it) for as long as the block runs."""
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
