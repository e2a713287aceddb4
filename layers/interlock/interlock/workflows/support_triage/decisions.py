"""The triage workflow's decision points: classify a ticket, draft its reply.

Each is declared for the AI decision layer (:mod:`interlock.ai`): a versioned prompt
(``prompts/classify_ticket.v<N>.md``, ``prompts/draft_reply.v<N>.md``), the domain policy
(``policies/support_triage.md``), an output schema with ``confidence`` and ``reasoning``, a confidence
threshold, and a deterministic offline answer (the keyword rules for the category, the vetted template of the
category for the reply) used when no model is configured. Only the classify and draft steps import this module,
when they decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from interlock.ai.decision import DecisionOutput, DecisionPoint
from interlock.outgoing import clean_label
from interlock.workflows.support_triage.rules import (
    TEMPLATES,
    Category,
    KeywordClassifier,
    TicketText,
    account_state,
    template_name,
    template_text,
)

TEMPLATE_CONFIDENCE = 0.9  # the templates are vetted; what a template cannot know is the guardrail's job


class TicketClassificationOutput(DecisionOutput):
    category: Category
    summary: str = Field(max_length=200)
    # Since prompt v2: every other category plausibly present (a refund asked for in a billing ticket).
    secondary_categories: list[Category] = Field(
        default_factory=list, max_length=6,
        description="every other category plausibly present in the ticket, besides the chosen one")


class DraftReplyOutput(DecisionOutput):
    text: str = Field(min_length=1, max_length=2000)


def offline_classification(request: Mapping[str, Any]) -> TicketClassificationOutput:
    ticket = request.get("ticket") or {}
    result = KeywordClassifier().classify(TicketText(subject=str(ticket.get("subject", "")),
                                                     body=str(ticket.get("body", ""))))
    matched = ", ".join(result.signals) or "no keyword matched"
    return TicketClassificationOutput(category=result.category, confidence=result.confidence,
                                      summary=result.summary, secondary_categories=result.secondary_categories,
                                      reasoning=f"{KeywordClassifier.name}: {matched}")


def offline_draft(request: Mapping[str, Any]) -> DraftReplyOutput:
    category = str((request.get("classification") or {}).get("category", "other"))
    category = category if category in TEMPLATES else "other"
    account = request.get("account") or {}
    state = account_state(bool(account.get("found", True)), account.get("reason")) if account else "unavailable"
    plan = clean_label(account.get("plan"))  # a CRM field: cleaned, and the draft step declares it
    return DraftReplyOutput(text=template_text(category, plan, state), confidence=TEMPLATE_CONFIDENCE,
                            reasoning=f"template {template_name(category, state)}")


CLASSIFY_TICKET: DecisionPoint[TicketClassificationOutput] = DecisionPoint(
    name="classify_ticket",
    prompt="classify_ticket",
    policy="support_triage",
    output=TicketClassificationOutput,
    # The guardrail's approval_min_confidence replaces this where the step runs (one threshold, one setting).
    min_confidence=0.75,
    offline=offline_classification,
    max_output_tokens=300,
    folder=Path(__file__).parent,
)

DRAFT_REPLY: DecisionPoint[DraftReplyOutput] = DecisionPoint(
    name="draft_reply",
    prompt="draft_reply",
    policy="support_triage",
    output=DraftReplyOutput,
    min_confidence=0.6,
    offline=offline_draft,
    max_output_tokens=700,
    folder=Path(__file__).parent,
)
