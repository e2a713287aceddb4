"""Decision points: the places where judgement (later: a model) chooses, behind a small interface.

Code around a decision validates its output and acts on it; the decision itself never executes
anything. Until the AI layer lands, ticket classification is a deterministic keyword classifier.
"""

from __future__ import annotations

import re
from typing import Literal, Protocol

from pydantic import BaseModel, Field

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


class TicketClassifier(Protocol):
    def classify(self, ticket: TicketText) -> Classification: ...


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
