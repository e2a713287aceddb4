"""The sales-ops lead workflow: a lead from the form or from HubSpot, deduplicated against the CRM, enriched,
scored, assigned, its discount approved when it is above the threshold, written to the CRM and its owner told in
Slack. Its steps are in :mod:`.steps`; README.md walks through them. Only :mod:`interlock.kit` is imported here: the
router, the topology and the CDK app read this declaration without loading any step.
"""

from __future__ import annotations

from interlock.kit import Job, Step, Trigger, Workflow

_STEPS = "interlock.workflows.sales_lead.steps"

WORKFLOW = Workflow(
    name="sales_lead",
    description="Sales-ops lead: dedupe, enrich, score, assign, approve a discount, write the CRM, tell the owner",
    package=__name__,
    triggers=(
        Trigger("form", "lead.submitted"),
        Trigger("hubspot", "hubspot.contact.creation"),
    ),
    steps=(
        Step("extract", Job.VALIDATE, f"{_STEPS}:extract"),
        Step("fetch_contact", Job.QUERY, f"{_STEPS}:fetch_contact", connectors=("crm",)),
        Step("dedupe", Job.QUERY, f"{_STEPS}:dedupe", connectors=("crm",)),
        Step("enrich", Job.QUERY, f"{_STEPS}:enrich", connectors=("enrichment",)),
        Step("enrichment_failed", Job.RECORD, f"{_STEPS}:enrichment_failed"),
        Step("score", Job.DECIDE, f"{_STEPS}:score"),
        Step("assign", Job.VALIDATE, f"{_STEPS}:assign"),
        Step("discount_check", Job.VALIDATE, f"{_STEPS}:discount_check"),
        Step("write_crm", Job.ACT, f"{_STEPS}:write_crm", connectors=("crm",)),
        Step("create_fallback_task", Job.ACT, f"{_STEPS}:create_fallback_task", connectors=("crm",)),
        Step("notify_owner", Job.NOTIFY, f"{_STEPS}:notify_owner", entry="completed", connectors=("slack",)),
    ),
    automatic="automatic.asl.json",
    wait="wait.asl.json",
    approval_view="interlock.workflows.sales_lead.approval:view",
    settings=("sales_discount_approval_pct",),
    settings_check="interlock.workflows.sales_lead.limits:check_settings",
    run_summary="interlock.workflows.sales_lead.summary:summary",
)
