"""The sales-ops lead workflow's data: the lead, what each step found out about it, and each step's input.

Every value the lead carries names where it came from (:data:`Provenance`): the form the person filled in, the
HubSpot contact a ``contact.creation`` event named, the enrichment service, or the CRM's company record. The
timeline shows each step's output, so it shows the provenance of what every later step decided on.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from interlock.models import Envelope
from interlock.outgoing import OutsiderPart
from interlock.steps import StepInput

# form: the lead form's fields; hubspot_crm: the HubSpot contact a contact.creation event named;
# enrichment: the enrichment service; crm: the CRM's company record (what the account already says).
Provenance = Literal["form", "hubspot_crm", "enrichment", "crm"]
Trigger = Literal["form", "hubspot"]


class _Model(BaseModel):
    # A refused value's error names the field and the rule, never the value (a person's name or address).
    model_config = ConfigDict(hide_input_in_errors=True)


class Lead(_Model):
    name: str | None = Field(default=None, max_length=200)
    email: str = Field(min_length=3, max_length=254)
    company: str = Field(min_length=1, max_length=200)
    company_domain: str | None = Field(default=None, max_length=253)
    message: str | None = Field(default=None, max_length=5000)
    requested_discount_pct: float | None = Field(default=None, ge=0, le=100)
    plan_interest: str | None = Field(default=None, max_length=60)
    trigger: Trigger = "form"
    contact_id: str | None = None  # the HubSpot contact a contact.creation event named
    # field -> where its value came from (only the fields that have one)
    provenance: dict[str, Provenance] = Field(default_factory=dict)


class Extracted(_Model):
    """What the trigger's event holds: a whole lead (a form), or only a contact's id (HubSpot's webhook carries
    ids): ``needs_contact`` says the CRM must be asked for the rest (step ``fetch_contact``)."""

    trigger: Trigger
    lead: Lead | None = None
    contact_id: str | None = None
    needs_contact: bool = False


class CrmMatch(_Model):
    """What the CRM already knows: the person (by address) and the company (by domain, never a free-mail one)."""

    contact_found: bool
    contact_id: str | None = None
    contact_owner_id: str | None = None
    matched_contact_by: Literal["email", "contact_id"] | None = None
    free_mail: bool = False
    company_domain: str | None = None  # the domain looked up (None: none, or a free-mail one)
    company_found: bool = False
    company_id: str | None = None
    company_name: str | None = None
    company_owner_id: str | None = None
    # the company record's own firmographics, used when enrichment has none (provenance "crm")
    company_employees: int | None = None
    company_industry: str | None = None
    company_country_code: str | None = None


EnrichmentStatus = Literal["found", "not_found", "skipped", "failed"]


class Enriched(_Model):
    """The company's size, industry and country from the enrichment service, or why there are none.

    ``partial``: the lead goes on without them; ``needs_research``: a person is given a task to find them."""

    status: EnrichmentStatus
    reason: str | None = None  # not_found / skipped / failed: why (free_mail_domain, enrichment_unavailable...)
    name: str | None = None
    employees: int | None = None
    industry: str | None = None
    country_code: str | None = None
    partial: bool = False
    needs_research: bool = False


class Firmographics(_Model):
    """What scoring and ownership decide on, each value with its source (enrichment first, else the CRM's)."""

    employees: int | None = None
    industry: str | None = None
    country_code: str | None = None
    provenance: dict[str, Provenance] = Field(default_factory=dict)


Band = Literal["cold", "warm", "hot"]


class LeadScore(_Model):
    score: int = Field(ge=0, le=100)
    band: Band
    fit_reasons: list[str] = Field(default_factory=list)
    intent_reasons: list[str] = Field(default_factory=list)
    confidence: float = Field(ge=0, le=1)
    decided_by: str  # offline, openai:<model>, or rules (no model could decide: the offline rules' answer)
    model_score: int | None = None  # the decision's score before the caps
    caps: list[str] = Field(default_factory=list)  # every cap that lowered the score, "<cap>:<max>"
    decision: dict[str, Any] | None = None  # how the AI decision layer decided (interlock.ai Decision.summary)
    firmographics: Firmographics = Field(default_factory=Firmographics)


Segment = Literal["enterprise", "mid_market", "smb", "unknown"]
OwnerRule = Literal["company_owner", "contact_owner", "round_robin", "fallback_team"]


class Assignment(_Model):
    owner_id: str
    owner_name: str | None = None
    slack: str | None = None  # the owner's Slack user id, if the policy knows it
    team: str | None = None
    territory: str
    segment: Segment
    rule: OwnerRule
    reasons: list[str] = Field(default_factory=list)
    policy_version: int


DiscountStatus = Literal["not_requested", "within_threshold", "needs_approval"]


class DiscountCheck(_Model):
    requested_pct: float | None = None
    threshold_pct: float
    status: DiscountStatus
    needs_approval: bool


class ApprovalOutcome(_Model):
    """The wait's result as the state machine passes it on (the approval service's decision), when there was one."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    decision: Literal["approved", "rejected"]


FinalDiscount = Literal["not_requested", "within_threshold", "approved", "rejected"]


class CrmWrite(_Model):
    contact_id: str
    contact_action: Literal["created", "updated"]
    # why an update: the dedupe found the contact, or the CRM said the address was taken (a create that found one)
    contact_matched_by: Literal["dedupe", "crm_conflict"] | None = None
    company_id: str | None = None
    company_attached: bool = False
    deal_id: str
    discount_status: FinalDiscount
    discount_pct_applied: float | None = None


class FallbackTask(_Model):
    created: bool
    task_id: str | None = None
    reason: str


class Notification(_Model):
    sent: bool
    channel: str | None = None
    ts: str | None = None
    reason: str | None = None  # why not sent (slack_not_configured)
    text: str | None = None
    outsider: list[OutsiderPart] = Field(default_factory=list)  # every outsider value the message holds, cleaned
    left_out: list[str] = Field(default_factory=list)  # outsider values left out: not clean, or tripped a rule


# -- step inputs (each task's Parameters: run_id, attempt and the step's own fields) ---------------------------


class ExtractInput(StepInput):
    envelope: Envelope


class FetchContactInput(StepInput):
    contact_id: str = Field(pattern=r"^[0-9]{1,30}$")


class LeadInput(StepInput):
    lead: Lead


class EnrichInput(StepInput):
    lead: Lead
    crm: CrmMatch


class EnrichmentFailedInput(StepInput):
    lead: Lead
    error: dict[str, Any] | None = None  # the Catch's {"Error", "Cause"}


class ScoreInput(StepInput):
    lead: Lead
    crm: CrmMatch
    enrichment: Enriched


class AssignInput(StepInput):
    lead: Lead
    crm: CrmMatch
    score: LeadScore  # its firmographics are what ownership decides on too


class WriteCrmInput(StepInput):
    lead: Lead
    crm: CrmMatch
    enrichment: Enriched
    score: LeadScore
    assignment: Assignment
    discount: DiscountCheck
    approval: ApprovalOutcome | None = None


class FallbackTaskInput(StepInput):
    lead: Lead
    crm: CrmMatch
    enrichment: Enriched
    assignment: Assignment
    crm_write: CrmWrite


class NotifyInput(StepInput):
    lead: Lead
    enrichment: Enriched
    score: LeadScore
    assignment: Assignment
    crm_write: CrmWrite
    fallback_task: FallbackTask | None = None
