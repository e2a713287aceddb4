"""The replay and kept-event routes on AWS: IAM-authorised, each served by a function granted no more than it uses."""

from __future__ import annotations

from infra_synthesis import Synthesis
from interlock.topology import TOPOLOGY
from test_stack import actions_of_function, routes_in_template


def test_given_the_replay_and_event_routes_when_synthesised_then_they_are_iam_authorised(synthesis: Synthesis) -> None:
    routes = {(r.method, r.path): r for r in TOPOLOGY.routes}
    assert routes[("POST", "/runs/{run_id}/replay")].function == "runs_replay"
    assert routes[("GET", "/runs/{run_id}/event")].function == "runs_api"  # read-only
    for method in synthesis.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["HttpMethod"] in ("POST", "GET") and "run_id" in str(props.get("RequestParameters", {})):
            assert props["AuthorizationType"] == "AWS_IAM", props
    assert {("POST", "/runs/{run_id}/replay"), ("GET", "/runs/{run_id}/event")} <= {
        (m, p) for m, p, _ in routes_in_template(synthesis)}


def test_given_runs_replay_when_synthesised_then_it_reads_writes_the_table_and_sends_to_the_queue_only(
    synthesis: Synthesis,
) -> None:
    actions = actions_of_function(synthesis, "runs_replay")
    # the replay's transaction (Put, Update), its undo (Delete) and the reads it decides on (Get, Query)
    assert {"sqs:SendMessage", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
            "dynamodb:Query"} <= actions
    assert not {a for a in actions if a.startswith(("states:", "ses:", "secretsmanager:"))}
    assert "sqs:ReceiveMessage" not in actions
