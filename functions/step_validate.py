"""Step Functions task (support_triage.Validate): does the ticket have what the workflow needs?"""

from interlock.steps import step_handler
from interlock.workflows import triage

handler = step_handler("validate", triage.ValidateInput, triage.validate)
