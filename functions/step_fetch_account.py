"""Step Functions task (support_triage.FetchAccount): account context from the CRM."""

from interlock import wiring
from interlock.steps import step_handler
from interlock.workflows import triage

handler = step_handler("fetch_account", triage.TicketInput, lambda data: triage.fetch_account(data, wiring.crm()))
