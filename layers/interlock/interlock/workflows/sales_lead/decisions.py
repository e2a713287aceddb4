"""The lead workflow's decision point: score a lead.

Declared for the AI decision layer (:mod:`interlock.ai`): a versioned prompt (``prompts/score_lead.v<N>.md``), the
domain policy (``policies/sales_lead.md``), an output schema with ``confidence`` and ``reasoning``, a confidence
threshold, and the deterministic offline answer (the scoring rules, :func:`interlock.workflows.sales_lead.rules
.rule_score`) used when no model is configured. Only the score step imports this module. Caps are applied by the
step after the decision, whoever decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from interlock.ai.decision import DecisionOutput, DecisionPoint
from interlock.workflows.sales_lead.rules import ScoreFacts, rule_score

Reason = Annotated[str, StringConstraints(min_length=1, max_length=120)]


class LeadScoreOutput(DecisionOutput):
    score: int = Field(ge=0, le=100)
    fit_reasons: list[Reason] = Field(default_factory=list, max_length=4)
    intent_reasons: list[Reason] = Field(default_factory=list, max_length=4)


def offline_score(request: Mapping[str, Any]) -> LeadScoreOutput:
    """The scoring rules over the same facts the model is shown (the request is :class:`ScoreFacts`)."""
    result = rule_score(ScoreFacts.model_validate(request))
    return LeadScoreOutput(score=result.score, fit_reasons=result.fit_reasons[:4],
                           intent_reasons=result.intent_reasons[:4], confidence=result.confidence,
                           reasoning="lead scoring rules (rules.rule_score)")


SCORE_LEAD: DecisionPoint[LeadScoreOutput] = DecisionPoint(
    name="score_lead",
    prompt="score_lead",
    policy="sales_lead",
    output=LeadScoreOutput,
    min_confidence=0.5,
    offline=offline_score,
    max_output_tokens=400,
    folder=Path(__file__).parent,
)
