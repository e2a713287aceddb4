"""Step Functions task (support_triage.Classify): the ticket's category and confidence, an AI decision."""

from interlock.settings import AiSettings, GuardrailSettings, load
from interlock.steps import deadline, step_handler
from interlock.wiring import decision_runner
from interlock.workflows import triage

load(AiSettings)  # a bad setting fails the cold start, not the first ticket

handler = step_handler(
    "classify", triage.TicketInput,
    # The guardrail's threshold is the decision's: one setting says when a category needs a person.
    lambda data: triage.classify(data, decision_runner(), load(GuardrailSettings).approval_min_confidence,
                                 deadline()),
)
