"""The lead workflow's steps, run with a StepContext whose connectors are the real ones served by the local fakes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from interlock.errors import (
    CrmUnavailable,
    EnrichmentUnavailable,
    MissingData,
    NotConfigured,
    SlackRejected,
    SlackUnavailable,
)
from interlock.kit.context import NotGranted
from interlock.workflows.sales_lead import steps
from interlock.workflows.sales_lead.models import (
    ApprovalOutcome,
    AssignInput,
    CrmMatch,
    CrmWrite,
    DiscountCheck,
    Enriched,
    EnrichInput,
    EnrichmentFailedInput,
    ExtractInput,
    FallbackTask,
    FallbackTaskInput,
    FetchContactInput,
    Lead,
    LeadInput,
    LeadScore,
    NotifyInput,
    ScoreInput,
    WriteCrmInput,
)

from unit.sales_lead_support import LEAD, World, form_envelope, hubspot_envelope


def lead_of(**changes: Any) -> Lead:
    extracted = steps.extract(ExtractInput(run_id="run-1", envelope=form_envelope({**LEAD, **changes})),
                              World().ctx("extract"))
    assert extracted.lead is not None
    return extracted.lead


class Run:
    """One lead through the automatic path's steps, as the state machine would pass their outputs on."""

    def __init__(self, world: World, lead: Lead, run_id: str = "run-1") -> None:
        self.world, self.run_id, self.lead = world, run_id, lead

    def through_discount(self) -> Run:
        w, r = self.world, self.run_id
        self.crm = steps.dedupe(LeadInput(run_id=r, lead=self.lead), w.ctx("dedupe", r))
        try:
            self.enrichment = steps.enrich(EnrichInput(run_id=r, lead=self.lead, crm=self.crm), w.ctx("enrich", r))
        except EnrichmentUnavailable as exc:  # the ASL's Catch after the last retry
            self.enrichment = steps.enrichment_failed(
                EnrichmentFailedInput(run_id=r, lead=self.lead, error=caught(exc)), w.ctx("enrichment_failed", r))
        self.score = steps.score(ScoreInput(run_id=r, lead=self.lead, crm=self.crm, enrichment=self.enrichment),
                                 w.ctx("score", r))
        self.assignment = steps.assign(AssignInput(run_id=r, lead=self.lead, crm=self.crm, score=self.score),
                                       w.ctx("assign", r))
        self.discount = steps.discount_check(LeadInput(run_id=r, lead=self.lead), w.ctx("discount_check", r))
        return self

    def write(self, approval: str | None = None) -> CrmWrite:
        self.crm_write = steps.write_crm(self.write_input(approval), self.world.ctx("write_crm", self.run_id))
        return self.crm_write

    def write_input(self, approval: str | None = None) -> WriteCrmInput:
        return WriteCrmInput(run_id=self.run_id, lead=self.lead, crm=self.crm, enrichment=self.enrichment,
                             score=self.score, assignment=self.assignment, discount=self.discount,
                             approval=ApprovalOutcome(decision=approval) if approval else None)

    def task(self) -> FallbackTask:
        self.fallback = steps.create_fallback_task(
            FallbackTaskInput(run_id=self.run_id, lead=self.lead, crm=self.crm, enrichment=self.enrichment,
                              assignment=self.assignment, crm_write=self.crm_write),
            self.world.ctx("create_fallback_task", self.run_id))
        return self.fallback

    def notify_input(self) -> NotifyInput:
        return NotifyInput(run_id=self.run_id, lead=self.lead, enrichment=self.enrichment, score=self.score,
                           assignment=self.assignment, crm_write=self.crm_write,
                           fallback_task=getattr(self, "fallback", None))


def caught(exc: Exception) -> dict[str, str]:
    """What an ASL Catch puts in the state for a Lambda's exception: its class and the Lambda's error JSON."""
    return {"Error": type(exc).__name__, "Cause": json.dumps({"errorMessage": str(exc)})}


# -- extract -----------------------------------------------------------------------------------------------


def test_given_a_form_lead_when_extracted_then_every_field_is_kept_with_its_provenance_form() -> None:
    lead = lead_of()

    assert (lead.email, lead.company, lead.company_domain, lead.requested_discount_pct, lead.plan_interest) == (
        "jordan.rivera@hooli.example", "Hooli", "hooli.example", 20.0, "enterprise")
    assert lead.trigger == "form" and lead.contact_id is None
    assert set(lead.provenance) == {"name", "email", "company", "company_domain", "message",
                                    "requested_discount_pct", "plan_interest"}
    assert set(lead.provenance.values()) == {"form"}


@pytest.mark.parametrize("missing", [["email"], ["company"], ["email", "company"]])
def test_given_a_lead_without_email_or_company_when_extracted_then_missing_data_names_them(missing: list[str]) -> None:
    data = {k: v for k, v in LEAD.items() if k not in missing}

    with pytest.raises(MissingData) as raised:
        steps.extract(ExtractInput(run_id="r", envelope=form_envelope(data)), World().ctx("extract"))

    assert raised.value.details["fields"] == missing
    assert raised.value.retryable is False


@pytest.mark.parametrize(("field", "value"), [("email", "not-an-address"), ("company_domain", "not a domain"),
                                              ("requested_discount_pct", 150), ("requested_discount_pct", True),
                                              ("requested_discount_pct", "lots")])
def test_given_an_invalid_field_when_extracted_then_missing_data_names_the_field_not_its_value(field: str,
                                                                                             value: Any) -> None:
    with pytest.raises(MissingData) as raised:
        steps.extract(ExtractInput(run_id="r", envelope=form_envelope({**LEAD, field: value})), World().ctx("extract"))

    assert raised.value.details["fields"] == [field]
    assert str(value) not in raised.value.message


def test_given_a_form_lead_without_a_domain_when_extracted_then_the_address_domain_is_used_unless_free_mail() -> None:
    derived = lead_of(company_domain=None, email="Pat@Initech.example")
    free = lead_of(company_domain=None, email="pat@gmail.com")

    assert (derived.email, derived.company_domain) == ("pat@initech.example", "initech.example")
    assert free.company_domain is None


def test_given_a_hubspot_contact_creation_when_extracted_then_only_the_contact_id_is_known() -> None:
    extracted = steps.extract(ExtractInput(run_id="r", envelope=hubspot_envelope(95001234501)),
                              World().ctx("extract"))

    assert (extracted.trigger, extracted.contact_id, extracted.needs_contact, extracted.lead) == (
        "hubspot", "95001234501", True, None)


@pytest.mark.parametrize("object_id", [None, "12; drop", True, -5])
def test_given_a_hubspot_event_without_a_usable_object_id_when_extracted_then_missing_data(object_id: Any) -> None:
    with pytest.raises(MissingData, match="objectId"):
        steps.extract(ExtractInput(run_id="r", envelope=hubspot_envelope(object_id)), World().ctx("extract"))


def test_given_another_event_type_when_extracted_then_it_is_refused_as_unsupported() -> None:
    with pytest.raises(MissingData) as raised:
        steps.extract(ExtractInput(run_id="r", envelope=form_envelope(LEAD, "support.ticket")),
                      World().ctx("extract"))

    assert raised.value.reason == "unsupported_event"


# -- fetch_contact -------------------------------------------------------------------------------------------


def test_given_a_hubspot_contact_id_when_fetched_then_the_lead_is_its_crm_properties() -> None:
    world = World()

    lead = steps.fetch_contact(FetchContactInput(run_id="r", contact_id="95001234501"), world.ctx("fetch_contact"))

    assert (lead.name, lead.email, lead.company, lead.company_domain, lead.plan_interest) == (
        "Hedy Lamarr", "hedy@initech.example", "Initech", "initech.example", "business")
    assert lead.trigger == "hubspot" and lead.contact_id == "95001234501"
    assert set(lead.provenance.values()) == {"hubspot_crm"}
    assert [(r.method, r.url.path) for r in world.seen] == [
        ("GET", "/_local/crm/crm/v3/objects/contacts/95001234501")]


def test_given_a_contact_the_crm_no_longer_has_when_fetched_then_contact_not_found_is_not_retried() -> None:
    with pytest.raises(MissingData) as raised:
        steps.fetch_contact(FetchContactInput(run_id="r", contact_id="123"), World().ctx("fetch_contact"))

    assert raised.value.reason == "contact_not_found" and raised.value.retryable is False


def test_given_a_contact_without_a_company_when_fetched_then_missing_data() -> None:
    world = World()
    world.crm_fake.hubspot.objects["contacts"]["95001234502"]["properties"]["company"] = ""

    with pytest.raises(MissingData) as raised:
        steps.fetch_contact(FetchContactInput(run_id="r", contact_id="95001234502"), world.ctx("fetch_contact"))

    assert raised.value.details["fields"] == ["company"]


def test_given_no_crm_configured_when_a_crm_step_runs_then_not_configured() -> None:
    world = World(configured=set())

    with pytest.raises(NotConfigured) as raised:
        steps.fetch_contact(FetchContactInput(run_id="r", contact_id="1"), world.ctx("fetch_contact"))

    assert raised.value.reason == "crm_not_configured"


def test_given_a_step_that_did_not_declare_a_connector_when_it_asks_then_it_is_not_granted() -> None:
    with pytest.raises(NotGranted):
        World().ctx("enrich").connector("crm")


# -- dedupe --------------------------------------------------------------------------------------------------


def test_given_a_known_company_domain_when_deduped_then_its_account_and_existing_owner_are_found() -> None:
    world = World()

    match = steps.dedupe(LeadInput(run_id="r", lead=lead_of(email="pat@globex.example", company_domain=None)),
                         world.ctx("dedupe"))

    assert (match.contact_found, match.company_found, match.company_id, match.company_owner_id) == (
        False, True, "9001", "7001")
    assert (match.company_industry, match.company_country_code) == ("MANUFACTURING", "US")
    assert all("globex" not in str(r.url) and "pat@" not in str(r.url) for r in world.seen)


def test_given_an_existing_contact_when_deduped_then_it_is_found_by_address() -> None:
    match = steps.dedupe(LeadInput(run_id="r", lead=lead_of(email="ADA@analytical.example", company_domain=None)),
                         World().ctx("dedupe"))

    assert (match.contact_found, match.contact_id, match.matched_contact_by) == (True, "5001", "email")
    assert (match.company_found, match.company_id, match.company_owner_id) == (True, "9003", None)


def test_given_a_free_mail_lead_when_deduped_then_no_company_is_looked_up_even_for_a_claimed_domain() -> None:
    world = World()

    match = steps.dedupe(LeadInput(run_id="r", lead=lead_of(email="pat@gmail.com", company_domain="globex.example")),
                         world.ctx("dedupe"))

    assert (match.free_mail, match.company_domain, match.company_found) == (True, None, False)
    assert [r.url.path for r in world.seen] == ["/_local/crm/crm/v3/objects/contacts/search"]


@pytest.mark.parametrize(("email", "claimed", "domain"), [
    ("pat@initech.example", "globex.example", "initech.example"),  # a claim the address does not back
    ("pat@uk.globex.example", "globex.example", "globex.example"),  # the address is at a subdomain of the claim
    ("pat@globex.example", None, "globex.example"),
])
def test_the_company_is_looked_up_by_the_domain_the_address_vouches_for(email: str, claimed: str | None,
                                                                        domain: str) -> None:
    match = steps.dedupe(LeadInput(run_id="r", lead=lead_of(email=email, company_domain=claimed)),
                         World().ctx("dedupe"))

    assert match.company_domain == domain and not match.free_mail


def test_given_a_hubspot_lead_when_deduped_then_the_contact_is_the_one_the_event_named() -> None:
    world = World()
    lead = steps.fetch_contact(FetchContactInput(run_id="r", contact_id="95001234501"), world.ctx("fetch_contact"))

    match = steps.dedupe(LeadInput(run_id="r", lead=lead), world.ctx("dedupe"))

    assert (match.contact_found, match.contact_id, match.matched_contact_by) == (True, "95001234501", "contact_id")
    assert (match.company_id, match.company_owner_id) == ("9002", "7102")


def test_given_the_crm_down_when_deduped_then_crm_unavailable_is_retried() -> None:
    world = World()
    world.crm_fake.outage.enabled = True

    with pytest.raises(CrmUnavailable) as raised:
        steps.dedupe(LeadInput(run_id="r", lead=lead_of()), world.ctx("dedupe"))

    assert raised.value.retryable is True


# -- enrich ----------------------------------------------------------------------------------------------------


def _match(world: World, lead: Lead) -> CrmMatch:
    return steps.dedupe(LeadInput(run_id="r", lead=lead), world.ctx("dedupe"))


def test_given_a_known_domain_when_enriched_then_size_industry_and_country_are_found() -> None:
    world = World()
    lead = lead_of()

    enriched = steps.enrich(EnrichInput(run_id="r", lead=lead, crm=_match(world, lead)), world.ctx("enrich"))

    assert (enriched.status, enriched.employees, enriched.industry, enriched.country_code) == (
        "found", 12000, "Internet", "US")
    assert not enriched.partial and not enriched.needs_research


@pytest.mark.parametrize(("changes", "status", "reason"), [
    ({"email": "pat@nowhere.example", "company_domain": None}, "not_found", "unknown_domain"),
    ({"email": "pat@gmail.com", "company_domain": None}, "skipped", "free_mail_address"),
])
def test_given_nothing_to_find_when_enriched_then_the_lead_is_partial_and_needs_research(
        changes: dict[str, Any], status: str, reason: str) -> None:
    world = World()
    lead = lead_of(**changes)

    enriched = steps.enrich(EnrichInput(run_id="r", lead=lead, crm=_match(world, lead)), world.ctx("enrich"))

    assert (enriched.status, enriched.reason, enriched.partial, enriched.needs_research) == (status, reason, True, True)


def test_given_the_enrichment_service_down_when_enriched_then_a_retryable_error_and_after_it_a_partial_lead() -> None:
    world = World()
    world.enrichment_fake.outage.enabled = True
    lead = lead_of()

    with pytest.raises(EnrichmentUnavailable) as raised:
        steps.enrich(EnrichInput(run_id="r", lead=lead, crm=_match(world, lead)), world.ctx("enrich"))
    failed = steps.enrichment_failed(EnrichmentFailedInput(run_id="r", lead=lead, error=caught(raised.value)),
                                     world.ctx("enrichment_failed"))

    assert raised.value.retryable is True and raised.value.details == {"status": 503}
    assert (failed.status, failed.reason, failed.partial, failed.needs_research) == (
        "failed", "enrichment_unavailable", True, True)


def test_given_no_enrichment_service_when_enriched_then_failed_not_configured_and_partial() -> None:
    world = World(configured={"crm"})
    lead = lead_of()

    enriched = steps.enrich(EnrichInput(run_id="r", lead=lead, crm=_match(world, lead)), world.ctx("enrich"))

    assert (enriched.status, enriched.reason, enriched.partial) == ("failed", "enrichment_not_configured", True)


# -- score -----------------------------------------------------------------------------------------------------


def test_given_no_model_when_scored_then_the_offline_rules_decide_with_their_reasons() -> None:
    run = Run(World(), lead_of()).through_discount()

    assert run.score.decided_by == "offline"
    assert run.score.band == "hot" and run.score.score >= 70 and run.score.caps == []
    assert "12000 employees" in run.score.fit_reasons
    assert run.score.firmographics.provenance == {"employees": "enrichment", "industry": "enrichment",
                                                  "country_code": "enrichment"}
    assert run.score.decision is not None and run.score.decision["decision"] == "score_lead"


def test_given_a_free_mail_lead_when_scored_then_it_is_capped_and_never_enterprise() -> None:
    run = Run(World(), lead_of(email="jordan@gmail.com", company_domain=None)).through_discount()

    assert run.score.score <= 40 and run.score.band != "hot"
    assert run.score.model_score is not None and run.score.model_score > 40
    assert run.score.caps == ["free_mail_domain:40"]
    assert run.assignment.segment == "smb"


class ConfidentModel:
    """A provider whose every answer is a 97 (what a model talked into it by a lead's message might say)."""

    name = "test"

    def __init__(self, score: int = 97) -> None:
        self.score = score

    def complete(self, call: Any) -> Any:
        import json

        from interlock.ai.providers import ModelReply

        text = json.dumps({"score": self.score, "fit_reasons": ["huge company"], "intent_reasons": ["wants it now"],
                           "confidence": 0.95, "reasoning": "looks great"})
        return ModelReply(text=text, refusal=None, tokens_in=100, tokens_out=30, model="test-model")


def _model_world(provider: Any) -> World:
    from interlock.ai.runner import DecisionRunner
    from interlock.settings import AiSettings

    world = World()
    world.runner = DecisionRunner(lambda: provider, world.timeline, AiSettings(ai_model_tiers="test-model"))
    return world


def test_given_a_model_score_above_the_partial_cap_when_enrichment_failed_then_the_cap_applies_in_code() -> None:
    world = _model_world(ConfidentModel(97))
    world.enrichment_fake.outage.enabled = True

    run = Run(world, lead_of()).through_discount()

    assert run.score.decided_by == "test:test-model"
    assert (run.score.model_score, run.score.score, run.score.caps) == (97, 60, ["partial_lead:60"])
    assert run.score.band == "warm"


def test_given_a_free_mail_partial_lead_when_a_model_says_97_then_the_lowest_cap_wins_and_both_are_named() -> None:
    run = Run(_model_world(ConfidentModel(97)), lead_of(email="pat@gmail.com", company_domain=None)).through_discount()

    assert (run.score.score, run.score.caps) == (40, ["free_mail_domain:40"])


class BrokenModel:
    name = "test"

    def complete(self, call: Any) -> Any:
        from interlock.ai.providers import ModelReply

        return ModelReply(text="not json", refusal=None, tokens_in=10, tokens_out=2, model="test-model")


def test_given_no_model_can_decide_when_scored_then_the_rules_score_stands_and_says_so() -> None:
    run = Run(_model_world(BrokenModel()), lead_of()).through_discount()

    assert run.score.decided_by == "rules"
    assert run.score.decision is not None and run.score.decision["escalation"] == "all_tiers_failed"
    assert run.score.score >= 70


def test_given_the_score_request_when_it_reaches_a_model_then_it_holds_no_name_and_no_address() -> None:
    seen: list[Any] = []

    class Spy(ConfidentModel):
        def complete(self, call: Any) -> Any:
            seen.append(call)
            return super().complete(call)

    Run(_model_world(Spy()), lead_of()).through_discount()

    sent = " ".join(m["content"] for m in seen[0].messages)
    assert "Jordan" not in sent and "jordan.rivera@" not in sent and "Hooli" in sent


# -- assign and discount_check ---------------------------------------------------------------------------------


def test_given_a_known_company_with_an_owner_when_assigned_then_the_account_owner_comes_first() -> None:
    run = Run(World(), lead_of(email="pat@globex.example", company_domain=None)).through_discount()

    assert (run.assignment.owner_id, run.assignment.rule, run.assignment.slack) == ("7001", "company_owner",
                                                                                    "U07MAYA01")


def test_given_a_new_enterprise_lead_when_assigned_then_round_robin_within_its_team_and_the_same_on_a_repeat() -> None:
    first = Run(World(), lead_of()).through_discount()
    again = Run(World(), lead_of(), run_id="run-2").through_discount()

    assert (first.assignment.team, first.assignment.rule, first.assignment.segment) == (
        "amer_enterprise", "round_robin", "enterprise")
    assert first.assignment.owner_id in ("7001", "7002")
    assert again.assignment == first.assignment


@pytest.mark.parametrize(("asked", "setting", "status", "needs"), [
    (20, "", "needs_approval", True),
    (15, "", "within_threshold", False),
    (10, "", "within_threshold", False),
    (None, "", "not_requested", False),
    (0, "", "not_requested", False),
    (12, "10", "needs_approval", True),
])
def test_given_a_discount_when_checked_then_above_the_threshold_needs_approval(asked: float | None, setting: str,
                                                                              status: str, needs: bool) -> None:
    world = World()
    world.settings["sales_discount_approval_pct"] = setting

    check = steps.discount_check(LeadInput(run_id="r", lead=lead_of(requested_discount_pct=asked)),
                                 world.ctx("discount_check"))

    assert (check.status, check.needs_approval) == (status, needs)
    assert check.threshold_pct == (float(setting) if setting else 15.0)


@pytest.mark.parametrize("setting", ["lots", "-1", "101"])
def test_given_an_invalid_threshold_setting_when_checked_then_not_configured(setting: str) -> None:
    world = World()
    world.settings["sales_discount_approval_pct"] = setting

    with pytest.raises(NotConfigured) as raised:
        steps.discount_check(LeadInput(run_id="r", lead=lead_of()), world.ctx("discount_check"))

    assert raised.value.reason == "invalid_setting"


# -- write_crm --------------------------------------------------------------------------------------------------


def test_given_a_new_lead_when_written_then_the_contact_and_its_deal_are_created_once() -> None:
    world = World()
    run = Run(world, lead_of()).through_discount()

    write = run.write(approval="approved")

    contact = world.crm_fake.hubspot.objects["contacts"][write.contact_id]
    deal = world.crm_fake.hubspot.objects["deals"][write.deal_id]
    assert (write.contact_action, write.discount_status, write.discount_pct_applied) == ("created", "approved", 20.0)
    assert contact["properties"]["email"] == "jordan.rivera@hooli.example"
    assert contact["properties"]["hubspot_owner_id"] == run.assignment.owner_id
    assert deal["properties"]["interlock_discount_pct"] == "20"
    assert deal["associations"] == {"contacts": [write.contact_id]}


def test_given_an_existing_contact_when_written_then_it_is_updated_not_created_and_attached_to_its_company() -> None:
    world = World()
    before = len(world.crm_fake.hubspot.objects["contacts"])
    run = Run(world, lead_of(email="ada@analytical.example", company_domain=None,
                             requested_discount_pct=None)).through_discount()

    write = run.write()

    ada = world.crm_fake.hubspot.objects["contacts"]["5001"]
    assert (write.contact_id, write.contact_action, write.contact_matched_by) == ("5001", "updated", "dedupe")
    assert len(world.crm_fake.hubspot.objects["contacts"]) == before
    assert ada["properties"]["firstname"] == "Ada"  # the CRM's own data is not overwritten
    assert ada["properties"]["interlock_lead_score"] == str(run.score.score)
    assert (write.company_id, write.company_attached) == ("9003", True)
    assert ada["associations"]["companies"] == ["9003"]
    deal = world.crm_fake.hubspot.objects["deals"][write.deal_id]
    assert deal["associations"] == {"contacts": ["5001"], "companies": ["9003"]}


def test_given_a_contact_the_search_missed_when_written_then_the_crm_conflict_turns_the_create_into_an_update() -> None:
    world = World()
    run = Run(world, lead_of()).through_discount()
    # the same address was created in the CRM after the dedupe looked (HubSpot's search lags its writes)
    world.crm_fake.hubspot.objects["contacts"]["777"] = world.crm_fake.hubspot._stored(
        "777", {"email": "jordan.rivera@hooli.example"})

    write = run.write(approval="approved")

    assert (write.contact_id, write.contact_action, write.contact_matched_by) == ("777", "updated", "crm_conflict")


@pytest.mark.parametrize(("approval", "status", "applied"), [("approved", "approved", 20.0),
                                                             ("rejected", "rejected", None)])
def test_given_the_managers_decision_when_written_then_the_deal_carries_the_discount_only_when_approved(
        approval: str, status: str, applied: float | None) -> None:
    world = World()
    run = Run(world, lead_of()).through_discount()

    write = run.write(approval=approval)

    deal = world.crm_fake.hubspot.objects["deals"][write.deal_id]["properties"]
    assert (write.discount_status, write.discount_pct_applied) == (status, applied)
    assert deal.get("interlock_discount_pct") == (None if applied is None else "20")
    assert deal["interlock_discount_status"] == status


def test_given_a_discount_within_the_threshold_when_written_then_the_deal_carries_it_without_an_approval() -> None:
    world = World()
    run = Run(world, lead_of(requested_discount_pct=10)).through_discount()

    write = run.write()

    assert (write.discount_status, write.discount_pct_applied) == ("within_threshold", 10.0)


def test_given_a_discount_needing_approval_when_written_without_a_decision_then_missing_data() -> None:
    run = Run(World(), lead_of()).through_discount()

    with pytest.raises(MissingData) as raised:
        run.write()

    assert raised.value.reason == "approval_missing"


def test_given_write_crm_redelivered_when_it_runs_again_then_nothing_is_written_twice() -> None:
    world = World()
    run = Run(world, lead_of()).through_discount()
    first = run.write(approval="approved")
    writes = [r for r in world.seen if r.method in ("POST", "PATCH", "PUT") and "search" not in r.url.path]

    again = run.write(approval="approved")

    assert again == first
    assert [r for r in world.seen if r.method in ("POST", "PATCH", "PUT") and "search" not in r.url.path] == writes
    assert len(world.crm_fake.hubspot.objects["deals"]) == 1
    assert world.ledger.calls == ["run-1:write_crm:contact", "run-1:write_crm:deal"]


def test_given_the_crm_down_when_written_then_crm_unavailable_and_the_retry_writes_once() -> None:
    world = World()
    run = Run(world, lead_of()).through_discount()
    world.crm_fake.outage.enabled = True
    with pytest.raises(CrmUnavailable):
        run.write(approval="approved")
    world.crm_fake.outage.enabled = False

    write = run.write(approval="approved")

    assert write.contact_action == "created"
    assert len(world.crm_fake.hubspot.objects["deals"]) == 1


# -- create_fallback_task ----------------------------------------------------------------------------------------


def test_given_enrichment_down_when_the_lead_is_written_then_it_is_partial_and_a_research_task_is_created() -> None:
    world = World()
    world.enrichment_fake.outage.enabled = True
    run = Run(world, lead_of()).through_discount()
    run.write(approval="approved")

    task = run.task()
    again = run.task()

    stored = world.crm_fake.hubspot.objects["tasks"][task.task_id or ""]
    assert run.enrichment.partial and (task.created, task.reason) == (True, "enrichment_unavailable")
    assert again == task and len(world.crm_fake.hubspot.objects["tasks"]) == 1
    assert stored["properties"]["hs_task_subject"] == "Research Hooli"
    assert stored["properties"]["hubspot_owner_id"] == run.assignment.owner_id
    assert stored["associations"] == {"contacts": [run.crm_write.contact_id]}


def test_given_enrichment_found_the_company_when_the_task_step_runs_then_no_task_is_created() -> None:
    world = World()
    run = Run(world, lead_of()).through_discount()
    run.write(approval="approved")

    assert run.task() == FallbackTask(created=False, reason="enrichment_found_the_company")
    assert world.crm_fake.hubspot.objects["tasks"] == {}


# -- notify_owner ----------------------------------------------------------------------------------------------


def _notified(world: World, run: Run) -> Any:
    return steps.notify_owner(run.notify_input(), world.ctx("notify_owner"))


def test_given_a_written_lead_when_the_owner_is_notified_then_one_slack_message_from_the_template() -> None:
    world = World()
    run = Run(world, lead_of()).through_discount()
    run.write(approval="approved")

    sent = _notified(world, run)
    again = _notified(world, run)

    messages = world.slack_fake.messages()
    assert sent.sent and again == sent and len(messages) == 1
    assert messages[0]["channel"] == run.assignment.slack
    text = messages[0]["text"]
    assert text.startswith("New lead for you: Jordan Rivera at Hooli.")
    assert f"Score: {run.score.score}/100 (hot)." in text
    assert "Discount asked: 20%, approved by the sales manager, on the deal." in text
    assert [p.part for p in sent.outsider] == ["name", "company"]
    assert not any(reason in text for reason in run.score.fit_reasons)  # no model text in the message


def test_given_a_rejected_discount_when_the_owner_is_notified_then_they_are_told_it_was_rejected() -> None:
    world = World()
    run = Run(world, lead_of()).through_discount()
    run.write(approval="rejected")

    sent = _notified(world, run)

    assert "Discount asked: 20%, rejected by the sales manager: the deal was created without it." in (sent.text or "")


def test_given_a_partial_lead_when_the_owner_is_notified_then_the_message_names_the_research_task() -> None:
    world = World()
    world.enrichment_fake.outage.enabled = True
    run = Run(world, lead_of()).through_discount()
    run.write(approval="approved")
    run.task()

    sent = _notified(world, run)

    assert f"Score: {run.score.score}/100 ({run.score.band})." in (sent.text or "")  # the rules' 60 needs no cap
    assert "The company could not be enriched: a research task is on your list." in (sent.text or "")


@pytest.mark.parametrize(("name", "company", "left_out"), [
    ("<!channel> click https://evil.example", "Hooli", ["name:not_clean"]),
    ("Jordan Rivera", "Free refunds within 2 days", ["company:commitment"]),
    ("Jordan Rivera", "Visit evil.com", ["company:not_clean"]),
])
def test_given_outsider_values_that_are_not_clean_when_notified_then_they_are_left_out(
        name: str, company: str, left_out: list[str]) -> None:
    world = World()
    run = Run(world, lead_of(name=name, company=company, requested_discount_pct=None)).through_discount()
    run.write()

    sent = _notified(world, run)

    assert sent.left_out == left_out
    text = sent.text or ""
    assert "evil" not in text and "<!channel>" not in text and "refund" not in text


def test_given_an_ampersand_in_a_company_when_notified_then_it_is_escaped_for_slack() -> None:
    world = World()
    run = Run(world, lead_of(company="Smith & Sons", requested_discount_pct=None)).through_discount()
    run.write()

    assert "at Smith &amp; Sons." in (_notified(world, run).text or "")


def test_given_an_owner_without_a_slack_id_when_notified_then_the_sales_channel_is_told() -> None:
    world = World()
    world.crm_fake.hubspot.objects["companies"]["9001"]["properties"]["hubspot_owner_id"] = "9999"
    run = Run(world, lead_of(email="pat@globex.example", company_domain=None,
                             requested_discount_pct=None)).through_discount()
    run.write()

    sent = _notified(world, run)

    assert (run.assignment.owner_id, run.assignment.slack, sent.channel) == ("9999", None, "C07SALES01")


def test_given_no_slack_configured_when_notified_then_not_sent_with_the_reason() -> None:
    world = World(configured={"crm", "enrichment"})
    run = Run(world, lead_of(requested_discount_pct=None)).through_discount()
    run.write()

    sent = _notified(world, run)

    assert (sent.sent, sent.reason) == (False, "slack_not_configured")


def test_given_slack_rate_limited_then_refusing_when_notified_then_retryable_then_not() -> None:
    world = World()
    run = Run(world, lead_of(requested_discount_pct=None)).through_discount()
    run.write()
    world.slack_fake.rate_limit.enabled = True
    with pytest.raises(SlackUnavailable) as limited:
        _notified(world, run)
    world.slack_fake.rate_limit.enabled = False
    world.slack_fake.token = "xoxb-another"

    with pytest.raises(SlackRejected) as refused:
        _notified(world, run)

    assert limited.value.details["retry_after"] == 1.0 and limited.value.retryable
    assert refused.value.details["slack_error"] == "invalid_auth" and not refused.value.retryable
    assert world.slack_fake.messages() == []


def test_the_models_of_every_step_round_trip_as_json() -> None:
    """What a step returns is the state machine's state: it must read back as the next step's input."""
    world = World()
    run = Run(world, lead_of()).through_discount()
    run.write(approval="approved")
    for model, value in ((CrmMatch, run.crm), (Enriched, run.enrichment), (LeadScore, run.score),
                         (DiscountCheck, run.discount), (CrmWrite, run.crm_write)):
        assert model.model_validate_json(value.model_dump_json()) == value


# -- the bundled samples, through the steps ---------------------------------------------------------------------


def _sample(name: str) -> Any:
    from interlock import cli

    scheme = "hubspot" if name.startswith("hubspot") else "standard-webhooks"
    key = name.removeprefix("hubspot_").removeprefix("form_")
    return json.loads(cli._scheme_samples(scheme)[key].read_bytes())


def test_the_hubspot_sample_batch_fetches_each_contact_and_updates_it_never_creating_one() -> None:
    from interlock.local.fakes import SEED_CONTACTS

    world = World()
    written = []
    for i, element in enumerate(_sample("hubspot_contact_creation")):
        envelope = hubspot_envelope(element["objectId"])
        extracted = steps.extract(ExtractInput(run_id=f"run-{i}", envelope=envelope), world.ctx("extract", f"run-{i}"))
        assert extracted.contact_id is not None
        lead = steps.fetch_contact(FetchContactInput(run_id=f"run-{i}", contact_id=extracted.contact_id),
                                   world.ctx("fetch_contact", f"run-{i}"))
        run = Run(world, lead, run_id=f"run-{i}").through_discount()
        written.append((run, run.write()))

    (hedy, hedy_write), (sam, _) = written
    assert len(world.crm_fake.hubspot.objects["contacts"]) == len(SEED_CONTACTS)
    assert [w.contact_action for _, w in written] == ["updated", "updated"]
    assert (hedy.assignment.owner_id, hedy.assignment.rule, hedy_write.company_attached) == ("7102", "company_owner",
                                                                                             True)
    assert sam.crm.free_mail and sam.score.caps == [] and sam.score.score <= 40 and sam.enrichment.partial
    assert (sam.assignment.team, sam.assignment.rule) == ("inbound", "fallback_team")


def test_the_form_samples_read_as_leads_one_asking_for_approval_one_free_mail() -> None:
    world = World()
    submitted = steps.extract(ExtractInput(run_id="r", envelope=form_envelope(_sample("form_lead_submitted")["data"])),
                              world.ctx("extract"))
    free = steps.extract(ExtractInput(run_id="r", envelope=form_envelope(_sample("form_lead_freemail")["data"])),
                         world.ctx("extract"))
    assert submitted.lead is not None and free.lead is not None

    assert Run(world, submitted.lead).through_discount().discount.needs_approval
    free_run = Run(world, free.lead, run_id="run-2").through_discount()
    assert (free_run.enrichment.status, free_run.enrichment.reason) == ("skipped", "free_mail_address")
    assert not free_run.discount.needs_approval
