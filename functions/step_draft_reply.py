"""Step Functions task (support_triage.DraftReply): the reply, from a template per category."""

from interlock.steps import step_handler
from interlock.workflows import triage

handler = step_handler("draft_reply", triage.DraftInput, triage.draft_reply)
