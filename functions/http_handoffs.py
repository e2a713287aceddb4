"""API Gateway GET/HEAD/POST /handoffs/{token}: a handed-off conversation; a POST replies or hands it back, once."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from interlock import handoff_pages as pages
from interlock.approval_form import read_form
from interlock.handoffs import FORM_ID_PATTERN, MAX_REPLY_CHARS, Outcome, reply_problem
from interlock.observability import count, logger, metrics, tracer
from interlock.wiring import handoff_service

app = APIGatewayRestResolver()

# The reply box's words, percent-encoded (up to 12 bytes a character), and the form's other fields.
MAX_FORM_BYTES = 64 * 1024


def _html(status: int, body: str) -> Response:
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=body,
                    headers=pages.SECURITY_HEADERS)


@app.get("/handoffs/<token>")
@app.head("/handoffs/<token>")
def show(token: str) -> Response:
    view = handoff_service().view(token)
    if view is None:
        return _html(404, pages.unknown())
    return _html(*pages.shown(view))


def _one(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name, [])
    return values[0] if len(values) == 1 else None


@app.post("/handoffs/<token>")
def act(token: str) -> Response:
    event = app.current_event
    fields = read_form(event.body, bool(event.is_base64_encoded), MAX_FORM_BYTES)
    action = _one(fields, "action") if fields is not None else None
    if fields is None or action not in ("reply", "hand_back"):
        return _html(400, pages.bad_form())
    service = handoff_service()
    try:
        if action == "hand_back":
            result = service.hand_back(token)
        else:
            text, form_id = _one(fields, "text"), _one(fields, "form_id")
            if text is None or form_id is None or not FORM_ID_PATTERN.match(form_id):
                return _html(400, pages.bad_form())
            problem = reply_problem(text)
            if problem is not None:
                return _refused(token, problem, text)
            result = service.reply(token, form_id, text)
    except Exception:
        # Nothing was started (or the hand-back was taken back): the page can be sent again.
        logger.exception("could not act on the hand-off page")
        return _html(503, pages.unavailable())
    if result.outcome is Outcome.UNKNOWN or result.view is None:
        return _html(404, pages.unknown())
    if result.outcome is not Outcome.DONE:
        return _html(*pages.shown(result.view))
    count("HandoffReplies" if action == "reply" else "HandoffsHandedBack")
    logger.info("hand-off page acted on", extra={"action": action, "run": result.run_id})
    if action == "reply":
        return _html(202, pages.sent(result.run_id or ""))
    return _html(200, pages.handed_back(result.run_id or ""))


def _refused(token: str, problem: str, text: str) -> Response:
    """A reply that cannot go as written: the page again (a 400) with why and the words kept, if the link works."""
    view = handoff_service().view(token)
    if view is None:
        return _html(404, pages.unknown())
    status, page = pages.shown(view)
    if status != 200:
        return _html(status, page)
    return _html(400, pages.open_page(view, problem, text[:MAX_REPLY_CHARS]))


# The token is a credential: no correlation path that could copy it into a log line, and no response or error
# (which may quote it, or a customer's words) in a trace.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
