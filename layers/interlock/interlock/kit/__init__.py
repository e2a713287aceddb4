"""The workflow kit: what a workflow declares, and what the platform builds from the declaration.

A workflow is one package, ``interlock/workflows/<name>/``, whose ``__init__.py`` defines ``WORKFLOW``, a
:class:`Workflow`. The declaration is data (names, strings, file names) and imports nothing heavy: the router,
the topology and the CDK app read it, and only the worker that runs a step imports the step's code.

* Each :class:`Step` names its :class:`Job`, the kind of work it does. One Lambda function per job type (a
  *worker*, ``functions/job_<job>.py``) runs that kind of step for every workflow, with the permissions of that
  kind of job alone: only ``decide`` reads the model key, only ``act`` writes to systems of record, only
  ``notify`` and ``approve`` send mail. A Step Functions task names the worker and passes ``workflow``, ``step``
  and the step's input; the worker imports the step's function and runs it (:mod:`interlock.kit.worker`).
* A step is a plain function ``def step(data: SomeInput, ctx: StepContext) -> SomeOutput``: one pydantic model
  in (a :class:`~interlock.steps.StepInput`), one out. What it may reach is on the context
  (:class:`~interlock.kit.context.StepContext`): the decision runner, its connectors, the idempotency ledger.
* The workflow's automatic path is a Step Functions **Express** state machine (``automatic``); a wait for a
  human or an external event lives in a small **Standard** one (``wait``), started only when a run waits.
  Both are ASL files in the package, naming workers with ``${Worker_<job>}`` and each other with
  ``${StateMachine_automatic}`` / ``${StateMachine_wait}`` (docs/workflows.md).

Platform code never imports a workflow by name: :mod:`interlock.kit.registry` finds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Job(StrEnum):
    """The kinds of work a worker does, one Lambda function each."""

    VALIDATE = "validate"  # validate, extract, check by deterministic rules: no I/O but the timeline
    DECIDE = "decide"  # an AI decision point: the only job that reads the model key
    QUERY = "query"  # read from a connector (a CRM lookup, an enrichment)
    ACT = "act"  # write to a system of record, once (through the ledger)
    NOTIFY = "notify"  # send a message (email, Slack, WhatsApp), once (through the ledger)
    APPROVE = "approve"  # ask a person: store a one-time link and email it (the wait's task)
    RECORD = "record"  # record an outcome that is no step's success (failed, rejected, escalated, partial)
    WAIT = "wait"  # register a wait for an external event by its correlation key (the wait's task)


@dataclass(frozen=True)
class Trigger:
    """An event that starts the workflow: its webhook source and its event type (the routing table's key).

    ``correlation``, ``"module:function"`` from the event's payload to a correlation key (or None when the event
    has none): a run it starts owns that key, and while the run is open the key's next events of this trigger
    *join* it (an entry on its timeline) instead of starting a second run (:mod:`interlock.kit.correlation`).
    """

    source: str
    event_type: str
    correlation: str | None = None


@dataclass(frozen=True)
class Resumer:
    """An event that ends a run's wait for an external event: matched to the waiting run by its correlation key
    (``"module:function"``, payload -> key), or buffered under the key until the wait is registered. It never
    starts a run of its own (docs/finance.md, Waiting for an external event)."""

    source: str
    event_type: str
    correlation: str


@dataclass(frozen=True)
class Schedule:
    """A time the workflow runs at, as EventBridge Scheduler writes it: ``cron(min hour day-of-month month
    day-of-week year)`` or ``rate(<n> minute|minutes|hour|hours|day|days)``, in ``timezone`` (IANA). Each firing
    is an envelope of source ``schedule`` and type ``<workflow>.<name>``, deduplicated by its scheduled time."""

    name: str
    expression: str
    timezone: str = "UTC"
    description: str = ""


@dataclass(frozen=True)
class TableIndex:
    """A global secondary index of a workflow table (string keys, every attribute projected): what a step
    queries instead of scanning the table (the records of one status, by due date, say)."""

    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class DataTable:
    """A DynamoDB table of the workflow's own records (an invoice ledger, say): the stack creates it, with its
    stream on when a status change watches it, and its indexes. Its steps reach it by name (``StepContext.table``),
    and query it by key or by index: they may not scan it or batch, and delete items only when it says ``deletes``
    (a conversation's inbox, whose handled messages leave it: :mod:`interlock.kit.conversation`)."""

    name: str
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[TableIndex, ...] = ()
    deletes: bool = False


@dataclass(frozen=True)
class StatusChange:
    """When a record of the workflow's table ``table`` changes ``attribute`` from ``from_`` to ``to``: an envelope
    of source ``table`` and type ``<table>.<attribute>:<from_>-><to>``, deduplicated by the stream record's
    sequence number. Any other change is filtered out before it reaches the queue."""

    name: str
    table: str
    from_: str
    to: str
    attribute: str = "status"

    @property
    def event_type(self) -> str:
        return f"{self.table}.{self.attribute}:{self.from_}->{self.to}"


@dataclass(frozen=True)
class FollowUp:
    """A run the workflow's own steps start, one per ``key`` (a step that found what needs doing, for each thing
    it found: a past-due invoice, say). Each is an envelope of source ``workflow`` and type
    ``<workflow>.<name>``, deduplicated by its key, sent to the ingest queue and routed like any other trigger
    (:mod:`interlock.kit.follow_ups`). A step names the follow-ups it may start (``Step.starts``)."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class HandoffPage:
    """The page a person opens from a hand-off email's link (:mod:`interlock.handoffs`): the conversation in the
    workflow's ``table`` (a :mod:`interlock.kit.conversation` table) to read, a reply box and a hand-back button.
    A reply starts the workflow's follow-up ``reply`` (data: ``conversation``, ``text``, ``by``), the hand-back its
    follow-up ``hand_back`` (data: ``conversation``, ``by``); the workflow's steps act on them."""

    table: str
    reply: str
    hand_back: str


@dataclass(frozen=True)
class Step:
    """One task of the workflow: ``run`` is ``"module:function"``, imported by the worker on first use.

    ``entry`` is the timeline entry's state when the step succeeds (``processing``; ``completed`` for the step
    that ends a run; ``none`` for a step that records its own entries). ``summary``, also ``"module:function"``,
    turns the step's output into the entry's details (default: the whole output). ``connectors`` are the names
    (``interlock.kit.connectors``) the step may ask its context for; the worker of its job must be one the
    connector is granted to. ``starts`` names the workflow's follow-ups (:class:`FollowUp`) the step may start
    (``StepContext.start_runs``); its worker may then send to the ingest queue.
    """

    name: str
    job: Job
    run: str
    entry: str = "processing"
    summary: str | None = None
    connectors: tuple[str, ...] = ()
    starts: tuple[str, ...] = ()


# Steps every workflow has without declaring them (interlock.kit.outcomes): the outcome recorder, which the
# ASL's Catch blocks and end states call, and the wait's approval request.
PLATFORM_STEPS = (
    Step("record", Job.RECORD, "interlock.kit.outcomes:record", entry="none"),
    Step("request_approval", Job.APPROVE, "interlock.kit.outcomes:request_approval", entry="none"),
    Step("wait_for_event", Job.WAIT, "interlock.kit.correlation:wait_for_event", entry="none"),
)


@dataclass(frozen=True)
class RunSummary:
    """What an operator's list of runs shows of a run besides its status (``GET /runs``, ``interlock runs``): a
    short subject and the customer it concerns, as its workflow reads them from the event that started it. Both
    are searched by ``GET /runs?q=`` (case-insensitive). The platform trims each to ``MAX_SUMMARY_CHARS`` and drops
    control characters (interlock.run_list.checked_summary); None: the event has none."""

    subject: str | None = None
    customer: str | None = None


@dataclass(frozen=True)
class Workflow:
    """Everything the platform needs to know about one workflow, declared by its package."""

    name: str
    description: str
    package: str  # the import path of the workflow's package (its folder holds the ASL files)
    triggers: tuple[Trigger, ...]
    steps: tuple[Step, ...]
    automatic: str = "automatic.asl.json"  # the Express state machine: the run's automatic path
    wait: str | None = None  # the Standard state machine holding a wait, if the workflow ever waits
    # "module:function" building what an approver is shown (interlock.approval_pages.ApprovalView), if it waits
    approval_view: str | None = None
    # Deployment settings (interlock.topology.DeploymentSettings names) its steps read, given to its workers
    settings: tuple[str, ...] = ()
    # "module:function" checking those settings' values together, ``(Mapping[str, str]) -> list[str]``: a sentence
    # for each problem. `make run` and the synthesis refuse a deployment with any (interlock.kit.registry
    # .settings_problems), so a value its steps would refuse at run time never starts
    settings_check: str | None = None
    # Events that end its wait for an external event (matched by correlation key), never starting a run
    resumers: tuple[Resumer, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    tables: tuple[DataTable, ...] = ()
    status_changes: tuple[StatusChange, ...] = ()
    follow_ups: tuple[FollowUp, ...] = ()
    # The hand-off page behind the links its steps email (interlock.handoffs.issue), if they send any
    handoff_page: HandoffPage | None = None
    # "module:function" from the event that starts a run (an interlock.models.Envelope) to its RunSummary, read by
    # the router when it starts the run; None: its runs are listed without a subject or customer
    run_summary: str | None = None
    folder: Path | None = field(default=None, compare=False)  # set by the registry: where the package lives

    def step(self, name: str) -> Step:
        for step in (*self.steps, *PLATFORM_STEPS):
            if step.name == name:
                return step
        raise KeyError(f"workflow {self.name!r} has no step {name!r}")

    @property
    def jobs(self) -> tuple[Job, ...]:
        """The job types its steps use (and the approval's, when it waits), in declaration order."""
        found = dict.fromkeys(step.job for step in self.steps)
        found.setdefault(Job.RECORD)
        if self.wait:
            found.setdefault(Job.APPROVE)
        if self.resumers:
            found.setdefault(Job.WAIT)
        return tuple(found)

    def schedule(self, name: str) -> Schedule:
        for schedule in self.schedules:
            if schedule.name == name:
                return schedule
        raise KeyError(f"workflow {self.name!r} has no schedule {name!r}")

    def schedule_type(self, name: str) -> str:
        """The envelope type of the schedule ``name``'s firings (its routing key with source ``schedule``)."""
        return f"{self.name}.{self.schedule(name).name}"

    def follow_up_type(self, name: str) -> str:
        """The envelope type of the follow-up ``name``'s runs (its routing key with source ``workflow``)."""
        if not any(f.name == name for f in self.follow_ups):
            raise KeyError(f"workflow {self.name!r} has no follow-up {name!r}")
        return f"{self.name}.{name}"

    def definition_path(self, kind: str) -> Path:
        """The ASL file of ``kind`` (``automatic`` or ``wait``)."""
        if self.folder is None:
            raise RuntimeError(f"workflow {self.name!r} was not loaded through the registry")
        file = self.automatic if kind == "automatic" else self.wait
        if file is None:
            raise KeyError(f"workflow {self.name!r} has no {kind} state machine")
        return self.folder / file
