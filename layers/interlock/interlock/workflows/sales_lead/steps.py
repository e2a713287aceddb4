"""The sales-ops lead workflow's steps: ``def step(data: <StepInput>, ctx: StepContext) -> <model>``.

extract (validate) -> [fetch_contact (query), for a HubSpot contact.creation] -> dedupe (query) -> enrich (query;
its last failure caught: enrichment_failed, record) -> score (decide) -> assign (validate) -> discount_check
(validate) -> [the sales manager's approval, in the wait] -> write_crm (act) -> [create_fallback_task (act), for a
partial lead] -> notify_owner (notify). Retries, the catch and the branches live in the ASL files; every write goes
through ``ctx.once`` so that a repeated step never writes twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from interlock.errors import MissingData, NotConfigured, parse_cause
from interlock.guardrail import text_findings

# At run time, not only for type checking: a worker reads a step's input model from its annotations
# (typing.get_type_hints), which must resolve every one of them.
from interlock.kit.context import StepContext
from interlock.outgoing import OutsiderPart, clean_label, clean_name, one_line
from interlock.workflows.sales_lead import limits
from interlock.workflows.sales_lead.models import (
    ApprovalOutcome,
    AssignInput,
    Assignment,
    CrmMatch,
    CrmWrite,
    DiscountCheck,
    Enriched,
    EnrichInput,
    EnrichmentFailedInput,
    Extracted,
    ExtractInput,
    FallbackTask,
    FallbackTaskInput,
    FetchContactInput,
    FinalDiscount,
    Lead,
    LeadInput,
    LeadScore,
    Notification,
    NotifyInput,
    Provenance,
    ScoreInput,
    WriteCrmInput,
)
from interlock.workflows.sales_lead.rules import (
    apply_caps,
    assign_owner,
    band,
    email_domain,
    firmographics,
    is_free_mail,
    looks_like_email,
    normalise_domain,
    ownership_policy,
    rule_score,
    score_facts,
)

if TYPE_CHECKING:
    from interlock.connectors.crm import CrmObject, LeadCrm

FORM_EVENT = "lead.submitted"
HUBSPOT_EVENT = "hubspot.contact.creation"
HUBSPOT_PAYLOAD = "hubspot.webhooks.v3"
REQUIRED_FIELDS = ("email", "company")
FORM_FIELDS = ("name", "email", "company", "company_domain", "message", "requested_discount_pct", "plan_interest")
DISCOUNT_SETTING, DEFAULT_DISCOUNT_APPROVAL_PCT = limits.DISCOUNT_SETTING, limits.DEFAULT_DISCOUNT_APPROVAL_PCT


def _crm(ctx: StepContext) -> LeadCrm:
    crm: LeadCrm | None = ctx.connector("crm")
    if crm is None:
        raise NotConfigured("no CRM is configured (INTERLOCK_CRM_BASE_URL)", step=ctx.step,
                            reason="crm_not_configured")
    return crm


def _invalid(exc: ValidationError) -> list[str]:
    return sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})


# -- extract (validate) ------------------------------------------------------------------------------------------


def extract(data: ExtractInput, ctx: StepContext) -> Extracted:
    """The lead from a form's ``lead.submitted``; only the contact's id from HubSpot's ``contact.creation`` (its
    webhook carries ids, the properties are fetched next)."""
    envelope = data.envelope
    if envelope.type == HUBSPOT_EVENT and envelope.payload_version == HUBSPOT_PAYLOAD:
        object_id = envelope.payload.get("objectId")
        contact_id = str(object_id) if isinstance(object_id, int | str) and not isinstance(object_id, bool) else ""
        if not contact_id.isdigit():
            raise MissingData("the contact.creation event names no contact (objectId)", step="extract",
                              fields=["objectId"])
        return Extracted(trigger="hubspot", contact_id=contact_id, needs_contact=True)
    if envelope.type != FORM_EVENT:
        raise MissingData(f"the lead workflow takes {FORM_EVENT} and {HUBSPOT_EVENT} events", step="extract",
                          reason="unsupported_event", event_type=one_line(envelope.type, 80))
    fields = envelope.payload.get("data")
    return Extracted(trigger="form", lead=lead_from_form(fields if isinstance(fields, dict) else {}))


def lead_from_form(fields: dict[str, Any]) -> Lead:
    missing = [f for f in REQUIRED_FIELDS if not str(fields.get(f) or "").strip()]
    if missing:
        raise MissingData(f"the lead is missing {', '.join(missing)}", step="extract", fields=missing)
    values: dict[str, Any] = {f: fields[f] for f in FORM_FIELDS if fields.get(f) not in (None, "")}
    invalid = []
    email = str(values["email"]).strip()
    if not looks_like_email(email):
        invalid.append("email")
    values["email"] = email.lower()
    if "company_domain" in values:
        domain = normalise_domain(str(values["company_domain"]))
        if domain is None:
            invalid.append("company_domain")
        values["company_domain"] = domain
    discount = values.get("requested_discount_pct")
    if discount is not None and (isinstance(discount, bool) or not isinstance(discount, int | float | str)):
        invalid.append("requested_discount_pct")
    if invalid:
        raise MissingData(f"the lead has invalid {', '.join(invalid)}", step="extract", fields=invalid)
    provenance: dict[str, Provenance] = dict.fromkeys(values, "form")
    if not values.get("company_domain"):
        derived = email_domain(email)
        if derived and not is_free_mail(derived):
            values["company_domain"] = derived  # the address's own domain: still what the form said
            provenance["company_domain"] = "form"
    try:
        return Lead.model_validate({**values, "trigger": "form", "provenance": provenance})
    except ValidationError as exc:
        bad = _invalid(exc)
        raise MissingData(f"the lead has invalid {', '.join(bad)}", step="extract", fields=bad) from None


# -- fetch_contact (query, crm) ----------------------------------------------------------------------------------


def fetch_contact(data: FetchContactInput, ctx: StepContext) -> Lead:
    """A HubSpot contact's properties, as the lead (every value's provenance ``hubspot_crm``)."""
    contact = _crm(ctx).get_contact(data.contact_id)
    if contact is None:
        raise MissingData("the CRM has no contact with the event's id (deleted since?)", step="fetch_contact",
                          reason="contact_not_found")
    return lead_from_contact(contact)


def lead_from_contact(contact: CrmObject) -> Lead:
    name = " ".join(p for p in (contact.prop("firstname"), contact.prop("lastname")) if p) or None
    email = (contact.prop("email") or "").strip().lower()
    domain = normalise_domain(contact.prop("website"))
    if domain is None and email:
        derived = email_domain(email)
        domain = derived if derived and not is_free_mail(derived) else None
    values: dict[str, Any] = {"name": name, "email": email, "company": contact.prop("company"),
                              "company_domain": domain, "message": contact.prop("message"),
                              "plan_interest": contact.prop("plan_interest")}
    discount = contact.prop("requested_discount_pct")
    if discount is not None:
        try:
            values["requested_discount_pct"] = float(discount)
        except ValueError:
            raise MissingData("the contact has invalid requested_discount_pct", step="fetch_contact",
                              fields=["requested_discount_pct"]) from None
    missing = [f for f in REQUIRED_FIELDS if not values.get(f)]
    if missing:
        raise MissingData(f"the contact is missing {', '.join(missing)}", step="fetch_contact", fields=missing)
    if not looks_like_email(email):
        raise MissingData("the contact has invalid email", step="fetch_contact", fields=["email"])
    present = {k: v for k, v in values.items() if v is not None}
    try:
        return Lead.model_validate({**present, "trigger": "hubspot", "contact_id": contact.id,
                                    "provenance": dict.fromkeys(present, "hubspot_crm")})
    except ValidationError as exc:
        bad = _invalid(exc)
        raise MissingData(f"the contact has invalid {', '.join(bad)}", step="fetch_contact", fields=bad) from None


# -- dedupe (query, crm) -------------------------------------------------------------------------------------


def _int(value: str | None) -> int | None:
    try:
        return max(0, int(float(value))) if value is not None else None
    except (ValueError, OverflowError):
        return None


def _country_code(value: str | None) -> str | None:
    code = (value or "").strip().upper()
    return code if len(code) == 2 and code.isalpha() else None


def company_domain_of(lead: Lead) -> tuple[str | None, bool]:
    """The domain the company is looked up (and enriched) by, and whether the address is a free-mail one.

    The address's own domain vouches for the company: a claimed company domain is used when the address is at it
    (or at one of its subdomains), else the address's domain is; a free-mail address vouches for none, whatever the
    form claims, so it never attaches a lead to someone's account."""
    address = email_domain(lead.email)
    if address is None or is_free_mail(address):
        return None, address is not None
    claimed = lead.company_domain
    if claimed and (address == claimed or address.endswith("." + claimed)):
        return claimed, False
    return address, False


def dedupe(data: LeadInput, ctx: StepContext) -> CrmMatch:
    """The person by address (or by the contact id HubSpot named), the company by domain. A free-mail address
    never matches a company: its domain is the mailbox provider's."""
    crm = _crm(ctx)
    lead = data.lead
    if lead.contact_id:
        contact = crm.get_contact(lead.contact_id)
        matched_by = "contact_id"
    else:
        contact = crm.find_contact_by_email(lead.email)
        matched_by = "email"
    domain, free_mail = company_domain_of(lead)
    company = crm.find_company_by_domain(domain) if domain else None
    return CrmMatch(
        contact_found=contact is not None, contact_id=contact.id if contact else None,
        contact_owner_id=contact.prop("hubspot_owner_id") if contact else None,
        matched_contact_by=matched_by if contact else None,
        free_mail=free_mail, company_domain=domain, company_found=company is not None,
        company_id=company.id if company else None, company_name=company.prop("name") if company else None,
        company_owner_id=company.prop("hubspot_owner_id") if company else None,
        company_employees=_int(company.prop("numberofemployees")) if company else None,
        company_industry=company.prop("industry") if company else None,
        company_country_code=_country_code(company.prop("country")) if company else None,
    )


# -- enrich (query, enrichment) and its fallback (record) ----------------------------------------------------


def enrich(data: EnrichInput, ctx: StepContext) -> Enriched:
    """Size, industry and country by the company's domain. Not found, or nothing to look up: a ``partial`` lead
    a person researches. Unavailable: :class:`~interlock.errors.EnrichmentUnavailable`, retried by the state
    machine, whose last failure is caught into :func:`enrichment_failed`."""
    if data.crm.free_mail:
        return _without("skipped", "free_mail_address")
    if not data.crm.company_domain:
        return _without("skipped", "no_company_domain")
    service = ctx.connector("enrichment")
    if service is None:
        return _without("failed", "enrichment_not_configured")
    found = service.find_company(data.crm.company_domain)
    if found is None:
        return _without("not_found", "unknown_domain")
    return Enriched(status="found", name=found.name, employees=found.employees, industry=found.industry,
                    country_code=found.country_code)


def _without(status: str, reason: str) -> Enriched:
    return Enriched(status=status, reason=reason, partial=True, needs_research=True)


def enrichment_failed(data: EnrichmentFailedInput, ctx: StepContext) -> Enriched:
    """The run goes on without enrichment after its last retry failed: ``partial``, with the failure's reason."""
    reason, _ = parse_cause(data.error)
    return _without("failed", reason)


# -- score (decide) ----------------------------------------------------------------------------------------------


def score(data: ScoreInput, ctx: StepContext) -> LeadScore:
    """The AI decision (or its offline answer, the scoring rules), then the caps, in code, whoever decided. When no
    model could decide, the rules' score stands (``decided_by: rules``): a lead is never left unscored."""
    from interlock.workflows.sales_lead.decisions import SCORE_LEAD  # the deciding step only: cold start

    firm = firmographics(data.enrichment, data.crm)
    facts = score_facts(data.lead, data.crm, firm, data.enrichment.partial)
    decision = ctx.decisions.decide(SCORE_LEAD, data.run_id, facts.model_dump(mode="json"), (), ctx.deadline,
                                    step="score", attempt=data.attempt)
    if decision.output is not None:
        out = decision.output
        raw, fit, intent, confidence, by = (out.score, out.fit_reasons, out.intent_reasons, out.confidence,
                                            decision.decided_by)
    else:
        rules = rule_score(facts)
        raw, fit, intent, confidence, by = (rules.score, rules.fit_reasons, rules.intent_reasons, rules.confidence,
                                            "rules")
    capped, caps = apply_caps(raw, free_mail=data.crm.free_mail, partial=data.enrichment.partial)
    return LeadScore(score=capped, band=band(capped), fit_reasons=list(fit), intent_reasons=list(intent),
                     confidence=confidence, decided_by=by, model_score=raw, caps=caps, decision=decision.summary(),
                     firmographics=firm)


# -- assign (validate) -------------------------------------------------------------------------------------------


def assign(data: AssignInput, ctx: StepContext) -> Assignment:
    """Ownership by the package's policy (policies/ownership.json): deterministic, no I/O, never the model's."""
    return assign_owner(data.lead, data.crm, data.score.firmographics, ownership_policy())


# -- discount_check (validate) -----------------------------------------------------------------------------------


def discount_threshold(ctx: StepContext) -> float:
    return ctx.setting_as(DISCOUNT_SETTING, limits.discount_pct)


def discount_check(data: LeadInput, ctx: StepContext) -> DiscountCheck:
    """A discount above the threshold (``sales_discount_approval_pct``, default 15) needs the sales manager."""
    threshold = discount_threshold(ctx)
    asked = data.lead.requested_discount_pct
    if not asked:
        return DiscountCheck(requested_pct=asked, threshold_pct=threshold, status="not_requested",
                             needs_approval=False)
    needs = asked > threshold
    return DiscountCheck(requested_pct=asked, threshold_pct=threshold,
                         status="needs_approval" if needs else "within_threshold", needs_approval=needs)


# -- write_crm (act, crm) ----------------------------------------------------------------------------------------


class ContactEffect(BaseModel):
    contact_id: str
    created: bool
    matched_by: str | None = None


class AssociationEffect(BaseModel):
    company_id: str


class CreatedEffect(BaseModel):
    id: str


class PostedEffect(BaseModel):
    channel: str
    ts: str


def final_discount(discount: DiscountCheck, approval: ApprovalOutcome | None) -> tuple[FinalDiscount, float | None]:
    """What the deal carries: the discount asked when it needed no approval or was approved; none when rejected."""
    if discount.status == "not_requested":
        return "not_requested", None
    if discount.status == "within_threshold":
        return "within_threshold", discount.requested_pct
    if approval is None:
        raise MissingData("the discount needs the sales manager's decision, and the step was given none",
                          step="write_crm", reason="approval_missing", fields=["approval"])
    if approval.decision == "approved":
        return "approved", discount.requested_pct
    return "rejected", None


def _name_parts(name: str | None) -> dict[str, str]:
    words = (name or "").split(None, 1)
    return {k: v for k, v in zip(("firstname", "lastname"), words, strict=False)}


def _pct(value: float) -> str:
    return f"{value:g}"


def contact_properties(data: WriteCrmInput, creating: bool) -> dict[str, str]:
    """What the contact is written with. A new contact gets the lead's fields; an existing one only what this lead
    adds (its score, what the form said) and an owner when it had none: the CRM's own data is not overwritten."""
    lead = data.lead
    props: dict[str, str] = {"interlock_lead_score": str(data.score.score),
                             "interlock_lead_partial": "true" if data.enrichment.partial else "false"}
    from_form = {f for f, source in lead.provenance.items() if source == "form"}
    for name in ("message", "plan_interest"):
        value = getattr(lead, name)
        if value and (creating or name in from_form):
            props[name] = value
    if lead.requested_discount_pct is not None and (creating or "requested_discount_pct" in from_form):
        props["requested_discount_pct"] = _pct(lead.requested_discount_pct)
    if creating:
        props.update({"email": lead.email, "company": lead.company, "hs_lead_status": "NEW",
                      "lifecyclestage": "lead", **_name_parts(lead.name)})
        if lead.company_domain:
            props["website"] = lead.company_domain
    if creating or not data.crm.contact_owner_id:
        props["hubspot_owner_id"] = data.assignment.owner_id
    return props


def write_crm(data: WriteCrmInput, ctx: StepContext) -> CrmWrite:
    """Create the contact, or update it when the dedupe found it (never create twice); attach it to the known
    company; create the deal, with the discount when it needed no approval or was approved, without it when it
    was rejected. Each write is one effect through ``ctx.once``: a repeat of the step writes nothing again."""
    crm = _crm(ctx)
    status, applied = final_discount(data.discount, data.approval)
    company_id = data.crm.company_id

    def write_contact(key: str) -> ContactEffect:
        if data.crm.contact_found and data.crm.contact_id:
            crm.update_contact(data.crm.contact_id, contact_properties(data, creating=False))
            return ContactEffect(contact_id=data.crm.contact_id, created=False, matched_by="dedupe")
        written = crm.create_contact(contact_properties(data, creating=True), company_id, key)
        if written.created:
            return ContactEffect(contact_id=written.contact_id, created=True)
        # the address was taken after all (the CRM's search lags its writes): update that contact instead
        crm.update_contact(written.contact_id, contact_properties(data, creating=False))
        return ContactEffect(contact_id=written.contact_id, created=False, matched_by="crm_conflict")

    contact = ctx.once("contact", write_contact, ContactEffect)
    attached = False
    if company_id:
        if contact.created:
            attached = True  # created with the association
        else:
            def associate(key: str) -> AssociationEffect:
                crm.associate_contact_with_company(contact.contact_id, company_id)
                return AssociationEffect(company_id=company_id)

            attached = ctx.once("company_association", associate, AssociationEffect).company_id == company_id

    def create_deal(key: str) -> CreatedEffect:
        return CreatedEffect(id=crm.create_deal(deal_properties(data, status, applied), contact.contact_id,
                                                company_id, key))

    deal = ctx.once("deal", create_deal, CreatedEffect)
    return CrmWrite(contact_id=contact.contact_id, contact_action="created" if contact.created else "updated",
                    contact_matched_by=contact.matched_by,
                    company_id=company_id, company_attached=attached, deal_id=deal.id, discount_status=status,
                    discount_pct_applied=applied)


DISCOUNT_WORDS: dict[str, str] = {
    "not_requested": "No discount was asked for.",
    "within_threshold": "The discount asked is within the threshold.",
    "approved": "The sales manager approved the discount asked.",
    "rejected": "The sales manager rejected the discount asked: the deal carries none.",
}


def deal_properties(data: WriteCrmInput, status: FinalDiscount, applied: float | None) -> dict[str, str]:
    company = one_line(data.lead.company, 80)
    plan = clean_label(data.lead.plan_interest)
    props = {"dealname": f"{company} - {plan} plan" if plan else f"{company} - new business",
             "pipeline": "default", "dealstage": "appointmentscheduled",
             "hubspot_owner_id": data.assignment.owner_id, "interlock_discount_status": status,
             "description": f"Inbound lead, scored {data.score.score}/100 ({data.score.band}). "
                            f"{DISCOUNT_WORDS[status]}"}
    if applied is not None:
        props["interlock_discount_pct"] = _pct(applied)
    return props


# -- create_fallback_task (act, crm) -----------------------------------------------------------------------------

TASK_REASONS = {
    "free_mail_address": "the lead wrote from a free-mail address, so the company could not be looked up by domain",
    "no_company_domain": "the lead gave no company domain to look the company up by",
    "unknown_domain": "the enrichment service does not know the company's domain",
    "enrichment_not_configured": "no enrichment service is configured",
}


def create_fallback_task(data: FallbackTaskInput, ctx: StepContext) -> FallbackTask:
    """A task for the lead's owner to research the company, when enrichment failed or found nothing."""
    if not data.enrichment.needs_research:
        return FallbackTask(created=False, reason="enrichment_found_the_company")
    crm = _crm(ctx)
    reason = data.enrichment.reason or "enrichment_failed"
    why = TASK_REASONS.get(reason, "the enrichment service could not be reached")
    company = clean_label(data.lead.company) or "the lead's company"

    def create(key: str) -> CreatedEffect:
        due = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        props = {"hs_timestamp": due, "hs_task_subject": f"Research {company}", "hs_task_status": "NOT_STARTED",
                 "hs_task_priority": "MEDIUM", "hs_task_type": "TODO", "hubspot_owner_id": data.assignment.owner_id,
                 "hs_task_body": f"Find the company's size, industry and country: {why} ({reason})."}
        return CreatedEffect(id=crm.create_task(props, data.crm_write.contact_id, data.crm_write.company_id, key))

    task = ctx.once("task", create, CreatedEffect)
    return FallbackTask(created=True, task_id=task.id, reason=reason)


# -- notify_owner (notify, slack) ------------------------------------------------------------------------------

RULE_WORDS = {
    "company_owner": "you own the company's account",
    "contact_owner": "you own this contact",
    "round_robin": "round-robin within {team}",
    "fallback_team": "no team covers the lead's territory and segment: the {team} team",
}
NOTIFY_DISCOUNT = {
    "not_requested": None,
    "within_threshold": "Discount asked: {pct}% (within the approval threshold), on the deal.",
    "approved": "Discount asked: {pct}%, approved by the sales manager, on the deal.",
    "rejected": "Discount asked: {pct}%, rejected by the sales manager: the deal was created without it.",
}


def _slack_escape(text: str) -> str:
    """Slack's three control characters in message text (docs: "Escaping text")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Parts:
    """The outsider values the message may hold: cleaned, each checked by the guardrail's rules, or left out."""

    def __init__(self) -> None:
        self.used: list[OutsiderPart] = []
        self.left_out: list[str] = []

    def take(self, part: str, source: str, value: str | None, clean: Any) -> str | None:
        if value is None:
            return None
        cleaned = clean(value)
        findings = text_findings(cleaned) if cleaned else []
        if not cleaned or findings:
            self.left_out.append(f"{part}:{','.join(findings) or 'not_clean'}")
            return None
        self.used.append(OutsiderPart(part=part, source=source, text=cleaned))
        return str(cleaned)


def owner_message(data: NotifyInput) -> tuple[str, _Parts]:
    """The message, every byte from this template, numbers code formatted and outsider values cleaned and checked
    (a name, a company); the model's words (its reasons) are not in it."""
    parts = _Parts()
    lead, score, who = data.lead, data.score, data.assignment
    name = parts.take("name", lead.provenance.get("name", "form"), lead.name, clean_name)
    company = parts.take("company", lead.provenance.get("company", "form"), lead.company, clean_label)
    lines = [f"New lead for you: {name or 'a new contact'} at {company or 'a company (name withheld)'}.",
             f"Score: {score.score}/100 ({score.band})" + (f", capped ({', '.join(score.caps)})" if score.caps else "")
             + ".",
             f"Segment: {who.segment.replace('_', ' ')}, territory: {who.territory}; assigned because "
             f"{RULE_WORDS[who.rule].format(team=who.team or 'fallback')}."]
    write = data.crm_write
    lines.append(("Updated the existing contact" if write.contact_action == "updated" else "Created the contact")
                 + (" on the company's account" if write.company_attached else "") + " in the CRM, with a new deal.")
    discount = NOTIFY_DISCOUNT[write.discount_status]
    if discount and lead.requested_discount_pct is not None:
        lines.append(discount.format(pct=_pct(lead.requested_discount_pct)))
    if data.enrichment.partial:
        task = data.fallback_task
        lines.append("The company could not be enriched" + (": a research task is on your list." if task and
                                                            task.created else "."))
    return _slack_escape("\n".join(lines)), parts


def notify_owner(data: NotifyInput, ctx: StepContext) -> Notification:
    """Slack ``chat.postMessage`` to the owner (their direct messages; the sales channel for an owner the policy
    has no Slack id for), once."""
    text, parts = owner_message(data)
    slack = ctx.connector("slack")
    if slack is None:
        return Notification(sent=False, reason="slack_not_configured", text=text, outsider=parts.used,
                            left_out=parts.left_out)
    channel = data.assignment.slack or ownership_policy().sales_channel

    def post(key: str) -> PostedEffect:
        message = slack.post_message(channel, text)
        return PostedEffect(channel=message.channel, ts=message.ts)

    posted = ctx.once("slack_message", post, PostedEffect)
    return Notification(sent=True, channel=posted.channel, ts=posted.ts, text=text, outsider=parts.used,
                        left_out=parts.left_out)
