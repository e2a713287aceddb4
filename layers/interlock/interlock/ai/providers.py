"""The model port, and the offline provider that answers without a network.

A provider sends one call and reports what came back: the raw answer text (or a refusal) and the token
counts. It never validates: the runner does, against the decision's pydantic model, the same way for every
provider. Transport failures are :class:`ProviderFailure` with the attempt outcome they count as.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from interlock.ai.decision import Outcome


@dataclass(frozen=True)
class ModelCall:
    decision: str
    model: str
    messages: list[dict[str, str]]
    output: type[BaseModel]
    timeout_seconds: float
    max_output_tokens: int
    # The request layer as data, for a provider that does not read prompts (the offline one).
    request: Mapping[str, Any] = field(default_factory=dict)
    offline: Callable[[Mapping[str, Any]], BaseModel] | None = None
    # Streaming: called with each piece of the answer's text as it arrives (a provider that cannot stream answers
    # whole, and calls nothing). The whole answer is still what the runner validates.
    on_delta: Callable[[str], None] | None = None


@dataclass(frozen=True)
class ModelReply:
    text: str | None
    refusal: str | None
    tokens_in: int
    tokens_out: int
    model: str  # as the provider reports it (a dated snapshot, say)
    finish_reason: str | None = None


class ProviderFailure(Exception):
    """A call that brought back no answer. ``outcome`` is rate_limited, timeout or error; ``same_tier``
    says whether another try at the same model can help (a 401 or 404 cannot)."""

    def __init__(self, outcome: Outcome, message: str, *, retry_after: float | None = None,
                 same_tier: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        self.retry_after = retry_after
        self.same_tier = same_tier
        self.status = status


class ModelProvider(Protocol):
    name: str

    def complete(self, call: ModelCall) -> ModelReply: ...


class OfflineProvider:
    """Deterministic, no network: each decision point's own ``offline`` answer, as JSON text.

    It is the default when no API key is configured, so a laptop runs the whole workflow; its decisions are
    labelled ``offline`` on the timeline and cost nothing.
    """

    name = "offline"

    def complete(self, call: ModelCall) -> ModelReply:
        if call.offline is None:
            raise ProviderFailure(Outcome.ERROR, f"decision {call.decision!r} has no offline answer",
                                  same_tier=False)
        answer = call.offline(call.request)
        return ModelReply(text=json.dumps(answer.model_dump(mode="json")), refusal=None, tokens_in=0,
                          tokens_out=0, model="offline", finish_reason="stop")
