"""What a decision point declares and what deciding it returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field


class DecisionOutput(BaseModel):
    """Every decision's output carries how sure the model is and why."""

    confidence: float = Field(ge=0, le=1)
    reasoning: str = Field(max_length=2000)


OutT = TypeVar("OutT", bound=DecisionOutput)


class Outcome(StrEnum):
    """How one attempt ended (``ok`` only when the answer passed every deterministic check)."""

    OK = "ok"
    INVALID_OUTPUT = "invalid_output"
    REFUSAL = "refusal"
    DISALLOWED_ACTION = "disallowed_action"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    ERROR = "error"


class Escalation(StrEnum):
    """Why a decision goes to a human instead of being acted on."""

    LOW_CONFIDENCE = "low_confidence"
    ALL_TIERS_FAILED = "all_tiers_failed"
    BUDGET_EXCEEDED = "budget_exceeded"
    NO_TIME_LEFT = "no_time_left"
    CONTEXT_TOO_LARGE = "context_too_large"


@dataclass(frozen=True)
class DecisionPoint(Generic[OutT]):
    """One place where a model helps decide.

    A decision point belongs to a workflow package, ``folder`` (``Path(__file__).parent`` of the module that
    declares it). ``prompt`` names the prompt file (``<folder>/prompts/<prompt>.v<N>.md``, the highest version
    unless ``prompt_version`` pins one); ``policy`` names the workflow's domain rules
    (``<folder>/policies/<policy>.md``, unless the operator's ``ai_policy_dir`` holds a file of that name).
    ``offline`` is the deterministic answer used when no model is configured: the same output schema, computed
    from the request layer. ``allowed_actions`` is the allowlist for "pick the next step" decisions whose output
    has an ``action`` field.
    """

    name: str
    prompt: str
    policy: str
    output: type[OutT]
    min_confidence: float
    offline: Callable[[Mapping[str, Any]], OutT]
    # The workflow package's folder: its prompts/ and policies/ hold this point's files. An operator's
    # ai_policy_dir still replaces the policy when it holds a file of that name.
    folder: Path
    prompt_version: int | None = None
    # The model tiers to try, in order; empty: the ai_model_tiers setting.
    tiers: tuple[str, ...] = ()
    allowed_actions: tuple[str, ...] = ()
    max_output_tokens: int = 600

    def __post_init__(self) -> None:
        # A "pick the next step" point with no allowlist would accept every action: declare one or fail here.
        if "action" in self.output.model_fields and not self.allowed_actions:
            raise ValueError(f"decision point {self.name!r} picks an action but allows none: set allowed_actions")


class Attempt(BaseModel):
    """One call to a model, as the timeline shows it."""

    decision: str
    tier: int
    provider: str
    model: str  # the tier's model, as configured
    reported_model: str | None = None  # what the endpoint says answered (a dated snapshot, say)
    # The tokens are the estimate of what was sent (a timed-out call may still be billed), not a provider's count.
    usage_estimated: bool = False
    try_in_tier: int
    prompt_version: str
    prompt_hash: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    latency_ms: int = 0
    outcome: Outcome
    validation_errors: list[str] = Field(default_factory=list)
    output: str | None = None  # the model's raw answer (stored on the timeline, never logged)
    retry_after_seconds: float | None = None


@dataclass(frozen=True)
class Decision(Generic[OutT]):
    """What deciding returned: the validated output, or why a human must decide (or both, when the output is
    valid but not confident enough)."""

    name: str
    output: OutT | None
    provider: str
    model: str | None
    tier: int | None
    prompt_version: str
    prompt_hash: str
    attempts: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    escalation: Escalation | None = None
    last_errors: tuple[str, ...] = ()

    @property
    def decided_by(self) -> str:
        """``offline`` for the offline provider, else ``<provider>:<model>``; ``human`` when nothing was decided."""
        if self.output is None:
            return "human"
        return "offline" if self.provider == "offline" else f"{self.provider}:{self.model}"

    def summary(self) -> dict[str, Any]:
        """What the workflow carries on (and the approval page shows) about how this was decided."""
        return {
            "decision": self.name,
            "decided_by": self.decided_by,
            "tier": self.tier,
            "prompt_version": self.prompt_version,
            "attempts": self.attempts,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": round(self.cost_usd, 6),
            "escalation": self.escalation.value if self.escalation else None,
            "last_errors": list(self.last_errors),
        }
