"""Deterministic checks a workflow's guardrail builds on, whatever the decision layer said: the outsider-text
rules (what a message's outsider parts may not say without a person reading it first) and a decision the AI
layer handed to a person. Each workflow's own rules (its risky categories, its thresholds) and its result model
are in its package; platform code: it names no workflow.
"""

from __future__ import annotations

import re
from typing import Any

from interlock.outgoing import OutsiderPart

# What outsider text in a message (a model's paragraphs, a customer's subject or name, a CRM field) may not say
# without a person reading it first. The prompts and the policies forbid these to a model; this is the
# deterministic check behind them (an outsider can try to steer a model, never this), and the same rules hold for
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


def escalation_reason(decision: dict[str, Any] | None) -> str | None:
    """``ai_escalated:<decision>:<reason>`` when the AI decision layer handed this decision to a person
    (``decision``: :meth:`interlock.ai.decision.Decision.summary`), else None."""
    if not decision or not decision.get("escalation"):
        return None
    return f"ai_escalated:{decision.get('decision', 'decision')}:{decision['escalation']}"
