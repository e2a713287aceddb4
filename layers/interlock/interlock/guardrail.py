"""Deterministic rules that send a run to a human, whatever the decision layer said."""

from __future__ import annotations

from pydantic import BaseModel

from interlock.decisions import Classification

RISKY_CATEGORIES = frozenset({"refund", "legal", "security"})


class GuardrailResult(BaseModel):
    requires_approval: bool
    reasons: list[str]
    min_confidence: float


def evaluate(classification: Classification, min_confidence: float) -> GuardrailResult:
    reasons = []
    if classification.confidence < min_confidence:
        reasons.append(f"low_confidence:{classification.confidence:.2f}<{min_confidence:.2f}")
    if classification.category in RISKY_CATEGORIES:
        reasons.append(f"risky_category:{classification.category}")
    return GuardrailResult(requires_approval=bool(reasons), reasons=reasons, min_confidence=min_confidence)
