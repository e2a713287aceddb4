"""What a step's function may reach: :class:`StepContext`, built by the worker for each invocation.

A step is ``def step(data: SomeInput, ctx: StepContext) -> SomeOutput``. The context carries the run and step it
runs for, the time left, and the platform's services as the worker of its job may use them:

* ``ctx.decisions``: the AI decision runner (``decide`` workers only: the model key is theirs alone);
* ``ctx.connector(name)``: a connector the step declared (``Step.connectors``) and its job is granted;
* ``ctx.once(effect, do, model)``: a side effect done at most once per run, step and effect name, through the
  idempotency ledger (:mod:`interlock.kit.ledger`): ``do(key)`` is called with an idempotency key to pass on to
  the system it writes to; a repeat of the step (a redelivered task, a retried or restarted execution) gets the
  first call's result back without calling ``do`` again, and the timeline shows the skipped repeat;
* ``ctx.setting(name)``: a deployment setting the workflow declared (``Workflow.settings``);
* ``ctx.table(name)``: the physical name of a table the workflow declared (``Workflow.tables``), which the workers
  of its jobs may read and write (with their own DynamoDB client: ``interlock.aws.client("dynamodb")``);
* ``ctx.start_runs(follow_up, [(key, data), ...])``: start one run of the workflow's follow-up per key, once per
  key whatever repeats (:mod:`interlock.kit.follow_ups`); the step must name the follow-up (``Step.starts``);
* ``ctx.handoff_link(conversation, person, reason, ttl)``: a link to the workflow's hand-off page (notify workers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from interlock.ai.runner import DecisionRunner
    from interlock.handoffs import HandoffIssuer
    from interlock.kit.follow_ups import FollowUpMessage
    from interlock.kit.ledger import Ledger, PendingEffect
    from interlock.timeline import TimelineStore

R = TypeVar("R", bound=BaseModel)
T = TypeVar("T")


class NotGranted(PermissionError):
    """A step asked for what its job's worker may not use (a connector, the decision runner)."""


@dataclass
class Services:
    """What a worker provides to the steps it runs; a ``None`` is a service its job does not have."""

    timeline: TimelineStore
    ledger: Ledger | None = None
    decisions: Callable[[], DecisionRunner] | None = None
    connectors: Callable[[str], Any] | None = None
    settings: Callable[[str], str] | None = None
    tables: Callable[[str], str] | None = None
    # Sends follow-up messages to the ingest queue (the workers of jobs whose steps start runs)
    start: Callable[[list[FollowUpMessage], str], None] | None = None
    # Issues hand-off page links (the notify worker, when a workflow has a hand-off page)
    handoffs: Callable[[], HandoffIssuer] | None = None


@dataclass
class StepContext:
    run_id: str
    attempt: int
    workflow: str
    step: str
    deadline: float | None
    services: Services
    connectors: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    starts: tuple[str, ...] = ()
    handoff_page: bool = False  # the workflow declares a hand-off page (Workflow.handoff_page)
    # Filled by :meth:`once`: effects done now (confirmed with the step's entry) and repeats that were skipped.
    pending: list[PendingEffect] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def timeline(self) -> TimelineStore:
        return self.services.timeline

    @property
    def decisions(self) -> DecisionRunner:
        if self.services.decisions is None:
            raise NotGranted(f"step {self.workflow}.{self.step}: only the decide worker calls a model")
        return self.services.decisions()

    def connector(self, name: str) -> Any:
        if name not in self.connectors:
            raise NotGranted(f"step {self.workflow}.{self.step} did not declare the connector {name!r}")
        if self.services.connectors is None:
            raise NotGranted(f"step {self.workflow}.{self.step}: its worker has no connectors")
        return self.services.connectors(name)

    def setting(self, name: str) -> str:
        if name not in self.settings or self.services.settings is None:
            raise NotGranted(f"workflow {self.workflow!r} did not declare the setting {name!r}")
        return self.services.settings(name)

    def setting_as(self, name: str, read: Callable[[str], T]) -> T:
        """The setting ``name`` as ``read`` makes it of its text (the function the workflow's ``settings_check``
        uses too); a ValueError of ``read`` is :class:`NotConfigured` (``invalid_setting``) with its message."""
        from interlock.errors import NotConfigured

        try:
            return read(self.setting(name))
        except ValueError as exc:
            raise NotConfigured(str(exc), step=self.step, reason="invalid_setting", setting=name) from None

    def table(self, name: str) -> str:
        """The physical name of the workflow's table ``name``."""
        if name not in self.tables or self.services.tables is None:
            raise NotGranted(f"workflow {self.workflow!r} did not declare the table {name!r}")
        return self.services.tables(name)

    def start_runs(self, follow_up: str, items: list[tuple[str, dict[str, Any]]]) -> list[str]:
        """Start a run of the follow-up ``follow_up`` for each (key, data) in ``items`` (at most 500 a call): the
        ids of those runs, in order, whether they start now or had started before (the same key is one run)."""
        from interlock.kit.follow_ups import follow_up_run_id, messages

        if follow_up not in self.starts:
            raise NotGranted(f"step {self.workflow}.{self.step} does not declare that it starts {follow_up!r} "
                             "(Step.starts)")
        if self.services.start is None:
            raise NotGranted(f"step {self.workflow}.{self.step}: its worker may not start runs")
        batch = messages(self.workflow, follow_up, self.run_id, items, step=self.step)
        if batch:
            self.services.start(batch, self.step)
        return [follow_up_run_id(self.workflow, follow_up, key) for key, _ in items]

    def handoff_link(self, conversation: str, person: str, reason: str, ttl_seconds: int) -> str:
        """A new link to the workflow's hand-off page for ``conversation``, handed off by this run, for ``person``
        (to email them): it works while this hand-off lasts, at most ``ttl_seconds`` (:mod:`interlock.handoffs`)."""
        if not self.handoff_page:
            raise NotGranted(f"workflow {self.workflow!r} declares no hand-off page (Workflow.handoff_page)")
        if self.services.handoffs is None:
            raise NotGranted(f"step {self.workflow}.{self.step}: its worker issues no hand-off links")
        return self.services.handoffs().issue(self.workflow, conversation, self.run_id, person, reason, ttl_seconds)

    def once(self, effect: str, do: Callable[[str], R], model: type[R]) -> R:
        """``do(idempotency_key)`` at most once for this run, step and ``effect``; its result either way."""
        if self.services.ledger is None:
            raise NotGranted(f"step {self.workflow}.{self.step}: only act, notify and approve workers have effects")
        return self.services.ledger.once(self, effect, do, model)
