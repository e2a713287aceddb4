"""Step Functions task (support_triage.DraftReply): the reply's paragraphs, an AI decision."""

from interlock.settings import AiSettings, load
from interlock.steps import deadline, step_handler
from interlock.wiring import decision_runner
from interlock.workflows import triage

load(AiSettings)  # a bad setting fails the cold start, not the first ticket

handler = step_handler(
    "draft_reply", triage.DraftInput, lambda data: triage.draft_reply(data, decision_runner(), deadline()),
)
