"""Actions a "pick the next step" decision may choose, as a discriminated union on ``action``.

The model proposes ``{"action": "create_task", "parameters": {...}, "reasoning": "..."}``; deterministic
code validates the parameters against the action's model and refuses any action that is not on the
decision point's allowlist. Nothing here executes an action: the workflow does, after the decision.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateTaskParameters(_Params):
    title: str = Field(min_length=1, max_length=200)
    assignee_team: Literal["support", "billing", "engineering", "legal", "security"]
    due_in_hours: int = Field(ge=1, le=24 * 14)


class SendReplyParameters(_Params):
    template: str = Field(min_length=1, max_length=60)


class EscalateParameters(_Params):
    team: Literal["support", "billing", "engineering", "legal", "security"]
    note: str = Field(max_length=500)


class TagRecordParameters(_Params):
    tag: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")


class CreateTask(BaseModel):
    action: Literal["create_task"]
    parameters: CreateTaskParameters
    reasoning: str


class SendReply(BaseModel):
    action: Literal["send_reply"]
    parameters: SendReplyParameters
    reasoning: str


class EscalateToHuman(BaseModel):
    action: Literal["escalate_to_human"]
    parameters: EscalateParameters
    reasoning: str


class TagRecord(BaseModel):
    action: Literal["tag_record"]
    parameters: TagRecordParameters
    reasoning: str


def _any_of(schema: dict[str, Any]) -> None:
    """Publish the union as ``anyOf``: pydantic writes a discriminated union as ``oneOf`` plus ``discriminator``,
    which OpenAI's strict structured outputs reject ("'oneOf' is not permitted"), and the SDK passes it on as it
    is. Each variant's ``action`` is a ``const``, so ``anyOf`` admits exactly the same answers; validation here
    stays discriminated (errors name the chosen action's fields only)."""
    if "oneOf" in schema:
        schema["anyOf"] = schema.pop("oneOf")
    schema.pop("discriminator", None)


# Every action Interlock knows; a decision point allows a subset of these names.
Action = Annotated[CreateTask | SendReply | EscalateToHuman | TagRecord,
                   Field(discriminator="action", json_schema_extra=_any_of)]
ACTION_NAMES = ("create_task", "send_reply", "escalate_to_human", "tag_record")


def disallowed(chosen: str, allowed: tuple[str, ...]) -> str | None:
    """Why ``chosen`` may not be executed at this decision point, or None when it may."""
    if chosen in allowed:
        return None
    return f"action {chosen!r} is not allowed here; choose one of: {', '.join(allowed)}"
