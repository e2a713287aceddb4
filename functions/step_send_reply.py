"""Step Functions task (support_triage.SendReply): send the reply through the helpdesk; the run completes."""

from interlock import wiring
from interlock.models import EntryState
from interlock.steps import step_handler
from interlock.workflows import triage

handler = step_handler(
    "send_reply", triage.SendInput, lambda data: triage.send_reply(data, wiring.helpdesk()),
    state=EntryState.COMPLETED,
)
