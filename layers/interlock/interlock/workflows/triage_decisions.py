"""The triage workflow's decision points: classify a ticket, draft its reply.

Each is declared for the AI decision layer (:mod:`interlock.ai`): a versioned prompt, an output schema with
``confidence`` and ``reasoning``, a confidence threshold, and a deterministic offline answer (the keyword rules
for the category, the vetted template of the category for the reply) used when no model is configured. Only
the classify and draft steps import this module, when they decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from interlock.ai.decision import DecisionOutput, DecisionPoint
from interlock.decisions import TEMPLATES, Category, KeywordClassifier, TicketText, template_text

TEMPLATE_CONFIDENCE = 0.9  # the templates are vetted; what a template cannot know is the guardrail's job


class TicketClassificationOutput(DecisionOutput):
    category: Category
    summary: str = Field(max_length=200)


class DraftReplyOutput(DecisionOutput):
    text: str = Field(min_length=1, max_length=2000)


def offline_classification(request: Mapping[str, Any]) -> TicketClassificationOutput:
    ticket = request.get("ticket") or {}
    result = KeywordClassifier().classify(TicketText(subject=str(ticket.get("subject", "")),
                                                     body=str(ticket.get("body", ""))))
    matched = ", ".join(result.signals) or "no keyword matched"
    return TicketClassificationOutput(category=result.category, confidence=result.confidence,
                                      summary=result.summary, reasoning=f"{KeywordClassifier.name}: {matched}")


def offline_draft(request: Mapping[str, Any]) -> DraftReplyOutput:
    category = str((request.get("classification") or {}).get("category", "other"))
    plan = (request.get("account") or {}).get("plan")
    return DraftReplyOutput(text=template_text(category if category in TEMPLATES else "other", plan),
                            confidence=TEMPLATE_CONFIDENCE, reasoning=f"template {category}.v1")


CLASSIFY_TICKET: DecisionPoint[TicketClassificationOutput] = DecisionPoint(
    name="classify_ticket",
    prompt="classify_ticket",
    policy="support_triage",
    output=TicketClassificationOutput,
    # The guardrail's approval_min_confidence replaces this where the step runs (one threshold, one setting).
    min_confidence=0.75,
    offline=offline_classification,
    max_output_tokens=300,
)

DRAFT_REPLY: DecisionPoint[DraftReplyOutput] = DecisionPoint(
    name="draft_reply",
    prompt="draft_reply",
    policy="support_triage",
    output=DraftReplyOutput,
    min_confidence=0.6,
    offline=offline_draft,
    max_output_tokens=700,
)
