"""What the triage workflow's decisions produce (:class:`Classification`) and the deterministic knowledge
behind their offline answers: the keyword rules and the vetted reply templates.

The decision points themselves (prompts, output schemas, thresholds) are declared in :mod:`.decisions`, which only
the steps that decide import, so the AI layer costs the other steps nothing at cold start. Code around a decision
validates its output and acts on it; the decision itself never executes anything. The rules that send a run to a
person are in :mod:`.guardrail`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

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
    signals: list[str] = Field(default_factory=list)  # the keyword rules' hits, "<category>:<keyword>"
    # Further categories plausibly present in the ticket (the keyword rules' other hits, and what a model
    # reported): the guardrail acts on every risky one, not only on ``category``.
    secondary_categories: list[Category] = Field(default_factory=list)
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
            secondary_categories=[c for c, _ in ranked[1:]],
        )


# The vetted reply templates, one per category: the offline draft, and the draft a person approves when no
# model could write one.
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


AccountState = Literal["found", "not_found", "unavailable"]

# A template that speaks of the customer's account has a variant for each way the lookup can go, so the reply
# never says "we've looked at your account" when nobody could (the CRM was down) or there was none to see.
ACCOUNT_VARIANTS: dict[str, dict[str, str]] = {
    "billing": {
        "not_found": "Thanks for reaching out about billing. We couldn't find an account for this email "
                     "address, so a member of our billing team will look into it and confirm the details of "
                     "your invoice within one business day.",
        "unavailable": "Thanks for reaching out about billing. A member of our billing team will look up your "
                       "account and confirm the details of your invoice within one business day.",
    },
}


def account_state(found: bool, reason: str | None) -> AccountState:
    """How the account lookup went: ``found``, ``not_found`` (the CRM answered: no such account), or
    ``unavailable`` (no CRM configured, or it failed and the run went on without it)."""
    if found:
        return "found"
    return "unavailable" if reason else "not_found"


def template_name(category: str, account: AccountState = "found") -> str:
    """The vetted template's name as the draft records it: ``billing.v1``, ``billing.not_found.v1``."""
    variant = account if account != "found" and account in ACCOUNT_VARIANTS.get(category, {}) else None
    return f"{category}.{variant}.v1" if variant else f"{category}.v1"


def template_text(category: str, plan: str | None, account: AccountState = "found") -> str:
    """The vetted template's text; ``plan`` must already be cleaned (it comes from a CRM field)."""
    variants = ACCOUNT_VARIANTS.get(category, {})
    if account != "found" and account in variants:
        return variants[account]
    return TEMPLATES[category].format(plan=f" on the {plan} plan" if plan else "")
