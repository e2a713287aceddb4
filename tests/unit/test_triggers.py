"""The triggers that are not webhooks, at the lowest layer: schedule expressions as EventBridge checks them, the
messages and their envelopes, dedupe keys, the status-change filter and the registry's declaration checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from interlock.kit import DataTable, Schedule, StatusChange, Workflow, registry
from interlock.kit.triggers import (
    PoisonMessage,
    ScheduleExpressionError,
    ScheduleMessage,
    StreamRecord,
    check_schedule,
    matches,
    parse_expression,
    parse_message,
    schedule_message,
    schedule_message_template,
    status_change_pattern,
    trigger_envelope,
)
from interlock.models import Envelope, run_id_for
from throwaway_triggers import CHANGE_TYPE, PACKAGE, WORKFLOW, importable

CHANGE = StatusChange("escalated", table="tickets", from_="open", to="escalated")
STREAM_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/interlock-table-tickets/stream/2026-11-22T10:00:00.000"


def record(old: str | None, new: str | None, event: str = "MODIFY", seq: str = "4421584500000000017450439091",
           arn: str = STREAM_ARN) -> dict:
    data: dict = {"Keys": {"ticket_id": {"S": "T-1"}}, "SequenceNumber": seq, "SizeBytes": 80,
                  "StreamViewType": "NEW_AND_OLD_IMAGES", "ApproximateCreationDateTime": 1795000000}
    if new is not None:
        data["NewImage"] = {"ticket_id": {"S": "T-1"}, "status": {"S": new}, "amount": {"N": "12.5"},
                            "count": {"N": "3"}, "tags": {"SS": ["b", "a"]}}
    if old is not None:
        data["OldImage"] = {"ticket_id": {"S": "T-1"}, "status": {"S": old}}
    return {"eventID": "c4ca4238a0b923820dcc509a6f75849b", "eventName": event, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1", "dynamodb": data, "eventSourceARN": arn}


@pytest.fixture
def throwaway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("INTERLOCK_EXTRA_WORKFLOWS", PACKAGE)
    monkeypatch.setenv("INTERLOCK_TABLE_TICKETS", "interlock-table-tickets")
    with importable(tmp_path):
        yield


# -- schedule expressions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("expression", [
    "cron(0 9 ? * MON-FRI *)", "cron(30 7 * * ? *)", "cron(0/15 8-18 ? * 2-6 *)", "cron(0 18 L * ? *)",
    "cron(0 9 15W * ? *)", "cron(0 9 ? * 6#3 *)", "cron(0 9 ? * 6L 2027)", "cron(0 0 1 JAN,JUL ? 2026-2030)",
    "rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(1 day)", "rate(7 days)",
])
def test_what_eventbridge_accepts_is_accepted(expression: str) -> None:
    parse_expression(expression)


@pytest.mark.parametrize(("expression", "says"), [
    ("0 9 * * *", "neither cron"),
    ("cron(0 9 * * *)", "six"),
    ("cron(0 9 * * * *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 9 ? * ? *)", "exactly one of day-of-month and day-of-week"),
    ("cron(60 9 * * ? *)", "minutes: '60'"),
    ("cron(0 24 * * ? *)", "hours: '24'"),
    ("cron(0 9 32 * ? *)", "day-of-month: '32'"),
    ("cron(0 9 ? * 8 *)", "day-of-week: '8'"),
    ("cron(0 9 ? * 0 *)", "day-of-week: '0'"),  # EventBridge counts 1-7, SUN-SAT
    ("cron(0 9 ? * 1/2 *)", "'/'"),
    ("cron(0 9 ? * 6#6 *)", "1-5"),
    ("cron(0 9 LW * ? *)", "not supported"),
    ("cron(0 9 1 * ? 2100)", "2099"),
    ("cron(0 9 10-2 * ? *)", "low to high"),
    ("cron(0 9 * * ? *) extra", "neither"),
    ("rate(0 minutes)", "at least 1"),
    ("rate(2 hour)", "singular unit for 1 and the plural"),
    ("rate(1 hours)", "singular unit for 1 and the plural"),
    ("rate(5 seconds)", "rate(<n>"),
    ("at(2026-11-22T10:00:00)", "one-time"),
])
def test_what_eventbridge_refuses_is_refused_saying_why(expression: str, says: str) -> None:
    with pytest.raises(ScheduleExpressionError, match=None) as refused:
        parse_expression(expression)
    assert says in str(refused.value)


def test_a_time_zone_that_does_not_exist_is_refused_naming_the_schedule() -> None:
    with pytest.raises(ScheduleExpressionError, match=r"'nightly'.*Europe/Atlantis"):
        check_schedule("wf", Schedule("nightly", "cron(0 2 * * ? *)", timezone="Europe/Atlantis"))


def _workflow(**fields: object) -> Workflow:
    return Workflow(name="bad", description="", package="", triggers=(), steps=(), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("workflow", "says"), [
    (_workflow(schedules=(Schedule("daily", "cron(0 9 * * * *)"),)), "'daily'"),
    (_workflow(tables=(DataTable("name", "id"),)), "may not be named 'name'"),
    (_workflow(tables=(DataTable("t", "id"),), status_changes=(
        StatusChange("a", "t", "open", "done"), StatusChange("b", "t", "unpaid", "paid", attribute="payment"))),
     "watch both"),
])
def test_the_registry_refuses_a_declaration_it_could_not_realise(workflow: Workflow, says: str) -> None:
    with pytest.raises(registry.WorkflowError) as refused:
        registry._check(workflow)
    assert says in str(refused.value)


# -- a schedule's firing -------------------------------------------------------------------------------------


def test_the_schedule_template_is_the_message_with_schedulers_placeholder_for_the_time() -> None:
    template = json.loads(schedule_message_template("wf", "daily"))
    assert template == {"kind": "interlock.schedule", "workflow": "wf", "schedule": "daily",
                        "scheduled_time": "<aws.scheduler.scheduled-time>"}
    filled = json.loads(schedule_message("wf", "daily", datetime(2026, 11, 22, 6, 30, tzinfo=UTC)))
    assert filled == {**template, "scheduled_time": "2026-11-22T06:30:00Z"}


def test_given_a_schedule_firing_then_its_envelope_is_deduplicated_by_the_scheduled_time(throwaway: None) -> None:
    body = schedule_message(WORKFLOW, "daily_check", datetime(2026, 11, 22, 6, 30, tzinfo=UTC))
    message = parse_message(body)
    assert isinstance(message, ScheduleMessage)

    first = trigger_envelope(message, datetime(2026, 11, 22, 6, 30, 5, tzinfo=UTC))
    again = trigger_envelope(parse_message(body), datetime(2026, 11, 22, 6, 31, tzinfo=UTC))  # type: ignore[arg-type]

    assert first is not None and again is not None
    assert (first.source, first.type, first.payload_version) == ("schedule", f"{WORKFLOW}.daily_check",
                                                                 "schedule.v1")
    assert first.dedupe_key == f"schedule:{WORKFLOW}.daily_check:2026-11-22T06:30:00Z"
    assert first.run_id == again.run_id == run_id_for(first.dedupe_key)
    assert first.payload["timezone"] == "Europe/Berlin"
    # the next day's firing is another run
    later = trigger_envelope(parse_message(schedule_message(  # type: ignore[arg-type]
        WORKFLOW, "daily_check", datetime(2026, 11, 23, 6, 30, tzinfo=UTC))), datetime.now(UTC))
    assert later is not None and later.run_id != first.run_id


def test_given_a_firing_of_a_schedule_no_workflow_declares_then_it_is_poison(throwaway: None) -> None:
    for workflow, schedule in ((WORKFLOW, "weekly"), ("nobody", "daily_check")):
        message = parse_message(schedule_message(workflow, schedule, datetime.now(UTC)))
        with pytest.raises(PoisonMessage, match="no workflow declares"):
            trigger_envelope(message, datetime.now(UTC))  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [
    "not json", "[]", '{"hello": "world"}',
    '{"kind": "interlock.schedule", "workflow": "wf", "schedule": "d"}',
    '{"kind": "interlock.schedule", "workflow": "wf", "schedule": "d", "scheduled_time": "yesterday"}',
    '{"kind": "interlock.schedule", "workflow": "wf", "schedule": "d", "scheduled_time": "2026-02-30T00:00:00Z"}',
    '{"kind": "interlock.schedule", "workflow": "WF!", "schedule": "d", "scheduled_time": "2026-02-03T00:00:00Z"}',
    '{"kind": "interlock.schedule", "workflow": "wf", "schedule": "d", "scheduled_time": "2026-02-03T00:00:00Z", '
    '"extra": 1}',
    '{"kind": "interlock.schedule", "workflow": "wf", "schedule": "d", "scheduled_time": 17}',
    '{"eventSource": "aws:dynamodb", "eventName": "MODIFY"}',
    '{"envelope_version": 1, "source": "form"}',
    "[" * 5000 + "]" * 5000,
    '{"world": ' + '{"a": ' * 5000 + "1" + "}" * 5001,
])
def test_a_message_of_no_known_shape_is_poison_and_the_error_never_repeats_its_content(body: str) -> None:
    with pytest.raises(PoisonMessage) as poisoned:
        parse_message(body)
    for secret_ish in ("world", "yesterday", "WF!", "2026-02-30"):
        assert secret_ish not in str(poisoned.value)


def test_an_envelope_whose_payload_nests_as_deep_as_an_ingest_accepts_is_still_an_envelope() -> None:
    from interlock.webhooks.base import MAX_JSON_DEPTH

    payload: dict = {}
    for _ in range(MAX_JSON_DEPTH - 1):
        payload = {"a": payload}
    key = "form:msg_deep"
    envelope = Envelope(event_id="msg_deep", source="form", type="x", payload_version="v", dedupe_key=key,
                        run_id=run_id_for(key), payload=payload, received_at=datetime.now(UTC))
    assert parse_message(envelope.model_dump_json()) == envelope


def test_an_envelope_is_still_an_envelope() -> None:
    key = "form:msg_1"
    envelope = Envelope(event_id="msg_1", source="form", type="x", payload_version="v", dedupe_key=key,
                        run_id=run_id_for(key), payload={}, received_at=datetime.now(UTC))
    assert parse_message(envelope.model_dump_json()) == envelope


# -- a table's status change ---------------------------------------------------------------------------------


def test_the_filter_is_a_modify_from_the_old_status_to_the_new() -> None:
    pattern = status_change_pattern(CHANGE)
    assert pattern == {"eventName": ["MODIFY"], "dynamodb": {"OldImage": {"status": {"S": ["open"]}},
                                                             "NewImage": {"status": {"S": ["escalated"]}}}}
    assert matches(pattern, record("open", "escalated"))
    assert not matches(pattern, record("open", "closed"))  # another status
    assert not matches(pattern, record("closed", "escalated"))  # from another status
    assert not matches(pattern, record("escalated", "escalated"))  # not moved
    assert not matches(pattern, record(None, "escalated", event="INSERT"))  # created so: no change
    assert not matches(pattern, record("open", None, event="REMOVE"))
    number = record("open", "escalated")
    number["dynamodb"]["NewImage"]["status"] = {"N": "1"}
    assert not matches(pattern, number)
    assert not matches(pattern, "not an object")


def test_a_pattern_beyond_exact_values_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="exact values"):
        matches({"eventName": [{"prefix": "MOD"}]}, record("open", "escalated"))


def test_given_a_status_change_then_its_envelope_carries_the_new_item_as_plain_json(throwaway: None) -> None:
    message = parse_message(json.dumps(record("open", "escalated")))
    assert isinstance(message, StreamRecord) and message.table_name == "interlock-table-tickets"

    envelope = trigger_envelope(message, datetime.now(UTC))

    assert envelope is not None
    assert (envelope.source, envelope.type, envelope.payload_version) == ("table", CHANGE_TYPE, "table.v1")
    assert envelope.dedupe_key == "table:tickets:4421584500000000017450439091"
    assert envelope.run_id == run_id_for(envelope.dedupe_key)
    assert envelope.payload["keys"] == {"ticket_id": "T-1"}
    assert envelope.payload["item"] == {"ticket_id": "T-1", "status": "escalated", "amount": 12.5, "count": 3,
                                        "tags": ["a", "b"]}
    assert (envelope.payload["old_status"], envelope.payload["new_status"]) == ("open", "escalated")
    json.dumps(envelope.model_dump(mode="json"))  # plain JSON through and through


def test_given_a_change_to_another_status_then_the_router_check_makes_no_envelope(throwaway: None) -> None:
    for other in (record("open", "closed"), record(None, "escalated", event="INSERT"),
                  record("escalated", "escalated")):
        message = parse_message(json.dumps(other))
        assert trigger_envelope(message, datetime.now(UTC)) is None  # type: ignore[arg-type]


def test_given_a_record_of_a_table_no_workflow_declares_then_it_is_poison(throwaway: None) -> None:
    other = record("open", "escalated", arn=STREAM_ARN.replace("interlock-table-tickets", "someone-elses"))
    with pytest.raises(PoisonMessage, match="no workflow declares"):
        trigger_envelope(parse_message(json.dumps(other)), datetime.now(UTC))  # type: ignore[arg-type]


def test_a_stream_record_with_a_malformed_sequence_number_or_arn_is_poison() -> None:
    bad_seq = record("open", "escalated", seq="12ab")
    bad_arn = record("open", "escalated", arn="arn:aws:sqs:eu-west-1:123456789012:queue")
    for body in (bad_seq, bad_arn):
        with pytest.raises(PoisonMessage, match="StreamRecord"):
            parse_message(json.dumps(body))


def test_a_step_reaches_the_tables_its_workflow_declares_by_their_physical_names_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from interlock.kit.context import NotGranted, Services, StepContext
    from interlock.kit.services import workflow_table_name as _table

    ctx = StepContext(run_id="r", attempt=0, workflow="wf", step="s", deadline=None,
                      services=Services(timeline=None, tables=_table), tables=("tickets",))  # type: ignore[arg-type]
    monkeypatch.setenv("INTERLOCK_TABLE_TICKETS", "stack-TicketsTable-1X2Y")
    monkeypatch.setenv("INTERLOCK_TABLE_OTHER", "someone-elses")

    assert ctx.table("tickets") == "stack-TicketsTable-1X2Y"
    with pytest.raises(NotGranted, match="did not declare"):
        ctx.table("other")  # its variable is set (another workflow's), but this workflow did not declare it
    monkeypatch.delenv("INTERLOCK_TABLE_TICKETS")
    with pytest.raises(NotGranted, match="not given"):
        ctx.table("tickets")  # declared, but this worker was given no name for it
