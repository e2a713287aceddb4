"""Step Functions task (support_triage.Guardrail): the deterministic rules that call for a human."""

from interlock.settings import GuardrailSettings, load
from interlock.steps import step_handler
from interlock.workflows import triage

_settings = load(GuardrailSettings)

handler = step_handler(
    "guardrail", triage.GuardrailInput, lambda data: triage.guardrail(data, _settings.approval_min_confidence)
)
