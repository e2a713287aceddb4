"""The triage workflow's guardrail: the deterministic rules that send a reply to a person before it is sent,
whatever the decisions said. Risky categories (in the classification or among its secondary categories), a
classification below the confidence threshold, a decision the AI layer handed to a person, and the outsider-text
rules over every part of the reply that no vetted template wrote (:mod:`interlock.guardrail`, shared by every
workflow)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from interlock.guardrail import escalation_reason, outsider_findings
from interlock.outgoing import OutsiderPart
from interlock.workflows.support_triage.rules import Classification

RISKY_CATEGORIES = frozenset({"refund", "legal", "security"})


class GuardrailResult(BaseModel):
    requires_approval: bool
    reasons: list[str]
    min_confidence: float


def evaluate(classification: Classification, min_confidence: float,
             draft_decision: dict[str, Any] | None = None,
             outsider: list[OutsiderPart] | None = None) -> GuardrailResult:
    """``outsider``: every part of the reply that no vetted template and no person wrote."""
    reasons = []
    if classification.confidence < min_confidence:
        reasons.append(f"low_confidence:{classification.confidence:.2f}<{min_confidence:.2f}")
    if classification.category in RISKY_CATEGORIES:
        reasons.append(f"risky_category:{classification.category}")
    # Every risk signal in the ticket, not only the winning category: a refund asked for in a billing ticket
    # is still a refund.
    for category in classification.secondary_categories:
        if category in RISKY_CATEGORIES and category != classification.category:
            reasons.append(f"risk_signal:{category}")
    for decision in (classification.decision, draft_decision):
        reason = escalation_reason(decision)
        # A classification below the threshold is already the low_confidence reason above.
        if reason and not (decision is classification.decision and reason.endswith(":low_confidence")):
            reasons.append(reason)
    reasons += outsider_findings(outsider or [])
    return GuardrailResult(requires_approval=bool(reasons), reasons=reasons, min_confidence=min_confidence)
