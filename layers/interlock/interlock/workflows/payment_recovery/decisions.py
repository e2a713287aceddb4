"""The recovery's decision point: the dunning email's two paragraphs, in the tone the rules chose.

The model writes words only: the amount, the due date and Stripe's invoice link are placed by code
(:func:`rules.compose`), and the guardrail replaces a paragraph that states any of them itself. Offline, the vetted
template of the tone is the answer. Only the draft step imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from interlock.ai.decision import DecisionOutput, DecisionPoint
from interlock.workflows.payment_recovery.rules import TEMPLATES

TEMPLATE_CONFIDENCE = 0.9


class DunningDraftOutput(DecisionOutput):
    opening: str = Field(min_length=1, max_length=600)
    closing: str = Field(min_length=1, max_length=400)


def offline_draft(request: Mapping[str, Any]) -> DunningDraftOutput:
    tone = request.get("tone")
    opening, closing = TEMPLATES[tone if tone in TEMPLATES else "standard"]
    return DunningDraftOutput(opening=opening, closing=closing, confidence=TEMPLATE_CONFIDENCE,
                              reasoning=f"template {tone}")


DRAFT_DUNNING: DecisionPoint[DunningDraftOutput] = DecisionPoint(
    name="draft_dunning",
    prompt="draft_dunning",
    policy="payment_recovery",
    output=DunningDraftOutput,
    min_confidence=0.6,
    offline=offline_draft,
    max_output_tokens=400,
    folder=Path(__file__).parent,
)
