"""Domain errors that cross the Step Functions boundary.

A Lambda error reaches the state machine as ``{"Error": <exception class name>, "Cause": <JSON with
errorMessage>}``; ASL ``Retry``/``Catch`` match on the class name, so the names here are part of the
workflow contract (see each workflow's ``*.asl.json``). The message is JSON so that the recorder
can put a machine-readable reason on the timeline.
"""

from __future__ import annotations

import json
from typing import Any

# The Error of a workflow's terminal Fail state, entered only after RecordFailure has put the run's failure
# and its reason on the timeline. An execution that failed with any other error ended outside the workflow's
# own recording, and the watchdog (interlock/watchdog.py) records it. The ASL files must use this name.
RUN_FAILED = "RunFailed"


class StepError(Exception):
    """A step could not do its job. ``reason`` is the snake_case reason recorded on the timeline."""

    reason = "step_error"
    retryable = False

    def __init__(self, message: str, *, step: str = "", reason: str | None = None, **details: Any) -> None:
        self.message = message
        self.step = step
        if reason:
            self.reason = reason
        self.details = details
        super().__init__(
            json.dumps({"reason": self.reason, "step": step, "message": message, **details}, default=str)
        )


class MissingData(StepError):
    reason = "missing_data"


class TransientError(StepError):
    """Worth another try: the state machine retries it with backoff and jitter."""

    reason = "transient_error"
    retryable = True


class CrmUnavailable(TransientError):
    reason = "crm_unavailable"


class HelpdeskUnavailable(TransientError):
    reason = "helpdesk_unavailable"


class HelpdeskRejected(StepError):
    reason = "helpdesk_rejected"


class NotConfigured(StepError):
    reason = "not_configured"


def parse_cause(error: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """Turn a Catch's ``{"Error", "Cause"}`` into (reason, details) for the timeline."""
    if not error:
        return "unknown_error", {}
    name = str(error.get("Error", ""))
    details: dict[str, Any] = {"error": name}
    cause = error.get("Cause") or ""
    message: Any = cause
    try:
        cause_obj = json.loads(cause)
        message = cause_obj.get("errorMessage", cause) if isinstance(cause_obj, dict) else cause
        body = json.loads(message)
        if isinstance(body, dict) and "reason" in body:
            details.update({k: v for k, v in body.items() if k != "reason"})
            return str(body["reason"]), details
    except (TypeError, ValueError):
        pass
    if message:
        details["message"] = str(message)[:500]
    if name == "States.Timeout":
        return "timeout", details
    if name.startswith("States.") or name.startswith("Lambda."):
        return _snake(name.split(".", 1)[1]), details
    return _snake(name) or "unknown_error", details


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out).replace(".", "_")


# -- the sales-ops lead workflow's connectors (interlock.connectors: crm, enrichment, slack) -------------------


class CrmRejected(StepError):
    """The CRM refused a request (a 4xx other than not found, conflict or a rate limit): another try cannot
    help (a bad token, a property the portal does not have)."""

    reason = "crm_rejected"


class EnrichmentUnavailable(TransientError):
    """The enrichment service timed out, answered 5xx or 429, or is still looking the company up (202)."""

    reason = "enrichment_unavailable"


class EnrichmentRejected(StepError):
    """The enrichment service refused the request (a bad key, a malformed domain): another try cannot help."""

    reason = "enrichment_rejected"


class SlackUnavailable(TransientError):
    """Slack timed out, answered 5xx, rate limited the call (429 with ``Retry-After``), or said ``ok: false``
    with an error that is Slack's own (``internal_error``, ``service_unavailable``, ``ratelimited``...)."""

    reason = "slack_unavailable"


class SlackRejected(StepError):
    """Slack said ``ok: false`` with an error another try cannot fix (``channel_not_found``, ``invalid_auth``,
    ``not_authed``, ``no_text``, ``msg_too_long``...)."""

    reason = "slack_rejected"


class WhatsAppUnavailable(TransientError):
    """The Graph API timed out, answered 5xx, or rate limited the call (429, or a throttling error code such as
    ``130429`` or ``131056``): another try later may work."""

    reason = "whatsapp_unavailable"


class WhatsAppRejected(StepError):
    """The Graph API refused the message with an error another try cannot fix (an invalid token, a parameter
    Meta does not accept, ``131047``: the 24-hour window is closed); ``whatsapp_error`` is Meta's code."""

    reason = "whatsapp_rejected"
