"""Deterministic rules that send a run to a human, whatever the decision layer said."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from interlock.decisions import Classification
from interlock.outgoing import OutsiderPart

RISKY_CATEGORIES = frozenset({"refund", "legal", "security"})

# What outsider text in a reply (a model's paragraphs, the customer's subject or name, a CRM field) may not say
# without a person reading it first. The prompt and the policies forbid these to a model; this is the
# deterministic check behind them (a ticket can try to steer a model, never this), and the same rules hold for
# every outsider part. Vetted templates are not checked. A false alarm costs an approval; a miss sends a
# promise, or a customer's own link, to a customer.
DRAFT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("amount", re.compile(r"[$€£¥]\s?\d|\b\d[\d.,]*\s?(usd|eur|gbp|dollars?|euros?|pounds?|cents?)\b", re.I)),
    ("link", re.compile(r"https?://|\bwww\.|[\w.+-]+@[\w-]+\.[\w.-]+|\b[\w-]+\.(com|net|org|io|co)\b", re.I)),
    ("commitment", re.compile(
        r"\b(refund(s|ed)?|reimburs\w*|credit(s|ed)?|compensat\w*|guarantee\w*|promise\w*|waive\w*)\b"
        r"|\b(within|in)\s+(\d+|an?|one|two|three|four|five|six|seven|a few|\w+)\s+(business\s+|working\s+)?"
        r"(minutes?|hours?|days?|weeks?|months?)\b"
        r"|\b(by|before|on)\s+(monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight)\b",
        re.I)),
)


def text_findings(text: str) -> list[str]:
    """The name of every rule ``text`` trips (``amount``, ``link``, ``commitment``)."""
    return [name for name, pattern in DRAFT_RULES if pattern.search(text)]


def outsider_findings(parts: list[OutsiderPart]) -> list[str]:
    """``outsider_text:<part>:<rule>`` for every rule each outsider part of a reply trips, once each."""
    found: list[str] = []
    for part in parts:
        for rule in text_findings(part.text):
            reason = f"outsider_text:{part.part}:{rule}"
            if reason not in found:
                found.append(reason)
    return found


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
        reason = _escalated(decision)
        # A classification below the threshold is already the low_confidence reason above.
        if reason and not (decision is classification.decision and reason.endswith(":low_confidence")):
            reasons.append(reason)
    reasons += outsider_findings(outsider or [])
    return GuardrailResult(requires_approval=bool(reasons), reasons=reasons, min_confidence=min_confidence)
