"""Deterministic rules that send a run to a human, whatever the decision layer said."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from interlock.decisions import Classification

RISKY_CATEGORIES = frozenset({"refund", "legal", "security"})


class GuardrailResult(BaseModel):
    requires_approval: bool
    reasons: list[str]
    min_confidence: float


def _escalated(decision: dict[str, Any] | None) -> str | None:
    """``ai_escalated:<decision>:<reason>`` when the AI decision layer handed this decision to a person."""
    if not decision or not decision.get("escalation"):
        return None
    return f"ai_escalated:{decision.get('decision', 'decision')}:{decision['escalation']}"


def evaluate(classification: Classification, min_confidence: float,
             draft_decision: dict[str, Any] | None = None) -> GuardrailResult:
    reasons = []
    if classification.confidence < min_confidence:
        reasons.append(f"low_confidence:{classification.confidence:.2f}<{min_confidence:.2f}")
    if classification.category in RISKY_CATEGORIES:
        reasons.append(f"risky_category:{classification.category}")
    for decision in (classification.decision, draft_decision):
        reason = _escalated(decision)
        # A classification below the threshold is already the low_confidence reason above.
        if reason and not (decision is classification.decision and reason.endswith(":low_confidence")):
            reasons.append(reason)
    return GuardrailResult(requires_approval=bool(reasons), reasons=reasons, min_confidence=min_confidence)
