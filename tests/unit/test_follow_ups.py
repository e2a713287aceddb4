"""Follow-up runs at the lowest layer: a workflow's ``FollowUp`` and its steps' ``Step.starts``, what the registry
refuses of them, the messages ``StepContext.start_runs`` makes and the envelope the router makes of each, the
queue starter's batches, and what the topology gives (only) the workers of the jobs whose steps start runs."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from interlock.kit import FollowUp, Job, Resumer, Step, Trigger, Workflow, registry, worker
from interlock.kit.context import NotGranted, Services, StepContext
from interlock.kit.follow_ups import (
    FOLLOW_UP_MESSAGE_KIND,
    MAX_DATA_BYTES,
    MAX_PER_CALL,
    FollowUpMessage,
    FollowUpNotSent,
    InvalidFollowUp,
    QueueStarter,
    follow_up_dedupe_key,
    follow_up_run_id,
    messages,
)
from interlock.kit.triggers import PoisonMessage, parse_message, trigger_envelope
from interlock.models import EntryState, Envelope, run_id_for
from interlock.topology import INGEST_QUEUE, TOPOLOGY, Access, Grant, InvalidWebhookSource, Ref, RefKind, build

from unit.fakes import RecordingTimeline

# The built-in follow-up: invoice intake's daily check starts one ``past_due`` run per invoice per day.
WORKFLOW = "invoice_intake"
FOLLOW_UP = "past_due"
STARTED_BY = "0f8fad5b-d9cb-469f-a165-70867728950e"
KEY = "invoice:LE-000042:2026-12-02"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/interlock-ingest"

# A throwaway workflow no platform code knows, whose query step ``fan_out`` starts ``nudge`` runs and whose
# ``sneak`` (the same job) does not declare that it starts any.
PACKAGE = "throwaway_follow_ups_wf"
THROWAWAY = "throwaway_follow_ups"
INIT = '''
from interlock.kit import FollowUp, Job, Step, Workflow

WORKFLOW = Workflow(
    name="throwaway_follow_ups",
    description="A throwaway workflow: a query step that starts a follow-up run per key it is given",
    package=__name__,
    triggers=(),
    steps=(
        Step("fan_out", Job.QUERY, "throwaway_follow_ups_wf.steps:fan_out", entry="completed", starts=("nudge",)),
        Step("sneak", Job.QUERY, "throwaway_follow_ups_wf.steps:sneak", entry="completed"),
    ),
    follow_ups=(FollowUp("nudge", "one run per key"), FollowUp("past_due", "invoice intake has one of this name")),
)
'''
STEPS = '''
from pydantic import BaseModel

from interlock.kit.context import StepContext
from interlock.steps import StepInput


class FanOutInput(StepInput):
    keys: list[str]


class Started(BaseModel):
    run_ids: list[str]


def fan_out(data: FanOutInput, ctx: StepContext) -> Started:
    return Started(run_ids=ctx.start_runs("nudge", [(key, {"thing": key}) for key in data.keys]))


def sneak(data: FanOutInput, ctx: StepContext) -> Started:
    return Started(run_ids=ctx.start_runs("nudge", [(key, {}) for key in data.keys]))
'''
AUTOMATIC = {"StartAt": "FanOut", "States": {
    "FanOut": {"Type": "Task", "Resource": "${Worker_query}", "Next": "Done",
               "Parameters": {"workflow": THROWAWAY, "step": "fan_out", "run_id.$": "$.run_id", "keys": []}},
    "Done": {"Type": "Succeed"}}}


@contextmanager
def throwaway_package(root: Path, init: str = INIT) -> Iterator[str]:
    package = root / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(init)
    (package / "steps.py").write_text(STEPS)
    (package / "automatic.asl.json").write_text(json.dumps(AUTOMATIC))
    sys.path.insert(0, str(root))
    registry.clear()
    try:
        yield PACKAGE
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
        registry.clear()


@pytest.fixture(autouse=True)
def built_in_workflows_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(registry.EXTRA_ENV, raising=False)


@pytest.fixture
def throwaway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(registry.EXTRA_ENV, PACKAGE)
    with throwaway_package(tmp_path) as package:
        yield package


def message(key: str = KEY, **fields: Any) -> FollowUpMessage:
    return FollowUpMessage(**{"kind": FOLLOW_UP_MESSAGE_KIND, "workflow": WORKFLOW, "follow_up": FOLLOW_UP,
                              "key": key, "started_by": STARTED_BY, "data": {"invoice_id": "LE-000042"}, **fields})


# -- the declaration -----------------------------------------------------------------------------------------


def test_given_invoice_intake_then_its_follow_up_is_routed_as_source_workflow_to_it_and_started_by_its_check(
) -> None:
    wf = registry.workflows("")[WORKFLOW]
    assert [f.name for f in wf.follow_ups] == [FOLLOW_UP]
    assert wf.follow_up_type(FOLLOW_UP) == "invoice_intake.past_due"
    assert registry.routes("")[("workflow", "invoice_intake.past_due")] == WORKFLOW
    assert [s.name for s in wf.steps if s.starts] == ["find_past_due"]
    assert wf.step("find_past_due").starts == (FOLLOW_UP,)
    assert Step("s", Job.ACT, "m:f").starts == ()  # a step starts nothing unless it says so
    with pytest.raises(KeyError, match="has no follow-up 'weekly'"):
        wf.follow_up_type("weekly")


def _workflow(**fields: Any) -> Workflow:
    fields.setdefault("steps", ())
    fields.setdefault("triggers", ())
    return Workflow(name="bad", description="", package="", **fields)


def test_a_well_declared_follow_up_passes_the_registrys_checks() -> None:
    registry._check(_workflow(follow_ups=(FollowUp("nudge"), FollowUp("past_due")),
                              steps=(Step("find", Job.ACT, "m:f", starts=("nudge", "past_due")),
                                     Step("other", Job.QUERY, "m:g"))))


@pytest.mark.parametrize(("workflow", "says"), [
    (_workflow(follow_ups=(FollowUp("Past-Due"),)), "follow-up name 'Past-Due' is not lower-case letters"),
    (_workflow(follow_ups=(FollowUp("a" * 41),)), f"follow-up name {'a' * 41!r}"),
    (_workflow(follow_ups=(FollowUp("9lives"),)), "follow-up name '9lives'"),
    (_workflow(follow_ups=(FollowUp("nudge"), FollowUp("nudge", "again"))), "two follow-ups share a name"),
    (_workflow(follow_ups=(FollowUp("nudge"),), steps=(Step("find", Job.ACT, "m:f", starts=("nudge", "poke")),)),
     "step 'find' starts poke, which the workflow does not declare (Workflow.follow_ups)"),
    (_workflow(steps=(Step("find", Job.ACT, "m:f", starts=("nudge",)),)), "step 'find' starts nudge, which"),
    (_workflow(triggers=(Trigger("workflow", "invoice_intake.past_due"),)),
     "a trigger or resumer of source 'workflow'"),
    (_workflow(triggers=(Trigger("schedule", "bad.daily"),)), "a trigger or resumer of source 'schedule'"),
    (_workflow(triggers=(Trigger("table", "t.status:a->b"),)), "a trigger or resumer of source 'table'"),
    (_workflow(resumers=(Resumer("workflow", "bad.nudge", "m:key"),), wait="wait.asl.json"),
     "a trigger or resumer of source 'workflow'"),
], ids=["capitals", "too-long", "digit-first", "shared-name", "starts-undeclared", "starts-without-follow-ups",
        "trigger-source-workflow", "trigger-source-schedule", "trigger-source-table", "resumer-source-workflow"])
def test_the_registry_refuses_a_follow_up_declaration_it_could_not_route(workflow: Workflow, says: str) -> None:
    with pytest.raises(registry.WorkflowError) as refused:
        registry._check(workflow)
    assert says in str(refused.value)


def test_given_a_package_whose_webhook_trigger_takes_a_follow_ups_route_then_loading_it_is_refused(
    tmp_path: Path,
) -> None:
    stealing = INIT.replace("triggers=(),", "triggers=(__import__('interlock.kit').kit.Trigger("
                                           "'workflow', 'invoice_intake.past_due'),),")
    with throwaway_package(tmp_path, stealing) as package, pytest.raises(
            registry.WorkflowError, match="'throwaway_follow_ups': a trigger or resumer of source 'workflow'"):
        registry.workflows(package)


def test_given_two_workflows_with_a_follow_up_of_one_name_then_each_routes_to_its_own(throwaway: str) -> None:
    routes = registry.routes(throwaway)
    assert routes[("workflow", "invoice_intake.past_due")] == WORKFLOW
    assert routes[("workflow", "throwaway_follow_ups.past_due")] == THROWAWAY
    assert routes[("workflow", "throwaway_follow_ups.nudge")] == THROWAWAY


# -- the messages a step sends -------------------------------------------------------------------------------


def test_the_messages_are_one_per_distinct_key_in_order_each_with_a_copy_of_its_data() -> None:
    data = {"invoice_id": "LE-1", "lines": (1, 2)}
    made = messages(WORKFLOW, FOLLOW_UP, STARTED_BY, [("k-1", data), ("k-2", {"n": 2}), ("k-1", {"n": "again"})])
    data["invoice_id"] = "changed afterwards"

    assert [(m.kind, m.workflow, m.follow_up, m.key, m.started_by) for m in made] == [
        (FOLLOW_UP_MESSAGE_KIND, WORKFLOW, FOLLOW_UP, "k-1", STARTED_BY),
        (FOLLOW_UP_MESSAGE_KIND, WORKFLOW, FOLLOW_UP, "k-2", STARTED_BY)]
    assert made[0].data == {"invoice_id": "LE-1", "lines": [1, 2]}  # JSON, as the router will read it
    assert made[1].data == {"n": 2}
    assert (made[0].event_type, made[0].dedupe_key) == ("invoice_intake.past_due",
                                                        "follow_up:invoice_intake.past_due:k-1")


def test_the_largest_follow_ups_allowed_are_made() -> None:
    filler = "x" * (MAX_DATA_BYTES - len('{"f":""}'))
    assert len(json.dumps({"f": filler}, separators=(",", ":"))) == MAX_DATA_BYTES
    keys = ["K" + "k" * 199, "a:b.c_d@e/f+g=h-1"]
    made = messages(WORKFLOW, FOLLOW_UP, STARTED_BY, [(keys[0], {"f": filler}), (keys[1], {})])
    assert [m.key for m in made] == keys
    assert len(messages(WORKFLOW, FOLLOW_UP, STARTED_BY, [(f"k{i}", {}) for i in range(MAX_PER_CALL)])) == 500


class NotJson:
    pass


@pytest.mark.parametrize(("item", "says"), [
    (("", {}), "key is 1 to 200"),
    (("has space", {}), "key is 1 to 200"),
    (("-leading", {}), "key is 1 to 200"),
    (("k" * 201, {}), "key is 1 to 200"),
    (("line\n", {}), "key is 1 to 200"),
    ((42, {}), "key is 1 to 200"),
    (("k", ["not", "an", "object"]), "data is a JSON object"),
    (("k", {"at": NotJson()}), "data is not JSON"),
    (("k", {"tags": {"a", "b"}}), "data is not JSON"),
    (("k", {"amount": float("nan")}), "data is not JSON"),  # JSON has no NaN: it would arrive as null
    (("k", {"amount": float("inf")}), "data is not JSON"),
    (("k", {"f": "x" * MAX_DATA_BYTES}), f"more than {MAX_DATA_BYTES} bytes"),
    (("k", {"f": "é" * (MAX_DATA_BYTES // 2)}), f"more than {MAX_DATA_BYTES} bytes"),  # bytes, not characters
], ids=["empty-key", "space", "leading-dash", "long-key", "newline", "int-key", "list-data", "object", "set", "nan",
        "inf", "too-large", "too-large-utf8"])
def test_a_follow_up_that_cannot_be_a_run_refuses_the_whole_call_naming_which(item: tuple[Any, Any],
                                                                              says: str) -> None:
    with pytest.raises(InvalidFollowUp) as refused:
        messages(WORKFLOW, FOLLOW_UP, STARTED_BY, [("good-1", {}), ("good-2", {}), item], step="find_past_due")
    assert says in refused.value.message
    assert (refused.value.reason, refused.value.step, refused.value.details) == (
        "invalid_follow_up", "find_past_due", {"index": 2})
    assert not refused.value.retryable  # the same call would fail the same way


def test_more_follow_ups_than_one_call_may_start_are_refused() -> None:
    with pytest.raises(InvalidFollowUp, match="501 follow-ups in one call; at most 500"):
        messages(WORKFLOW, FOLLOW_UP, STARTED_BY, [(f"k{i}", {}) for i in range(MAX_PER_CALL + 1)])


# -- the envelope the router makes ---------------------------------------------------------------------------


def test_given_a_follow_up_message_then_its_envelope_is_source_workflow_deduplicated_by_workflow_name_and_key(
) -> None:
    sent = message()
    received = datetime(2026, 12, 2, 7, 0, 3, tzinfo=UTC)

    parsed = parse_message(sent.model_dump_json())
    assert parsed == sent
    envelope = trigger_envelope(parsed, received)  # type: ignore[arg-type]

    assert isinstance(envelope, Envelope)
    assert (envelope.source, envelope.type, envelope.payload_version) == ("workflow", "invoice_intake.past_due",
                                                                          "follow_up.v1")
    assert envelope.event_id == f"invoice_intake.past_due:{KEY}"
    assert envelope.dedupe_key == f"follow_up:invoice_intake.past_due:{KEY}"
    assert envelope.run_id == run_id_for(envelope.dedupe_key) == follow_up_run_id(WORKFLOW, FOLLOW_UP, KEY)
    assert envelope.received_at == received
    assert envelope.payload == {"workflow": WORKFLOW, "follow_up": FOLLOW_UP, "key": KEY, "started_by": STARTED_BY,
                                "data": {"invoice_id": "LE-000042"}}
    json.dumps(envelope.model_dump(mode="json"))
    # sent again later (a retried step, the check fired twice): the same run; started by another run, too
    again = trigger_envelope(message(started_by=str(uuid.uuid4())), datetime.now(UTC))
    assert again is not None and again.run_id == envelope.run_id
    # the next day's key is another run
    later = trigger_envelope(message(key="invoice:LE-000042:2026-12-03"), datetime.now(UTC))
    assert later is not None and later.run_id != envelope.run_id


def test_the_dedupe_key_tells_workflows_follow_ups_and_keys_apart() -> None:
    keys = {follow_up_dedupe_key("a", "b", "k"), follow_up_dedupe_key("a", "c", "k"),
            follow_up_dedupe_key("d", "b", "k"), follow_up_dedupe_key("a", "b", "k2")}
    assert len(keys) == 4
    assert len({run_id_for(k) for k in keys}) == 4


def test_given_a_follow_up_of_the_throwaway_then_its_envelope_names_that_workflow(throwaway: str) -> None:
    envelope = trigger_envelope(message(workflow=THROWAWAY, follow_up="nudge", key="n-1"), datetime.now(UTC))
    assert envelope is not None
    assert (envelope.type, envelope.dedupe_key) == ("throwaway_follow_ups.nudge",
                                                    "follow_up:throwaway_follow_ups.nudge:n-1")


@pytest.mark.parametrize(("workflow", "follow_up"), [
    (WORKFLOW, "weekly"),  # the workflow declares no such follow-up
    ("support_triage", FOLLOW_UP),  # a workflow that declares none
    ("nobody", FOLLOW_UP),  # no such workflow
])
def test_given_a_follow_up_no_workflow_declares_then_it_is_poison(workflow: str, follow_up: str) -> None:
    with pytest.raises(PoisonMessage, match=f"no workflow declares the follow-up '{workflow}.{follow_up}'"):
        trigger_envelope(message(workflow=workflow, follow_up=follow_up), datetime.now(UTC))


def _body(**changes: Any) -> str:
    body: dict[str, Any] = json.loads(message().model_dump_json())
    for name, value in changes.items():
        if value is None:
            del body[name]
        else:
            body[name] = value
    return json.dumps(body)


@pytest.mark.parametrize(("body", "field"), [
    (_body(key=None), "key"),
    (_body(data=None), "data"),
    (_body(extra="sneaked-in"), "extra"),
    (_body(workflow="Invoice-Intake!"), "workflow"),
    (_body(follow_up="past due"), "follow_up"),
    (_body(key="a key with spaces"), "key"),
    (_body(key="k" * 201), "key"),
    (_body(started_by="not-a-run-id"), "started_by"),
    (_body(started_by=12), "started_by"),
    (_body(data=["secret-list"]), "data"),
    (_body(data={"f": "x" * MAX_DATA_BYTES}), "data"),
    (_body(data={"n": float("nan")}), "data"),  # json.dumps writes NaN, which no JSON reader should take
], ids=["no-key", "no-data", "extra-field", "bad-workflow", "bad-follow-up", "bad-key", "long-key", "bad-run-id",
        "int-run-id", "list-data", "large-data", "nan-data"])
def test_a_malformed_follow_up_message_is_poison_naming_the_field_never_its_value(body: str, field: str) -> None:
    with pytest.raises(PoisonMessage) as poisoned:
        parse_message(body)
    said = str(poisoned.value)
    assert said.startswith("the FollowUpMessage does not validate: ")
    assert field in said.removeprefix("the FollowUpMessage does not validate: ").split(", ")
    for value in ("sneaked-in", "Invoice-Intake!", "a key with spaces", "not-a-run-id", "secret-list", "xxxx"):
        assert value not in said


def test_a_message_of_another_kind_is_no_follow_up() -> None:
    with pytest.raises(PoisonMessage, match="no envelope, schedule firing, DynamoDB stream record or follow-up"):
        parse_message(_body(kind="interlock.followup"))


# -- StepContext.start_runs ----------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[FollowUpMessage], str]] = []

    def __call__(self, batch: list[FollowUpMessage], step: str) -> None:
        self.calls.append((list(batch), step))


def context(start: Any, starts: tuple[str, ...] = (FOLLOW_UP,)) -> StepContext:
    return StepContext(run_id=STARTED_BY, attempt=0, workflow=WORKFLOW, step="find_past_due", deadline=None,
                       services=Services(timeline=RecordingTimeline(), start=start),  # type: ignore[arg-type]
                       starts=starts)


def test_start_runs_sends_one_message_per_key_and_answers_every_items_run_id_in_order() -> None:
    sent = Recorder()
    ids = context(sent).start_runs(FOLLOW_UP, [("a", {"n": 1}), ("b", {"n": 2}), ("a", {"n": 3})])

    assert ids == [follow_up_run_id(WORKFLOW, FOLLOW_UP, k) for k in ("a", "b", "a")]
    assert ids[0] == ids[2] != ids[1]
    [(batch, step)] = sent.calls
    assert step == "find_past_due"
    assert [(m.key, m.data, m.started_by, m.workflow) for m in batch] == [("a", {"n": 1}, STARTED_BY, WORKFLOW),
                                                                           ("b", {"n": 2}, STARTED_BY, WORKFLOW)]


def test_start_runs_with_nothing_to_start_sends_nothing() -> None:
    sent = Recorder()
    assert context(sent).start_runs(FOLLOW_UP, []) == []
    assert sent.calls == []


def test_start_runs_refuses_a_follow_up_the_step_does_not_declare_and_sends_nothing() -> None:
    sent = Recorder()
    with pytest.raises(NotGranted, match=r"step invoice_intake.find_past_due does not declare that it starts "
                                         r"'weekly' \(Step.starts\)"):
        context(sent).start_runs("weekly", [("a", {})])
    with pytest.raises(NotGranted, match="does not declare that it starts 'past_due'"):
        context(sent, starts=()).start_runs(FOLLOW_UP, [("a", {})])
    assert sent.calls == []


def test_start_runs_refuses_when_the_worker_was_given_no_queue() -> None:
    with pytest.raises(NotGranted, match="its worker may not start runs"):
        context(None).start_runs(FOLLOW_UP, [("a", {})])


def test_start_runs_sends_nothing_when_one_item_is_bad() -> None:
    sent = Recorder()
    with pytest.raises(InvalidFollowUp):
        context(sent).start_runs(FOLLOW_UP, [("a", {}), ("b c", {})])
    assert sent.calls == []


def test_given_the_throwaway_steps_when_their_worker_runs_them_then_only_the_declaring_step_starts_runs(
    throwaway: str,
) -> None:
    sent, timeline = Recorder(), RecordingTimeline()
    services = Services(timeline=timeline, start=sent)  # type: ignore[arg-type]
    event = {"workflow": THROWAWAY, "run_id": STARTED_BY, "attempt": 0, "keys": ["t-1", "t-2"]}

    answer = worker.run(Job.QUERY, {**event, "step": "fan_out"}, services)

    assert answer == {"run_ids": [follow_up_run_id(THROWAWAY, "nudge", k) for k in ("t-1", "t-2")]}
    [(batch, step)] = sent.calls
    assert step == "fan_out"
    assert [(m.workflow, m.follow_up, m.key, m.data) for m in batch] == [
        (THROWAWAY, "nudge", "t-1", {"thing": "t-1"}), (THROWAWAY, "nudge", "t-2", {"thing": "t-2"})]
    assert [(e.state, e.step) for _, e, _ in timeline.entries] == [(EntryState.COMPLETED, "fan_out")]
    with pytest.raises(NotGranted, match=r"throwaway_follow_ups\.sneak does not declare"):
        worker.run(Job.QUERY, {**event, "step": "sneak"}, services)
    assert len(sent.calls) == 1


def test_given_the_queue_refusing_when_the_worker_runs_the_step_then_it_is_retried(throwaway: str) -> None:
    timeline = RecordingTimeline()

    def refuse(batch: list[FollowUpMessage], step: str) -> None:
        raise FollowUpNotSent(f"the ingest queue refused 1 of {len(batch)} follow-ups", step=step, failed=1)

    with pytest.raises(FollowUpNotSent):
        worker.run(Job.QUERY, {"workflow": THROWAWAY, "step": "fan_out", "run_id": STARTED_BY, "attempt": 0,
                               "keys": ["t-1"]}, Services(timeline=timeline, start=refuse))  # type: ignore[arg-type]
    [(_, entry, _)] = timeline.entries
    assert (entry.state, entry.details["reason"], entry.details["failed"]) == (EntryState.RETRIED,
                                                                              "follow_up_not_sent", 1)


# -- the queue starter ---------------------------------------------------------------------------------------


class FakeSqs:
    """send_message_batch as SQS answers it: at most ten entries, each Id unique in its request; ``fail`` names the
    bodies' keys it refuses."""

    def __init__(self, fail: frozenset[str] = frozenset(), error: Exception | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = fail
        self.error = error

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.requests.append({"QueueUrl": QueueUrl, "Entries": Entries})
        if self.error is not None:
            raise self.error
        if not 1 <= len(Entries) <= 10:
            raise AssertionError(f"SQS refuses a batch of {len(Entries)} (AWS.SimpleQueueService.TooManyEntries)")
        ids = [e["Id"] for e in Entries]
        assert len(set(ids)) == len(ids), "SQS refuses a batch whose Ids repeat (BatchEntryIdsNotDistinct)"
        failed = [e for e in Entries if json.loads(e["MessageBody"])["key"] in self.fail]
        return {"Successful": [{"Id": e["Id"], "MessageId": str(uuid.uuid4())} for e in Entries if e not in failed],
                "Failed": [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in failed]}


def batch_of(count: int) -> list[FollowUpMessage]:
    return messages(WORKFLOW, FOLLOW_UP, STARTED_BY, [(f"k{i}", {"i": i}) for i in range(count)])


def test_the_starter_sends_ten_to_a_request_every_message_once_as_the_router_will_read_it() -> None:
    sqs = FakeSqs()
    sent = batch_of(23)

    QueueStarter(QUEUE_URL, client=sqs).send(sent, step="find_past_due")

    assert [len(r["Entries"]) for r in sqs.requests] == [10, 10, 3]
    assert {r["QueueUrl"] for r in sqs.requests} == {QUEUE_URL}
    bodies = [e["MessageBody"] for r in sqs.requests for e in r["Entries"]]
    assert [parse_message(b) for b in bodies] == sent


def test_given_exactly_ten_then_one_request() -> None:
    sqs = FakeSqs()
    QueueStarter(QUEUE_URL, client=sqs).send(batch_of(10))
    assert [len(r["Entries"]) for r in sqs.requests] == [10]


def test_given_entries_the_queue_refused_then_the_rest_are_still_sent_and_the_step_is_told_to_retry() -> None:
    sqs = FakeSqs(fail=frozenset({"k3", "k17"}))

    with pytest.raises(FollowUpNotSent) as refused:
        QueueStarter(QUEUE_URL, client=sqs).send(batch_of(23), step="find_past_due")

    assert [len(r["Entries"]) for r in sqs.requests] == [10, 10, 3]  # it went on after the first refusal
    assert refused.value.message == "the ingest queue refused 2 of 23 follow-ups"
    assert (refused.value.reason, refused.value.step, refused.value.details) == (
        "follow_up_not_sent", "find_past_due", {"failed": 2})
    assert refused.value.retryable


def test_given_the_queue_unreachable_then_follow_up_not_sent_naming_no_more_than_the_error_class() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    for error, name in ((ClientError({"Error": {"Code": "AccessDenied", "Message": "secret-detail"}},
                                     "SendMessageBatch"), "ClientError"),
                        (EndpointConnectionError(endpoint_url="https://sqs.example"), "EndpointConnectionError")):
        with pytest.raises(FollowUpNotSent) as refused:
            QueueStarter(QUEUE_URL, client=FakeSqs(error=error)).send(batch_of(3), step="s")
        assert refused.value.message == f"the ingest queue could not be reached ({name})"
        assert "secret-detail" not in str(refused.value)


def test_a_worker_gets_a_starter_only_when_it_is_given_the_ingest_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock.kit.services import _starter

    monkeypatch.delenv("INTERLOCK_INGEST_QUEUE_URL", raising=False)
    assert _starter() is None
    monkeypatch.setenv("INTERLOCK_INGEST_QUEUE_URL", "  ")
    assert _starter() is None
    monkeypatch.setenv("INTERLOCK_INGEST_QUEUE_URL", QUEUE_URL)
    start = _starter()
    assert start is not None
    assert isinstance(start.__self__, QueueStarter)  # type: ignore[attr-defined]
    assert start.__self__.queue_url == QUEUE_URL  # type: ignore[attr-defined]


# -- the topology --------------------------------------------------------------------------------------------

QUEUE_SEND = Grant(Access.QUEUE_SEND, INGEST_QUEUE)
QUEUE_URL_REF = Ref(RefKind.QUEUE_URL, INGEST_QUEUE)


def _senders(functions: Any) -> tuple[set[str], set[str]]:
    """(the workers granted sending to the ingest queue, the workers told its URL)."""
    workers = [f for f in functions if f.name.startswith("job_")]
    return ({f.name for f in workers if QUEUE_SEND in f.grants},
            {f.name for f in workers if f.env.get("INTERLOCK_INGEST_QUEUE_URL") == QUEUE_URL_REF})


def test_given_the_built_in_workflows_then_only_the_act_worker_may_send_to_the_ingest_queue() -> None:
    granted, told = _senders(build("").functions)
    assert granted == told == {"job_act"}  # invoice intake's find_past_due
    for fn in build("").functions:
        if fn.name.startswith("job_") and fn.name != "job_act":
            assert "INTERLOCK_INGEST_QUEUE_URL" not in fn.env, fn.name
            assert all(g.access is not Access.QUEUE_SEND for g in fn.grants), fn.name


def test_given_a_query_step_that_starts_runs_then_the_query_worker_is_granted_the_queue_too(throwaway: str) -> None:
    topology = build(throwaway)
    granted, told = _senders(topology.functions)
    assert granted == told == {"job_act", "job_query"}
    query = topology.function("job_query")
    assert [g for g in query.grants if g.access is Access.QUEUE_SEND] == [QUEUE_SEND]  # that queue, once
    # beside the workers, what sends to the ingest queue: the ingest, the replay, the hand-off pages (their runs)
    # and the DLQ's redrive (back to it)
    assert {f.name for f in topology.functions if QUEUE_SEND in f.grants} == {
        "webhook_ingest", "runs_replay", "handoffs_api", "dlq_api", "job_act", "job_query"}


@pytest.mark.parametrize("name", ["workflow", "schedule", "table"])
def test_a_further_webhook_source_may_not_take_a_platform_sources_name(name: str) -> None:
    with pytest.raises(InvalidWebhookSource, match=f"'{name}' is the source of the envelopes Interlock makes "
                                                   "itself"):
        TOPOLOGY.with_extra_webhook_sources(f"billing=stripe, {name}=standard-webhooks")
    extended = TOPOLOGY.with_extra_webhook_sources(f"{name}s=standard-webhooks")  # a name beside it is fine
    assert extended.webhook_source(f"{name}s").scheme == "standard-webhooks"
