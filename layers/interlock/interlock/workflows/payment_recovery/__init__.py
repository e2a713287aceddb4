"""Failed-payment recovery: Stripe's ``invoice.payment_failed`` -> the customer looked up in the CRM -> a dunning
email drafted (an AI decision on tone; the facts are code's), checked by the guardrail and sent once -> a wait for
Stripe's ``invoice.paid`` (or ``invoice.voided``, ``invoice.marked_uncollectible``) for the same invoice, matched by
its correlation key -> completed; without it, reminders, then customer success. README.md walks through it. Only
:mod:`interlock.kit` is imported here.
"""

from __future__ import annotations

from interlock.kit import Job, Resumer, Step, Trigger, Workflow

_STEPS = "interlock.workflows.payment_recovery.steps"
_KEY = "interlock.workflows.payment_recovery.correlation:invoice_key"

WORKFLOW = Workflow(
    name="payment_recovery",
    description="Failed-payment recovery: dunning email, then a wait for Stripe's invoice.paid; reminders, escalation",
    package=__name__,
    # A later payment_failed for the same invoice joins the open recovery (its timeline) instead of starting one.
    triggers=(Trigger("stripe", "invoice.payment_failed", correlation=_KEY),),
    resumers=(
        Resumer("stripe", "invoice.paid", _KEY),
        Resumer("stripe", "invoice.voided", _KEY),
        Resumer("stripe", "invoice.marked_uncollectible", _KEY),
    ),
    steps=(
        Step("extract", Job.VALIDATE, f"{_STEPS}:extract", summary=f"{_STEPS}:extract_summary"),
        Step("lookup_customer", Job.QUERY, f"{_STEPS}:lookup_customer", summary=f"{_STEPS}:customer_summary",
             connectors=("crm",)),
        Step("draft", Job.DECIDE, f"{_STEPS}:draft"),
        Step("guardrail", Job.VALIDATE, f"{_STEPS}:guardrail", summary=f"{_STEPS}:message_summary"),
        Step("check_unpaid", Job.VALIDATE, f"{_STEPS}:check_unpaid"),
        Step("send_dunning", Job.NOTIFY, f"{_STEPS}:send_dunning"),
        Step("send_reminder", Job.NOTIFY, f"{_STEPS}:send_reminder"),
        Step("escalate", Job.NOTIFY, f"{_STEPS}:escalate", entry="escalated"),
        Step("settle", Job.VALIDATE, f"{_STEPS}:settle", entry="completed"),
    ),
    automatic="automatic.asl.json",
    wait="wait.asl.json",
    settings=("sender_email", "payment_wait_seconds", "payment_reminders", "customer_success_email"),
    settings_check="interlock.workflows.payment_recovery.limits:check_settings",
    run_summary="interlock.workflows.payment_recovery.summary:summary",
)
