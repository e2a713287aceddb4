"""Support ticket triage: validate, classify, fetch the account, draft a reply, check it, (a person approves),
send it. Its automatic path is ``automatic.asl.json`` (Express); an approval waits in ``wait.asl.json``
(Standard). See README.md."""

from interlock.kit import Job, Step, Trigger, Workflow

_STEPS = "interlock.workflows.support_triage.steps"

WORKFLOW = Workflow(
    name="support_triage",
    description="Support ticket triage: classify, look the account up, draft a reply, a person approves the "
                "risky ones, send it",
    package=__name__,
    triggers=(Trigger("form", "support.ticket"),),
    steps=(
        Step("validate", Job.VALIDATE, f"{_STEPS}:validate"),
        Step("classify", Job.DECIDE, f"{_STEPS}:classify"),
        Step("fetch_account", Job.QUERY, f"{_STEPS}:fetch_account", connectors=("crm",)),
        Step("draft_reply", Job.DECIDE, f"{_STEPS}:draft_reply"),
        Step("guardrail", Job.VALIDATE, f"{_STEPS}:guardrail"),
        Step("send_reply", Job.ACT, f"{_STEPS}:send_reply", entry="completed", connectors=("helpdesk",)),
    ),
    automatic="automatic.asl.json",
    wait="wait.asl.json",
    approval_view="interlock.workflows.support_triage.approval:view",
    settings=("approval_min_confidence",),
    run_summary="interlock.workflows.support_triage.summary:summary",
)
