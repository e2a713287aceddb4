"""A worker: the Lambda function of one job type, running that kind of step for every workflow.

A task's event is ``{"workflow", "step", "run_id", "attempt", ...the step's input}`` (its ASL ``Parameters``).
The worker finds the workflow in the registry and the step in it, refuses a step of another job (a step never
borrows another kind of job's permissions), imports the step's function on first use, validates the input against
the function's input model, runs it with a :class:`~interlock.kit.context.StepContext`, and records the result on
the run's timeline: the step's entry (naming the effects it did, which confirms them), or, when every effect
was a repeat of one already done, a ``duplicate`` entry that shows the skipped repeat. Retryable failures leave
``retried`` entries, as :mod:`interlock.steps` describes.
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict

from interlock.errors import StepError
from interlock.kit import Job, Step, Workflow
from interlock.kit.context import Services, StepContext
from interlock.kit.ledger import EFFECTS
from interlock.models import EntryState, TimelineEntry
from interlock.observability import logger
from interlock.steps import StepInput, deadline, run_step


class TaskTarget(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    workflow: str
    step: str


class WrongWorker(StepError):
    reason = "wrong_worker"


@cache
def imported(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    function = getattr(importlib.import_module(module), name, None)
    if not callable(function):
        raise LookupError(f"{path!r} names no function")
    return typing.cast(Callable[..., Any], function)


@cache
def input_model(path: str) -> type[StepInput]:
    """The step function's input model: the annotation of its first parameter."""
    function = imported(path)
    hints = typing.get_type_hints(function)
    first = next(iter(p for p in function.__code__.co_varnames[: function.__code__.co_argcount]), None)
    model = hints.get(first) if first else None
    if not (isinstance(model, type) and issubclass(model, StepInput)):
        raise TypeError(f"step function {path!r}: its first parameter must be annotated with a StepInput model")
    return model


def resolve(job: Job, target: TaskTarget) -> tuple[Workflow, Step]:
    from interlock.kit import registry

    workflow = registry.workflow(target.workflow)
    step = workflow.step(target.step)
    if step.job is not job:
        raise WrongWorker(f"step {workflow.name}.{step.name} is a {step.job} step, not a {job} one",
                          step=step.name)
    return workflow, step


def run(job: Job, event: dict[str, Any], services: Services) -> dict[str, Any]:
    target = TaskTarget.model_validate(event)
    workflow, step = resolve(job, target)
    contexts: list[StepContext] = []

    def work(data: StepInput) -> Any:
        ctx = StepContext(run_id=data.run_id, attempt=data.attempt, workflow=workflow.name, step=step.name,
                          deadline=deadline(), services=services, connectors=step.connectors,
                          settings=workflow.settings, tables=tuple(t.name for t in workflow.tables),
                          starts=step.starts, handoff_page=workflow.handoff_page is not None)
        contexts.append(ctx)
        return imported(step.run)(data, ctx)

    def finish(data: StepInput, result: Any) -> dict[str, Any]:
        return _record(workflow, step, data, result, contexts[-1])

    return run_step(step.name, event, input_model(step.run), work, services.timeline, finish=finish)


def _record(workflow: Workflow, step: Step, data: StepInput, result: Any, ctx: StepContext) -> dict[str, Any]:
    """The step's entry, which names the effects it did (confirming them); a ``duplicate`` entry instead when every
    effect it asked for had been done before (the step had run already)."""
    if step.entry == "none":  # the step recorded its own entries
        return result if isinstance(result, dict) else result.model_dump(mode="json")
    if not isinstance(result, BaseModel):
        raise TypeError(f"step {workflow.name}.{step.name} returned {type(result).__name__}, not a pydantic model")
    store = ctx.timeline
    if ctx.skipped and not ctx.pending:
        store.record(data.run_id, TimelineEntry(
            state=EntryState.DUPLICATE, step=step.name, attempt=data.attempt,
            details={"reason": "already_done", "skipped": ctx.skipped,
                     "message": "this step had acted already; its effects were not repeated"}))
        return result.model_dump(mode="json")
    details = imported(step.summary)(result) if step.summary else result.model_dump(mode="json")
    if ctx.skipped:
        details = {**details, "skipped": ctx.skipped}
    if ctx.pending:  # the entry confirms the effects the step did (interlock.kit.ledger)
        details = {**details, EFFECTS: {p.effect: p.result for p in ctx.pending}}
    store.record(data.run_id, TimelineEntry(state=EntryState(step.entry), step=step.name, attempt=data.attempt,
                                            details=details))
    return result.model_dump(mode="json")


def handler(job: Job, services: Callable[[], Services]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler of ``job``'s worker: Powertools logging (correlation id = run id), metrics, tracing."""
    from interlock.observability import metrics, tracer
    from interlock.steps import lambda_context

    @logger.inject_lambda_context(correlation_id_path="run_id", clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False, capture_error=False)
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        logger.append_keys(workflow=event.get("workflow"), step=event.get("step"))
        with lambda_context(context):
            return run(job, event, services())

    return handle
