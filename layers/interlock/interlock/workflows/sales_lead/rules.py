"""The lead workflow's deterministic rules: free-mail domains, the offline score, the caps, segments, ownership.

Nothing here calls out or reads the clock: the same lead gives the same answer on every attempt, which is what
makes a redelivered step safe without a ledger entry (ownership's round-robin included: a stable hash of the lead's
address within the team, see :func:`round_robin`). The model helps score a lead (``decisions.py``); these rules
give the offline answer, cap what any answer may say, and decide ownership alone: never the model's choice.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from interlock.workflows.sales_lead.models import (
    Assignment,
    Band,
    CrmMatch,
    Enriched,
    Firmographics,
    Lead,
    Provenance,
    Segment,
)

POLICIES = Path(__file__).parent / "policies"

# -- addresses and domains ---------------------------------------------------------------------------------------

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@([^@\s]{1,253})$")


@cache
def _free_mail() -> tuple[frozenset[str], tuple[str, ...]]:
    exact, providers = set(), []
    for line in (POLICIES / "free_mail_domains.txt").read_text("utf-8").splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry.endswith(".*"):
            providers.append(entry[:-1])  # "yahoo." matches yahoo.com, yahoo.co.uk
        elif entry:
            exact.add(entry)
    return frozenset(exact), tuple(providers)


def is_free_mail(domain: str | None) -> bool:
    """A mailbox provider's domain (``gmail.com``, ``yahoo.co.uk``): it says nothing about a company."""
    if not domain:
        return False
    exact, providers = _free_mail()
    # a provider's country domains: "yahoo." + one or two labels (yahoo.de, yahoo.co.uk), not mail.yahoo.example.org
    return domain in exact or any(domain.startswith(p) and len(domain) - len(p) > 0 and domain[len(p):].count(".") <= 1
                                  for p in providers)


def normalise_domain(value: str | None) -> str | None:
    """A company's web domain from what a form or a CRM holds (``https://www.Example.com/about`` ->
    ``example.com``), or None when it is not one."""
    text = (value or "").strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
    text = text.removeprefix("www.").rstrip(".")
    return text if _DOMAIN.match(text) else None


def email_domain(email: str) -> str | None:
    match = _EMAIL.match(email.strip())
    return normalise_domain(match.group(1)) if match else None


def looks_like_email(value: str) -> bool:
    return email_domain(value) is not None


# -- firmographics -----------------------------------------------------------------------------------------------


def firmographics(enrichment: Enriched, crm: CrmMatch) -> Firmographics:
    """Size, industry and country: the enrichment service's when it found them, else the CRM company's."""
    values: dict[str, Any] = {}
    provenance: dict[str, Provenance] = {}
    for name, enriched, recorded in (("employees", enrichment.employees, crm.company_employees),
                                     ("industry", enrichment.industry, crm.company_industry),
                                     ("country_code", enrichment.country_code, crm.company_country_code)):
        if enriched is not None:
            values[name], provenance[name] = enriched, "enrichment"
        elif recorded is not None:
            values[name], provenance[name] = recorded, "crm"
    return Firmographics(**values, provenance=provenance)


# -- scoring -----------------------------------------------------------------------------------------------------

# The caps applied in code after any decision, model or offline: "<name>:<max>" says which one lowered a score.
FREE_MAIL_CAP = 40  # a free-mail lead is never more than warm, and never scored as an enterprise account
PARTIAL_CAP = 60  # a lead whose company nobody could look up is never hot on the model's word alone
HOT_FROM = 70
WARM_FROM = 40

TARGET_INDUSTRIES = frozenset({"software", "internet", "computing", "financial services", "manufacturing",
                               "information technology", "saas"})
_INTENT = re.compile(r"\b(demo|pricing|prices?|quote|trial|buy|purchas\w*|contract|seats?|licen[cs]\w*|budget|"
                     r"roll ?out|migrat\w*|procure\w*|talk to sales)\b", re.I)
PLAN_INTENT = {"enterprise": 15, "business": 10, "pro": 10, "team": 10}


class ScoreFacts(BaseModel):
    """What a lead's score is decided on, by the model and by the rules alike: the company and what the person
    wrote, never their name or address (no score needs them)."""

    company: str
    company_domain: str | None = None  # None for a free-mail address: the domain is the provider's
    free_mail_address: bool
    message: str | None = None
    plan_interest: str | None = None
    requested_discount_pct: float | None = None
    employees: int | None = None
    industry: str | None = None
    country_code: str | None = None
    company_in_crm: bool
    contact_in_crm: bool
    partial: bool  # no enrichment: the company's details are the CRM's or unknown


def score_facts(lead: Lead, crm: CrmMatch, firm: Firmographics, partial: bool) -> ScoreFacts:
    return ScoreFacts(company=lead.company, company_domain=None if crm.free_mail else lead.company_domain,
                      free_mail_address=crm.free_mail, message=lead.message, plan_interest=lead.plan_interest,
                      requested_discount_pct=lead.requested_discount_pct, employees=firm.employees,
                      industry=firm.industry, country_code=firm.country_code, company_in_crm=crm.company_found,
                      contact_in_crm=crm.contact_found, partial=partial)


class RuleScore(BaseModel):
    score: int = Field(ge=0, le=100)
    fit_reasons: list[str]
    intent_reasons: list[str]
    confidence: float


def rule_score(facts: ScoreFacts) -> RuleScore:
    """The offline score: points for fit (size, industry, a company address, a known account) and intent (what the
    message asks, the plan, a discount asked), each with its reason in words a sales manager reads."""
    fit, intent, score = [], [], 10
    employees = facts.employees
    if employees is None:
        score += 5
        fit.append("company size unknown")
    else:
        points = 30 if employees >= 1000 else 22 if employees >= 200 else 15 if employees >= 50 else 8
        score += points
        fit.append(f"{employees} employees")
    industry = (facts.industry or "").strip().lower()
    if industry in TARGET_INDUSTRIES:
        score += 10
        fit.append(f"target industry ({industry})")
    if facts.free_mail_address:
        fit.append("free-mail address")
    else:
        score += 10
        fit.append("company email domain")
    if facts.company_in_crm:
        score += 5
        fit.append("company already in the CRM")
    words = sorted({m.group(0).lower() for m in _INTENT.finditer(facts.message or "")})
    if words:
        score += 15
        intent.append(f"message mentions {', '.join(words[:4])}")
    elif facts.message:
        score += 5
        intent.append("left a message")
    plan = (facts.plan_interest or "").strip().lower()
    if plan:
        score += PLAN_INTENT.get(plan, 5)
        intent.append(f"interested in the {plan} plan" if plan in PLAN_INTENT else "named a plan")
    if facts.requested_discount_pct is not None and facts.requested_discount_pct > 0:
        score += 5
        intent.append("asked for a discount")
    return RuleScore(score=max(0, min(100, score)), fit_reasons=fit, intent_reasons=intent or ["no intent signal"],
                     confidence=0.6 if facts.partial else 0.8)


def apply_caps(score: int, *, free_mail: bool, partial: bool) -> tuple[int, list[str]]:
    """``score`` under every cap that applies, and the caps that lowered it."""
    caps = []
    for applies, name, cap in ((free_mail, "free_mail_domain", FREE_MAIL_CAP), (partial, "partial_lead", PARTIAL_CAP)):
        if applies and score > cap:
            score = cap
            caps.append(f"{name}:{cap}")
    return score, caps


def band(score: int) -> Band:
    return "hot" if score >= HOT_FROM else "warm" if score >= WARM_FROM else "cold"


# -- ownership ---------------------------------------------------------------------------------------------------


class SegmentRule(BaseModel):
    name: Segment
    min_employees: int = Field(ge=0)


class Team(BaseModel):
    name: str = Field(min_length=1)
    territories: list[str]
    segments: list[Segment]
    owners: list[str] = Field(min_length=1)


class Owner(BaseModel):
    name: str
    slack: str | None = Field(default=None, pattern=r"^[UWC][A-Z0-9]{2,20}$")


class OwnershipPolicy(BaseModel):
    version: int
    sales_channel: str = Field(pattern=r"^C[A-Z0-9]{2,20}$")
    segments: list[SegmentRule] = Field(min_length=1)
    territories: dict[str, list[str]]
    teams: list[Team]
    fallback_team: str
    owners: dict[str, Owner]

    @model_validator(mode="after")
    def _consistent(self) -> OwnershipPolicy:
        teams = {t.name for t in self.teams}
        if self.fallback_team not in teams:
            raise ValueError(f"the fallback team {self.fallback_team!r} is not a team")
        unknown = sorted({o for t in self.teams for o in t.owners} - set(self.owners))
        if unknown:
            raise ValueError(f"team owners missing from owners: {', '.join(unknown)}")
        countries = [c for codes in self.territories.values() for c in codes]
        if len(countries) != len(set(countries)):
            raise ValueError("a country is in more than one territory")
        bad = sorted({tr for t in self.teams for tr in t.territories} - set(self.territories))
        if bad:
            raise ValueError(f"teams name unknown territories: {', '.join(bad)}")
        return self

    def territory(self, country_code: str | None) -> str:
        code = (country_code or "").upper()
        return next((name for name, codes in self.territories.items() if code in codes), "unassigned")

    def segment(self, employees: int | None, free_mail: bool) -> Segment:
        """By company size; a free-mail lead is never enterprise (nor mid-market): its size is not its own."""
        if free_mail:
            return "smb"
        if employees is None:
            return "unknown"
        for rule in sorted(self.segments, key=lambda r: r.min_employees, reverse=True):
            if employees >= rule.min_employees:
                return rule.name
        return "unknown"

    def team(self, territory: str, segment: Segment) -> Team:
        found = next((t for t in self.teams if territory in t.territories and segment in t.segments), None)
        return found or next(t for t in self.teams if t.name == self.fallback_team)


@cache
def ownership_policy() -> OwnershipPolicy:
    return OwnershipPolicy.model_validate(json.loads((POLICIES / "ownership.json").read_text("utf-8")))


def round_robin(team: Team, email: str) -> str:
    """The team member for this lead: a stable hash of the lead's address, spread evenly over the team.

    Deterministic, so a redelivered or retried step picks the same owner with no counter to store (a counter would
    need a write per lead, and its own exactly-once guard). The same person's second lead lands with the same owner.
    """
    digest = hashlib.sha256(f"{team.name}\n{email.strip().lower()}".encode()).digest()
    return team.owners[int.from_bytes(digest[:8], "big") % len(team.owners)]


def assign_owner(lead: Lead, crm: CrmMatch, firm: Firmographics, policy: OwnershipPolicy) -> Assignment:
    """The account's existing owner first (the CRM company's, then the contact's), else round-robin within the
    team of the lead's territory and segment, else the fallback team."""
    territory = policy.territory(firm.country_code)
    segment = policy.segment(firm.employees, crm.free_mail)
    common: dict[str, Any] = {"territory": territory, "segment": segment, "policy_version": policy.version}
    for rule, owner_id in (("company_owner", crm.company_owner_id), ("contact_owner", crm.contact_owner_id)):
        if owner_id:
            owner = policy.owners.get(owner_id)
            return Assignment(owner_id=owner_id, owner_name=owner.name if owner else None,
                              slack=owner.slack if owner else None, rule=rule,
                              reasons=[f"the {'company' if rule == 'company_owner' else 'contact'} already has an "
                                       "owner in the CRM"], **common)
    team = policy.team(territory, segment)
    owner_id = round_robin(team, lead.email)
    owner = policy.owners[owner_id]
    fallback = team.name == policy.fallback_team and not (territory in team.territories and segment in team.segments)
    reasons = [f"territory {territory}, segment {segment}"]
    if fallback:
        reasons.append(f"no team covers them: the {team.name} team")
    else:
        reasons.append(f"round-robin within {team.name}")
    return Assignment(owner_id=owner_id, owner_name=owner.name, slack=owner.slack, team=team.name,
                      rule="fallback_team" if fallback else "round_robin", reasons=reasons, **common)
