"""The triggers that are not webhooks in the synthesised template, from a throwaway workflow that declares a table,
two schedules and a status change: the table (stream on), the Scheduler schedules into the ingest queue, the pipe
with its filter, least-privilege roles, the workers' grants on the table, and cdk-nag still clean."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from infra_synthesis import Synthesis, synthesize
from interlock.kit import StatusChange
from interlock.kit.triggers import schedule_message_template, status_change_pattern
from test_stack import functions_by_name, queue_lids, role_lid_of_function, statements_of_role
from throwaway_triggers import DAILY, HOURLY, PACKAGE, TABLE, WORKFLOW, importable

from infra.constructs.functions import WORKFLOW_TABLE_ACTIONS

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def triggers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesis]:
    root = tmp_path_factory.mktemp("triggers")
    with importable(root / "packages"):
        yield synthesize(root / "out", {"interlock:extra_workflows": PACKAGE})


def _arn(s: Synthesis, queue: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [queue_lids(s)[queue], "Arn"]}


def _table(s: Synthesis) -> tuple[str, dict[str, Any]]:
    [(lid, table)] = [(lid, r) for lid, r in s.of_type("AWS::DynamoDB::Table").items()
                      if r["Properties"]["KeySchema"][0]["AttributeName"] == "ticket_id"]
    return lid, table["Properties"] | {"_resource": table}


def _pipe(s: Synthesis, table_lid: str) -> dict[str, Any]:
    """The properties of the one pipe reading ``table_lid``'s stream."""
    [props] = [r["Properties"] for r in s.of_type("AWS::Pipes::Pipe").values()
               if r["Properties"]["Source"] == {"Fn::GetAtt": [table_lid, "StreamArn"]}]
    return props


def _table_and_indexes(table_lid: str) -> Any:
    """What a worker's grant on the throwaway's table names: the table (it declares no index; CDK may merge it into
    the statement of the timeline table's grant, whose actions are the same)."""
    return {"Fn::GetAtt": [table_lid, "Arn"]}


def _allowed(statements: list[dict[str, Any]]) -> list[tuple[set[str], Any]]:
    return [({*(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}, st["Resource"])
            for st in statements if st["Effect"] == "Allow"]


def test_the_synthesis_with_triggers_passes_cdk_nag(triggers: Synthesis) -> None:
    assert triggers.error is None, triggers.error


def test_the_workflow_table_is_made_as_the_timeline_table_with_its_stream_on(triggers: Synthesis) -> None:
    _, props = _table(triggers)
    assert props["KeySchema"] == [{"AttributeName": "ticket_id", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["DeletionProtectionEnabled"] is True
    assert props["_resource"]["DeletionPolicy"] == "Retain"


def test_the_built_in_workflows_schedules_pipes_and_tables_are_exactly_the_topologys(synthesis: Synthesis) -> None:
    from interlock.topology import TOPOLOGY

    schedules = [json.loads(r["Properties"]["Target"]["Input"])
                 for r in synthesis.of_type("AWS::Scheduler::Schedule").values()]
    assert sorted((s["workflow"], s["schedule"]) for s in schedules) == sorted(
        (s.workflow, s.name) for s in TOPOLOGY.schedules)
    assert len(synthesis.of_type("AWS::Pipes::Pipe")) == len(TOPOLOGY.status_pipes)
    assert len(synthesis.of_type("AWS::DynamoDB::Table")) == 1 + len(TOPOLOGY.workflow_tables)  # and the timeline


def test_each_schedule_sends_schedulers_message_to_the_ingest_queue_with_retries_and_the_dlq(
    triggers: Synthesis,
) -> None:
    schedules = {json.loads(r["Properties"]["Target"]["Input"])["schedule"]: r["Properties"]
                 for r in triggers.of_type("AWS::Scheduler::Schedule").values()
                 if json.loads(r["Properties"]["Target"]["Input"])["workflow"] == WORKFLOW}
    assert set(schedules) == {DAILY, HOURLY}
    daily = schedules[DAILY]
    assert (daily["ScheduleExpression"], daily["ScheduleExpressionTimezone"]) == ("cron(30 7 * * ? *)",
                                                                                 "Europe/Berlin")
    assert schedules[HOURLY]["ScheduleExpression"] == "rate(1 hour)"
    for name, props in schedules.items():
        assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert props["State"] == "ENABLED"
        target = props["Target"]
        assert target["Arn"] == _arn(triggers, "ingest")
        assert target["Input"] == schedule_message_template(WORKFLOW, name)
        assert "<aws.scheduler.scheduled-time>" in target["Input"]
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
        assert target["DeadLetterConfig"] == {"Arn": _arn(triggers, "ingest-dlq")}


def test_the_schedules_role_may_only_send_to_the_ingest_queue_and_its_dlq(triggers: Synthesis) -> None:
    [props] = [r["Properties"] for r in triggers.of_type("AWS::Scheduler::Schedule").values()][:1]
    role_lid = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    trust = triggers.resources[role_lid]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [st["Principal"] for st in trust] == [{"Service": "scheduler.amazonaws.com"}]
    assert all("aws:SourceAccount" in st["Condition"]["StringEquals"] for st in trust)
    allowed = _allowed(statements_of_role(triggers, role_lid))
    assert {a for actions, _ in allowed for a in actions} == {"sqs:SendMessage"}
    resources = [r for _, res in allowed for r in (res if isinstance(res, list) else [res])]
    assert sorted(map(json.dumps, resources)) == sorted(
        map(json.dumps, [_arn(triggers, "ingest"), _arn(triggers, "ingest-dlq")]))


def test_the_pipe_reads_the_tables_stream_through_the_status_change_filter_into_the_ingest_queue(
    triggers: Synthesis,
) -> None:
    table_lid, _ = _table(triggers)
    props = _pipe(triggers, table_lid)
    assert props["Source"] == {"Fn::GetAtt": [table_lid, "StreamArn"]}
    assert props["Target"] == _arn(triggers, "ingest")
    [pattern] = props["SourceParameters"]["FilterCriteria"]["Filters"]
    expected = status_change_pattern(StatusChange("escalated", table=TABLE, from_="open", to="escalated"))
    assert json.loads(pattern["Pattern"]) == expected
    assert json.loads(pattern["Pattern"]) == {"eventName": ["MODIFY"], "dynamodb": {
        "OldImage": {"status": {"S": ["open"]}}, "NewImage": {"status": {"S": ["escalated"]}}}}
    stream = props["SourceParameters"]["DynamoDBStreamParameters"]
    assert stream["StartingPosition"] == "LATEST"
    assert stream["DeadLetterConfig"] == {"Arn": _arn(triggers, "ingest-dlq")}
    assert stream["BatchSize"] <= 10 and stream["MaximumRetryAttempts"] >= 1


def test_the_pipes_role_reads_only_its_tables_stream_and_sends_only_to_the_ingest_queue(triggers: Synthesis) -> None:
    table_lid, _ = _table(triggers)
    props = _pipe(triggers, table_lid)
    role_lid = props["RoleArn"]["Fn::GetAtt"][0]
    trust = triggers.resources[role_lid]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [st["Principal"] for st in trust] == [{"Service": "pipes.amazonaws.com"}]
    for actions, resource in _allowed(statements_of_role(triggers, role_lid)):
        if actions == {"dynamodb:ListStreams"}:
            assert resource == "*"  # supports no resource-level permission
        elif actions <= {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}:
            assert resource == {"Fn::GetAtt": [table_lid, "StreamArn"]}
        else:
            assert actions == {"sqs:SendMessage"}
            assert sorted(map(json.dumps, resource)) == sorted(
                map(json.dumps, [_arn(triggers, "ingest"), _arn(triggers, "ingest-dlq")]))


def test_the_workers_of_the_workflows_jobs_read_and_write_its_table_and_are_told_its_name(
    triggers: Synthesis,
) -> None:
    table_lid, _ = _table(triggers)
    functions = functions_by_name(triggers)
    for name in ("job_validate", "job_record"):  # the jobs its steps use (record: every workflow's outcomes)
        env = functions[name][1]["Properties"]["Environment"]["Variables"]
        assert env["INTERLOCK_TABLE_TICKETS"] == {"Ref": table_lid}
        grants = [actions for actions, resource in _allowed(statements_of_role(triggers, role_lid_of_function(
            triggers, name))) if _table_and_indexes(table_lid) in (resource if isinstance(resource, list)
                                                                   else [resource])]
        assert grants == [set(WORKFLOW_TABLE_ACTIONS)]
    for name in ("job_decide", "job_act", "webhook_ingest"):  # no step of the workflow runs there
        env = functions[name][1]["Properties"]["Environment"]["Variables"]
        assert "INTERLOCK_TABLE_TICKETS" not in env
        assert table_lid not in json.dumps(statements_of_role(triggers, role_lid_of_function(triggers, name)))
    # the router is told the name (a stream record names its table by ARN), and may not touch the table
    router = functions["ingest_router"][1]["Properties"]["Environment"]["Variables"]
    assert router["INTERLOCK_TABLE_TICKETS"] == {"Ref": table_lid}
    assert table_lid not in json.dumps(statements_of_role(triggers, role_lid_of_function(triggers, "ingest_router")))


def test_the_workflow_table_name_is_an_output(triggers: Synthesis) -> None:
    table_lid, _ = _table(triggers)
    outputs = triggers.raw["Outputs"]
    assert outputs["TicketsWorkflowTableName"]["Value"] == {"Ref": table_lid}




def test_the_invoice_intakes_table_index_schedule_pipe_and_follow_up_grant(synthesis: Synthesis) -> None:
    """The built-in invoice intake as deployed: the invoices table with its by_status index and its stream, the
    daily 07:00 UTC check, the pipe passing only recorded -> approved, and the act worker (find_past_due starts
    the follow-ups) allowed to send to the ingest queue and to query the index by name."""
    [(lid, table)] = [(lid, r["Properties"]) for lid, r in synthesis.of_type("AWS::DynamoDB::Table").items()
                      if r["Properties"]["KeySchema"][0]["AttributeName"] == "invoice_id"]
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_status" and index["Projection"] == {"ProjectionType": "ALL"}
    assert index["KeySchema"] == [{"AttributeName": "status", "KeyType": "HASH"},
                                  {"AttributeName": "due_date", "KeyType": "RANGE"}]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}

    [check] = [r["Properties"] for r in synthesis.of_type("AWS::Scheduler::Schedule").values()
               if json.loads(r["Properties"]["Target"]["Input"])["workflow"] == "invoice_intake"]
    assert (check["ScheduleExpression"], check["ScheduleExpressionTimezone"]) == ("cron(0 7 * * ? *)", "UTC")
    assert check["Target"]["Arn"] == _arn(synthesis, "ingest")

    [pattern] = _pipe(synthesis, lid)["SourceParameters"]["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == {"eventName": ["MODIFY"], "dynamodb": {
        "OldImage": {"status": {"S": ["recorded"]}}, "NewImage": {"status": {"S": ["approved"]}}}}

    functions = functions_by_name(synthesis)
    allowed = _allowed(statements_of_role(synthesis, role_lid_of_function(synthesis, "job_act")))
    sends = [resource for actions, resource in allowed if "sqs:SendMessage" in actions]
    assert sends and all(_arn(synthesis, "ingest") in (r if isinstance(r, list) else [r]) for r in sends)
    assert functions["job_act"][1]["Properties"]["Environment"]["Variables"]["INTERLOCK_INGEST_QUEUE_URL"] == {
        "Ref": queue_lids(synthesis)["ingest"]}
    index_arn = {"Fn::Join": ["", [{"Fn::GetAtt": [lid, "Arn"]}, "/index/by_status"]]}
    queries = [actions for actions, resource in allowed if index_arn in (resource if isinstance(resource, list)
                                                                         else [resource])]
    assert queries == [set(WORKFLOW_TABLE_ACTIONS)]
    assert not {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & set(WORKFLOW_TABLE_ACTIONS)
    for name in ("job_validate", "job_decide", "job_query", "job_notify", "job_record"):  # no step of theirs starts
        variables = functions[name][1]["Properties"]["Environment"]["Variables"]
        assert "INTERLOCK_INGEST_QUEUE_URL" not in variables
        assert not [a for a, _ in _allowed(statements_of_role(synthesis, role_lid_of_function(synthesis, name)))
                    if "sqs:SendMessage" in a]
