"""API Gateway GET/HEAD/POST /approvals/{token}: show an approval; a POST decides it, once."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from interlock import approval_pages as pages
from interlock.approval_form import read_decision
from interlock.approvals import Outcome
from interlock.observability import logger, metrics, tracer
from interlock.wiring import approval_service

app = APIGatewayRestResolver()


def _html(status: int, body: str) -> Response:
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=body,
                    headers=pages.SECURITY_HEADERS)


@app.get("/approvals/<token>")
@app.head("/approvals/<token>")
def show(token: str) -> Response:
    record = approval_service().find(token)
    if record is None:
        return _html(404, pages.unknown())
    status = record.effective_status(_now())
    if status.value == "pending":
        return _html(200, pages.pending(record))
    if status.value == "expired":
        return _html(410, pages.expired())
    return _html(200, pages.decided(status, record, just_now=False))  # already decided, or closed by others


@app.post("/approvals/<token>")
def decide(token: str) -> Response:
    event = app.current_event
    decision = read_decision(event.body, bool(event.is_base64_encoded))
    if decision is None:
        return _html(400, pages.bad_decision())
    try:
        result = approval_service().decide(token, decision)
    except Exception:
        # Nothing was decided and the link stays open: say so, and to try again.
        logger.exception("could not decide the approval")
        return _html(503, pages.unavailable())
    if result.outcome is Outcome.UNKNOWN or result.record is None or result.status is None:
        return _html(404, pages.unknown())
    if result.outcome is Outcome.EXPIRED:
        return _html(410, pages.expired())
    if result.outcome is Outcome.ALREADY_DECIDED:
        return _html(409, pages.decided(result.status, result.record, just_now=False))
    return _html(200, pages.decided(result.status, result.record, just_now=True))


def _now() -> float:
    import time

    return time.time()


# The token is a credential: no correlation path that could copy it into a log line, and no response or error
# (which may quote it) in a trace.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
