"""Step Functions task (support_triage.Classify): the ticket's category and confidence."""

from interlock.decisions import KeywordClassifier
from interlock.steps import step_handler
from interlock.workflows import triage

_classifier = KeywordClassifier()

handler = step_handler("classify", triage.TicketInput, lambda data: triage.classify(data, _classifier))
