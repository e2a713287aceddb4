"""The lead workflow's deterministic rules: free-mail domains, domains, the offline score, caps, ownership."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from interlock.workflows.sales_lead import rules
from interlock.workflows.sales_lead.models import CrmMatch, Enriched, Firmographics, Lead
from pydantic import ValidationError


@pytest.mark.parametrize("domain", ["gmail.com", "outlook.com", "yahoo.com", "yahoo.co.uk", "hotmail.fr", "gmx.de",
                                    "proton.me", "icloud.com"])
def test_mailbox_providers_are_free_mail(domain: str) -> None:
    assert rules.is_free_mail(domain)


@pytest.mark.parametrize("domain", ["hooli.example", "globex.example", "yahoo.example.org.uk", "mygmail.com",
                                    "gmail.com.evil.example", "livestock.com", None, ""])
def test_company_domains_are_not_free_mail(domain: str | None) -> None:
    assert not rules.is_free_mail(domain)


@pytest.mark.parametrize(("raw", "domain"), [
    ("https://www.Hooli.example/about?x=1", "hooli.example"), ("hooli.example", "hooli.example"),
    ("http://hooli.example:8080", "hooli.example"), ("HOOLI.EXAMPLE.", "hooli.example"),
    ("not a domain", None), ("localhost", None), ("", None), (None, None), ("javascript:alert(1)", None),
])
def test_domains_are_normalised_or_refused(raw: str | None, domain: str | None) -> None:
    assert rules.normalise_domain(raw) == domain


@pytest.mark.parametrize(("email", "ok"), [("a@hooli.example", True), ("a@b", False), ("no-at.example", False),
                                           ("a b@hooli.example", False), ("a@@hooli.example", False)])
def test_addresses_must_have_a_domain(email: str, ok: bool) -> None:
    assert rules.looks_like_email(email) is ok


def facts(**changes: Any) -> rules.ScoreFacts:
    base: dict[str, Any] = {"company": "Hooli", "company_domain": "hooli.example", "free_mail_address": False,
                            "message": None, "plan_interest": None, "requested_discount_pct": None,
                            "employees": None, "industry": None, "country_code": None, "company_in_crm": False,
                            "contact_in_crm": False, "partial": False}
    return rules.ScoreFacts(**{**base, **changes})


def test_the_offline_score_adds_fit_and_intent_each_with_its_reason() -> None:
    low = rules.rule_score(facts(free_mail_address=True, company_domain=None, partial=True))
    high = rules.rule_score(facts(employees=5000, industry="Software", company_in_crm=True,
                                  message="Can we get pricing and a demo?", plan_interest="enterprise",
                                  requested_discount_pct=10))

    assert (low.score, low.confidence) == (15, 0.6)
    assert low.fit_reasons == ["company size unknown", "free-mail address"]
    assert low.intent_reasons == ["no intent signal"]
    assert high.score == 100 and high.confidence == 0.8
    assert high.fit_reasons == ["5000 employees", "target industry (software)", "company email domain",
                                "company already in the CRM"]
    assert high.intent_reasons == ["message mentions demo, pricing", "interested in the enterprise plan",
                                   "asked for a discount"]


@pytest.mark.parametrize(("employees", "points"), [(5000, 30), (1000, 30), (999, 22), (200, 22), (199, 15),
                                                   (50, 15), (49, 8), (0, 8), (None, 5)])
def test_size_points_by_band(employees: int | None, points: int) -> None:
    assert rules.rule_score(facts(employees=employees)).score == 10 + 10 + points


@pytest.mark.parametrize(("score", "free_mail", "partial", "capped", "caps"), [
    (90, False, False, 90, []),
    (90, True, False, 40, ["free_mail_domain:40"]),
    (90, False, True, 60, ["partial_lead:60"]),
    (90, True, True, 40, ["free_mail_domain:40"]),
    (30, True, True, 30, []),
    (50, True, True, 40, ["free_mail_domain:40"]),
])
def test_caps_lower_a_score_and_say_which_applied(score: int, free_mail: bool, partial: bool, capped: int,
                                                  caps: list[str]) -> None:
    assert rules.apply_caps(score, free_mail=free_mail, partial=partial) == (capped, caps)


@pytest.mark.parametrize(("score", "band"), [(100, "hot"), (70, "hot"), (69, "warm"), (40, "warm"), (39, "cold"),
                                             (0, "cold")])
def test_bands(score: int, band: str) -> None:
    assert rules.band(score) == band


def test_firmographics_prefer_enrichment_and_fall_back_to_the_crm_with_provenance() -> None:
    crm = CrmMatch(contact_found=False, company_employees=300, company_industry="Software",
                   company_country_code="GB")

    found = rules.firmographics(Enriched(status="found", employees=12000, industry=None, country_code="US"), crm)
    failed = rules.firmographics(Enriched(status="failed", partial=True, needs_research=True), crm)

    assert (found.employees, found.industry, found.country_code) == (12000, "Software", "US")
    assert found.provenance == {"employees": "enrichment", "industry": "crm", "country_code": "enrichment"}
    assert failed.provenance == {"employees": "crm", "industry": "crm", "country_code": "crm"}


# -- ownership ------------------------------------------------------------------------------------------------


POLICY = rules.ownership_policy()


def lead(email: str = "pat@hooli.example") -> Lead:
    return Lead(email=email, company="Hooli")


@pytest.mark.parametrize(("employees", "free_mail", "segment"), [
    (5000, False, "enterprise"), (1000, False, "enterprise"), (200, False, "mid_market"), (199, False, "smb"),
    (None, False, "unknown"), (5000, True, "smb")])
def test_segments_by_size_and_a_free_mail_lead_is_never_enterprise(employees: int | None, free_mail: bool,
                                                                   segment: str) -> None:
    assert POLICY.segment(employees, free_mail) == segment


@pytest.mark.parametrize(("country", "territory"), [("US", "amer"), ("gb", "emea"), ("JP", "apac"),
                                                    ("ZZ", "unassigned"), (None, "unassigned")])
def test_territories_by_country(country: str | None, territory: str) -> None:
    assert POLICY.territory(country) == territory


def test_the_company_owner_comes_first_then_the_contact_owner() -> None:
    firm = Firmographics(employees=5000, country_code="US")
    both = CrmMatch(contact_found=True, contact_owner_id="7201", company_found=True, company_owner_id="7102")
    contact_only = CrmMatch(contact_found=True, contact_owner_id="7201")

    assert (rules.assign_owner(lead(), both, firm, POLICY).owner_id,
            rules.assign_owner(lead(), both, firm, POLICY).rule) == ("7102", "company_owner")
    assert (rules.assign_owner(lead(), contact_only, firm, POLICY).owner_id,
            rules.assign_owner(lead(), contact_only, firm, POLICY).rule) == ("7201", "contact_owner")


def test_an_owner_the_policy_does_not_know_still_owns_their_account() -> None:
    found = rules.assign_owner(lead(), CrmMatch(contact_found=False, company_found=True, company_owner_id="4242"),
                               Firmographics(), POLICY)

    assert (found.owner_id, found.owner_name, found.slack, found.rule) == ("4242", None, None, "company_owner")


@pytest.mark.parametrize(("firm", "team", "rule"), [
    (Firmographics(employees=5000, country_code="US"), "amer_enterprise", "round_robin"),
    (Firmographics(employees=300, country_code="DE"), "emea_enterprise", "round_robin"),
    (Firmographics(employees=20, country_code="US"), "smb", "round_robin"),
    (Firmographics(employees=5000, country_code="JP"), "inbound", "fallback_team"),
    (Firmographics(employees=None, country_code="US"), "inbound", "fallback_team"),
    (Firmographics(), "inbound", "fallback_team"),
])
def test_a_new_account_goes_to_the_team_of_its_territory_and_segment(firm: Firmographics, team: str,
                                                                     rule: str) -> None:
    found = rules.assign_owner(lead(), CrmMatch(contact_found=False), firm, POLICY)

    assert (found.team, found.rule) == (team, rule)
    assert found.owner_id in next(t.owners for t in POLICY.teams if t.name == team)
    assert found.policy_version == POLICY.version


def test_round_robin_is_stable_per_address_and_spreads_a_team_evenly() -> None:
    team = next(t for t in POLICY.teams if t.name == "amer_enterprise")
    emails = [f"person{i}@company{i}.example" for i in range(2000)]

    picks = Counter(rules.round_robin(team, e) for e in emails)

    assert [rules.round_robin(team, e) for e in emails[:50]] == [rules.round_robin(team, e.upper()) for e in
                                                                 emails[:50]]
    assert set(picks) == set(team.owners)
    assert all(abs(n - 1000) < 100 for n in picks.values())  # 2000 draws over two owners: within 5 sigma


def _policy(**changes: Any) -> dict[str, Any]:
    raw = json.loads((rules.POLICIES / "ownership.json").read_text())
    raw.update(changes)
    return raw


@pytest.mark.parametrize(("changes", "problem"), [
    ({"fallback_team": "nobody"}, "fallback team"),
    ({"owners": {}}, "missing from owners"),
    ({"territories": {"amer": ["US"], "emea": ["US"]}}, "more than one territory"),
    ({"sales_channel": "#sales"}, "sales_channel"),
])
def test_an_inconsistent_ownership_policy_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        rules.OwnershipPolicy.model_validate(_policy(**changes))
