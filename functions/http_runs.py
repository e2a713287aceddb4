"""API Gateway GET /runs/{run_id}: a run's status and its ordered timeline; GET /runs/{run_id}/event: the event it
was started with, payload included (personal data: asked for explicitly, never part of the run's view);
GET /runs/{run_id}/events: the timeline as Server-Sent Events (interlock.run_events); GET /runs and
GET /approvals: lists of runs, filtered, a page at a time (interlock.run_list)."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from interlock import run_events
from interlock.http import can_name_a_record, json_response
from interlock.models import is_run_id
from interlock.observability import logger, metrics, tracer
from interlock.wiring import run_lists, timeline_store

app = APIGatewayRestResolver()


@app.get("/runs")
def list_runs() -> Response:
    return json_response(*run_lists().runs(app.current_event.query_string_parameters))


@app.get("/approvals")
def list_approvals() -> Response:
    return json_response(*run_lists().approvals(app.current_event.query_string_parameters))


@app.get("/runs/<run_id>")
def get_run(run_id: str) -> Response:
    view = timeline_store().get(run_id) if can_name_a_record(run_id) else None
    if view is None:
        return json_response(404, {"error": "unknown_run", "message": f"no run with id {run_id[:100]!r}"})
    return json_response(200, view.model_dump(mode="json"))


@app.get("/runs/<run_id>/event")
def get_run_event(run_id: str) -> Response:
    if not is_run_id(run_id):
        return json_response(400, {"error": "bad_run_id", "message": "a run id is a UUID, as answered when its "
                                                                     "event was accepted"})
    envelope = timeline_store().envelope(run_id)
    if envelope is None:
        return json_response(404, {"error": "no_kept_event", "message": f"no kept event for a run with id {run_id!r}"})
    return json_response(200, envelope.model_dump(mode="json"))


@app.get("/runs/<run_id>/events")
def get_run_events(run_id: str) -> Response:
    event = app.current_event
    answer = run_events.answer(timeline_store(), run_id, event.headers, event.query_string_parameters)
    return Response(status_code=answer.status, content_type=answer.content_type, body=answer.body,
                    headers=answer.headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
