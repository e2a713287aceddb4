"""The platform's own steps, which every workflow has without declaring them: ``record`` (an outcome that is no
step's success: failed, rejected, escalated, or a step the run continued without) and ``request_approval`` (the
wait's task: a hashed one-time link emailed to each approver of the pool, N of whom must approve)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlock.approvals import ApprovalRequestInput
from interlock.errors import parse_cause
from interlock.kit import Workflow
from interlock.kit.context import StepContext
from interlock.models import EntryState, TimelineEntry
from interlock.observability import count
from interlock.steps import StepInput

_OUTCOME_STATE = {
    "failed": EntryState.FAILED,
    "rejected": EntryState.REJECTED,
    "escalated": EntryState.ESCALATED,
}
_METRIC = {"failed": "RunsFailed", "rejected": "RunsRejected", "escalated": "RunsEscalated"}


class OutcomeInput(StepInput):
    kind: str = Field(pattern="^(partial|failed|rejected|escalated)$")
    continued_without: str | None = Field(default=None, max_length=80)  # partial: the step the run went on without
    error: dict[str, Any] | None = None
    approval: dict[str, Any] | None = None


def record(data: OutcomeInput, ctx: StepContext) -> dict[str, Any]:
    """Record the outcome on the run's timeline. ``partial``: the run goes on without what ``step`` failed to
    get (``continued_without``); the result (``{"found": false, "partial": true, "reason"}``) takes that step's
    place in the state."""
    store = ctx.timeline
    reason, details = parse_cause(data.error)
    if data.kind == "partial":
        store.record(
            data.run_id,
            TimelineEntry(state=EntryState.PROCESSING, step=data.continued_without or "unknown", attempt=data.attempt,
                          details={"partial": True, "reason": reason, "continued_without": data.continued_without,
                                   **details}),
        )
        return {"found": False, "partial": True, "reason": reason}
    if data.kind == "rejected":
        reason, details = "approver_rejected", {"approval": data.approval or {}}
    elif data.kind == "escalated" and reason == "timeout":
        reason = "approval_timed_out"
    store.record(
        data.run_id,
        TimelineEntry(state=_OUTCOME_STATE[data.kind], step="outcome", attempt=data.attempt,
                      details={"outcome": data.kind, "reason": reason, **details}),
    )
    count(_METRIC[data.kind])
    return {"outcome": data.kind, "reason": reason}


def request_approval(data: ApprovalRequestInput, ctx: StepContext) -> dict[str, Any]:
    """Store the request (how many different approvers must approve: ``approvers``, default 1) and a hashed
    one-time link for each approver of the pool, and email each their own (the wait's task token stays in the
    request's record, never in a link). A request asking more approvers than the pool names fails with
    ``NotEnoughApprovers``, which the wait's Catch records."""
    from interlock.approvals import SesMailer
    from interlock.kit import registry
    from interlock.wiring import approval_request_settings, approval_service

    shown = view_context(registry.workflow(ctx.workflow), data.context)
    if shown is not None:
        data = data.model_copy(update={"context": shown})
    return approval_service().request(data, approval_request_settings(), SesMailer())


def view_context(workflow: Workflow, context: dict[str, Any]) -> dict[str, Any] | None:
    """What an approval keeps of the wait's context: ``{"view": ...}``, the view the workflow's own code builds from
    its state (its ``approval_view``); None if the workflow has none."""
    from interlock.kit.worker import imported

    if not workflow.approval_view:
        return None
    return {"view": imported(workflow.approval_view)(context).model_dump(mode="json")}
