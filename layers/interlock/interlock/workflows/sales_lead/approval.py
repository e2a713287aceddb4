"""What the sales manager sees when a lead asks for a discount above the threshold.

``view(state)`` takes the run's state as the wait receives it (``lead``, ``crm``, ``enrichment``, ``score``,
``assignment``, ``discount``: the automatic path's outputs) and returns the platform's
:class:`~interlock.approval_pages.ApprovalView`: a title, the facts as (label, value) pairs written by code
(numbers, the rules' names, cleaned names), and the outsiders' texts (the prospect's message, the model's reasons),
each under a label that says whose words they are, for the page to quote (``interlock.outgoing.quoted``) and never
to show as its own words. Plain data: the approval page adapts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.approval_pages import ApprovalView, QuotedText
from interlock.outgoing import clean_label, clean_name, one_line
from interlock.workflows.sales_lead.models import Assignment, CrmMatch, DiscountCheck, Enriched, Lead, LeadScore

PROSPECT_WORDS = "the prospect's words, not ours"
MODEL_WORDS = "the scoring model's words"


def _pct(value: float | None) -> str:
    return "none" if value is None else f"{value:g}%"


def view(state: Mapping[str, Any]) -> ApprovalView:
    lead = Lead.model_validate(state["lead"])
    crm = CrmMatch.model_validate(state["crm"])
    enrichment = Enriched.model_validate(state["enrichment"])
    score = LeadScore.model_validate(state["score"])
    owner = Assignment.model_validate(state["assignment"])
    discount = DiscountCheck.model_validate(state["discount"])
    company = clean_label(lead.company) or one_line(lead.company, 60)
    firm = score.firmographics
    size = "unknown" if firm.employees is None else f"{firm.employees} employees"
    fields = [
        ("Discount asked", _pct(discount.requested_pct)),
        ("Approval needed above", _pct(discount.threshold_pct)),
        ("Lead", clean_name(lead.name) or "(no clean name given)"),
        ("Email", one_line(lead.email, 254)),
        ("Company", company),
        ("Company domain", lead.company_domain or ("free-mail address" if crm.free_mail else "none")),
        ("Plan of interest", clean_label(lead.plan_interest) or "none"),
        ("Score", f"{score.score}/100 ({score.band})"),
        ("Caps applied", ", ".join(score.caps) or "none"),
        ("Decided by", score.decided_by),
        ("Confidence", f"{score.confidence:.2f}"),
        ("Company size", f"{size} ({firm.provenance.get('employees', 'no source')})"),
        ("Industry", firm.industry or "unknown"),
        ("Country", firm.country_code or "unknown"),
        ("Enrichment", enrichment.status + (f" ({enrichment.reason})" if enrichment.reason else "")),
        ("In the CRM", ("existing contact" if crm.contact_found else "new contact") + ", "
         + ("known company" if crm.company_found else "new company")),
        ("Owner", f"{owner.owner_name or owner.owner_id} ({owner.rule.replace('_', ' ')})"),
        ("Came from", "the lead form" if lead.trigger == "form" else "a HubSpot contact"),
    ]
    quoted = []
    if lead.message:
        quoted.append(QuotedText(label=f"Message ({PROSPECT_WORDS})", text=lead.message))
    reasons = [*score.fit_reasons, *score.intent_reasons]
    if reasons:
        label = MODEL_WORDS if score.decided_by not in ("offline", "rules") else "the scoring rules"
        quoted.append(QuotedText(label=f"Score reasons ({label})", text="\n".join(reasons)))
    return ApprovalView(title=f"Approve a {_pct(discount.requested_pct)} discount for {company}?", fields=fields,
                        quoted=quoted)
