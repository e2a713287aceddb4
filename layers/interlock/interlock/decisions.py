"""The triage workflow's decision points: classify a ticket, draft its reply.

Each is declared for the AI decision layer (:mod:`interlock.ai`): a versioned prompt, an output schema
with ``confidence`` and ``reasoning``, a confidence threshold, and a deterministic offline answer (keyword
rules for the category, a vetted template per category for the reply) used when no model is configured.
Code around a decision validates its output and acts on it; the decision itself never executes anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from interlock.ai.decision import DecisionOutput, DecisionPoint

Category = Literal["billing", "refund", "technical", "account", "legal", "security", "other"]


class TicketText(BaseModel):
    subject: str
    body: str


class Classification(BaseModel):
    category: Category
    confidence: float = Field(ge=0, le=1)
    summary: str
    decided_by: str
    signals: list[str] = Field(default_factory=list)
    # How the AI decision layer decided it (interlock.ai.decision.Decision.summary), escalation included.
    decision: dict[str, Any] | None = None


# Checked in this order; earlier categories win a tie because they carry more risk.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "security": ("breach", "hacked", "phishing", "vulnerability", "unauthorized", "unauthorised",
                 "compromised", "leak", "2fa", "suspicious"),
    "legal": ("lawyer", "legal", "gdpr", "subpoena", "lawsuit", "court", "attorney", "compliance",
              "data protection"),
    "refund": ("refund", "money back", "chargeback", "reimburse", "cancel my subscription"),
    "billing": ("invoice", "billing", "charge", "charged", "payment", "receipt", "vat", "price",
                "pricing", "card"),
    "account": ("login", "log in", "password", "username", "sign in", "account", "email address",
                "locked out"),
    "technical": ("error", "bug", "crash", "broken", "not working", "fails", "failed", "timeout",
                  "slow", "api", "500", "integration"),
}


class KeywordClassifier:
    """Counts keyword hits per category. Confidence grows with hits and drops when categories tie."""

    name = "keywords.v1"

    def classify(self, ticket: TicketText) -> Classification:
        text = f"{ticket.subject}\n{ticket.body}".lower()
        hits: dict[str, list[str]] = {}
        for category, keywords in KEYWORDS.items():
            found = [w for w in keywords if re.search(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])", text)]
            if found:
                hits[category] = found
        summary = ticket.subject.strip()[:120]
        if not hits:
            return Classification(category="other", confidence=0.3, summary=summary, decided_by=self.name)
        ranked = sorted(hits.items(), key=lambda kv: -len(kv[1]))  # stable: KEYWORDS order breaks ties
        best, words = ranked[0]
        confidence = min(0.95, 0.55 + 0.15 * len(words))
        if len(ranked) > 1 and len(ranked[1][1]) == len(words):
            confidence = min(confidence, 0.5)
        return Classification(
            category=best,
            confidence=round(confidence, 2),
            summary=summary,
            decided_by=self.name,
            signals=[f"{c}:{w}" for c, ws in ranked for w in ws],
        )


# -- the decision points -------------------------------------------------------------------------------------


class TicketClassificationOutput(DecisionOutput):
    category: Category
    summary: str = Field(max_length=200)


class DraftReplyOutput(DecisionOutput):
    text: str = Field(min_length=1, max_length=2000)


TEMPLATES: dict[str, str] = {
    "billing": "Thanks for reaching out about billing. We've looked at your account{plan} and a member of "
               "our billing team will confirm the details of your invoice within one business day.",
    "refund": "We've received your refund request. Refunds are reviewed by our team, and we'll confirm "
              "the outcome and the amount shortly.",
    "technical": "Sorry for the trouble. We've logged the problem you describe and our engineers are "
                 "looking into it; we'll update you as soon as we know more.",
    "account": "We can help with your account. For your security, please use the 'Forgot password' "
               "link on the sign-in page; if that doesn't work, reply here and we'll verify you.",
    "legal": "Thank you for your message. It has been passed to our legal team, who will respond formally.",
    "security": "Thank you for reporting this. Our security team has been alerted and will contact you "
                "directly; please do not share credentials over email.",
    "other": "Thanks for getting in touch. We've received your message and will reply shortly.",
}
TEMPLATE_CONFIDENCE = 0.9  # the templates are vetted; what a template cannot know is the guardrail's job


def template_text(category: str, plan: str | None) -> str:
    return TEMPLATES[category].format(plan=f" on the {plan} plan" if plan else "")


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
