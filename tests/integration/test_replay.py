"""Kept events and replays through the real handlers: ingest keeps the envelope, the router ignores informational
events, POST /runs/{run_id}/replay starts a failed or ignored run's event again as a new run (moto)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import http_replay
import http_runs
import pytest
from interlock import timeline as timeline_module
from interlock.models import EntryState, Envelope, TimelineEntry, replay_dedupe_key, run_id_for, utcnow
from interlock.timeline import DynamoTimelineStore

from integration.support import TABLE_NAME, rest_event
from integration.test_metrics import published
from integration.test_queue_router import deliver, new_run, sqs_record, state_machine  # noqa: F401  (fixture)


def replay(lambda_context, run_id: str) -> tuple[int, dict[str, Any]]:
    event = rest_event("POST", f"/runs/{run_id}/replay", "/runs/{run_id}/replay", {"run_id": run_id})
    response = http_replay.handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"])


def read(lambda_context, path: str, run_id: str) -> tuple[int, dict[str, Any]]:
    resource = "/runs/{run_id}" + path
    event = rest_event("GET", f"/runs/{run_id}{path}", resource, {"run_id": run_id})
    response = http_runs.handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"])


def store() -> DynamoTimelineStore:
    return DynamoTimelineStore(TABLE_NAME)


def queued(cloud) -> list[Envelope]:
    return [Envelope.model_validate_json(m["Body"]) for m in cloud.messages()]


def failed_run(lambda_context, event_type: str = "invoice.paid", source: str = "form",
               payload_version: str | None = None) -> Envelope:
    """A run as the router leaves an event it has no route for (or, for an informational one, ignored)."""
    envelope = new_run(event_type=event_type, source=source)
    if payload_version is not None:
        envelope = envelope.model_copy(update={"payload_version": payload_version})
    deliver(lambda_context, sqs_record(envelope.model_dump_json()))
    return envelope


# -- the kept event ---------------------------------------------------------------------------------------------


def test_given_an_event_with_no_route_when_routed_then_it_fails_and_its_whole_envelope_is_kept(
    state_machine, lambda_context  # noqa: F811
):
    envelope = failed_run(lambda_context)

    assert store().get(envelope.run_id).status.value == "failed"
    assert store().envelope(envelope.run_id) == envelope  # payload included


def test_given_a_kept_event_when_the_run_is_read_then_its_payload_is_not_in_it_but_event_returns_it(
    cloud, lambda_context
):
    envelope = new_run()

    status, body = read(lambda_context, "", envelope.run_id)
    assert status == 200
    assert "ada@example.com" not in json.dumps(body)  # personal data: not in the run's view
    status, body = read(lambda_context, "/event", envelope.run_id)
    assert status == 200
    assert Envelope.model_validate(body) == envelope
    status, body = read(lambda_context, "/event", str(uuid.uuid4()))
    assert (status, body["error"]) == (404, "no_kept_event")


def test_given_a_kept_event_then_it_expires_with_the_run(cloud, lambda_context):
    envelope = new_run()

    items = {i["sk"]["S"][:3]: i for i in cloud.items() if i["pk"]["S"] == f"RUN#{envelope.run_id}"}
    kept, run = items["~EN"], items["#RU"]
    assert abs(int(kept["expires_at"]["N"]) - int(run["expires_at"]["N"])) <= 5
    assert int(kept["expires_at"]["N"]) - time.time() > timeline_module.RUN_RETENTION_SECONDS - 60


def test_given_an_envelope_too_large_to_keep_then_it_is_kept_without_payload_and_cannot_be_replayed(
    state_machine, lambda_context, monkeypatch  # noqa: F811
):
    monkeypatch.setattr(timeline_module, "MAX_KEPT_ENVELOPE_BYTES", 10)
    envelope = failed_run(lambda_context)

    assert store().envelope(envelope.run_id) is None
    status, body = replay(lambda_context, envelope.run_id)
    assert (status, body["error"]) == (409, "event_not_kept")


# -- informational events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["played"])  # sent, delivered, read and failed are the assistant's (its triggers)
def test_given_a_whatsapp_delivery_status_when_routed_then_the_run_is_ignored_not_failed(
    state_machine, lambda_context, capsys, status  # noqa: F811
):
    capsys.readouterr()
    envelope = failed_run(lambda_context, f"whatsapp.status.{status}", source="whatsapp",
                          payload_version="whatsapp.v1")

    view = store().get(envelope.run_id)
    assert view.status.value == "ignored"
    last = view.timeline[-1]
    assert (last.state.value, last.step, last.details["reason"]) == ("ignored", "router", "informational_event")
    assert published(capsys) == ["RunsIgnored"]  # not RunsFailed


@pytest.mark.parametrize("event_type, payload_version", [
    ("whatsapp.status.warning", "whatsapp.v1"),  # a warning about a message: someone should know
    ("whatsapp.account_update", "whatsapp.v1"),
    ("whatsapp.status.read", "standard-webhooks.v1"),  # a form's event named like one is not WhatsApp's
])
def test_given_an_event_that_is_not_informational_when_routed_then_it_fails_no_route(
    state_machine, lambda_context, capsys, event_type, payload_version  # noqa: F811
):
    capsys.readouterr()
    envelope = failed_run(lambda_context, event_type, payload_version=payload_version)

    view = store().get(envelope.run_id)
    assert (view.status.value, view.timeline[-1].details["reason"]) == ("failed", "no_route")
    assert published(capsys) == ["RunsFailed"]


# -- replays ----------------------------------------------------------------------------------------------------


def test_given_a_failed_run_when_replayed_then_a_new_linked_run_is_queued_and_the_original_keeps_its_status(
    state_machine, cloud, lambda_context  # noqa: F811
):
    original = failed_run(lambda_context)

    status, body = replay(lambda_context, original.run_id)

    expected_id = run_id_for(replay_dedupe_key(original.run_id))
    assert (status, body) == (202, {"run_id": expected_id, "replay_of": original.run_id})
    new = store().get(expected_id)
    assert (new.status.value, new.replay_of) == ("received", original.run_id)
    assert [(e.state.value, e.step, e.details["replay_of"]) for e in new.timeline] == [
        ("received", "replay", original.run_id)]
    old = store().get(original.run_id)
    assert (old.status.value, old.replayed_as) == ("failed", expected_id)
    assert (old.timeline[-1].state.value, old.timeline[-1].details) == ("replayed", {"replayed_as": expected_id})
    [message] = queued(cloud)
    assert message.run_id == expected_id
    assert (message.payload, message.type, message.source, message.event_id) == (
        original.payload, original.type, original.source, original.event_id)
    assert store().envelope(expected_id) == message  # the replay's event is kept too: it can be replayed in turn


def test_given_a_replay_when_routed_then_routing_applies_anew_and_the_replay_can_be_replayed_in_turn(
    state_machine, cloud, lambda_context  # noqa: F811
):
    original = failed_run(lambda_context)
    _, body = replay(lambda_context, original.run_id)
    [message] = queued(cloud)

    deliver(lambda_context, sqs_record(message.model_dump_json()))

    again = store().get(body["run_id"])
    assert (again.status.value, again.timeline[-1].step, again.timeline[-1].details["reason"]) == (
        "failed", "router", "no_route")
    status, second = replay(lambda_context, body["run_id"])
    assert status == 202
    assert second["replay_of"] == body["run_id"]
    assert second["run_id"] not in (original.run_id, body["run_id"])


def test_given_a_replayed_support_ticket_when_routed_then_its_workflow_starts_under_the_new_run_id(
    state_machine, cloud, lambda_context  # noqa: F811
):
    sfn, arn = state_machine
    original = new_run()  # a ticket whose run then failed (its helpdesk was down, say)
    store().record(original.run_id, TimelineEntry(state=EntryState.FAILED, step="outcome",
                                                  details={"reason": "helpdesk_unavailable"}))
    _, body = replay(lambda_context, original.run_id)
    [message] = queued(cloud)

    deliver(lambda_context, sqs_record(message.model_dump_json()))

    assert [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]] == [body["run_id"]]
    assert store().get(body["run_id"]).status.value == "processing"


def test_given_an_ignored_run_when_replayed_then_it_is_replayed(state_machine, cloud, lambda_context):  # noqa: F811
    original = failed_run(lambda_context, "whatsapp.status.played", source="whatsapp", payload_version="whatsapp.v1")

    status, body = replay(lambda_context, original.run_id)

    assert status == 202
    assert store().get(original.run_id).status.value == "ignored"
    assert [m.run_id for m in queued(cloud)] == [body["run_id"]]


def test_given_a_replayed_run_when_replayed_again_then_409_naming_its_replay_and_nothing_new(
    state_machine, cloud, lambda_context  # noqa: F811
):
    original = failed_run(lambda_context)
    _, first = replay(lambda_context, original.run_id)
    before = sorted(map(repr, cloud.items()))

    status, body = replay(lambda_context, original.run_id)

    assert (status, body["error"], body["replayed_as"]) == (409, "already_replayed", first["run_id"])
    assert sorted(map(repr, cloud.items())) == before
    assert len(queued(cloud)) == 1


@pytest.mark.parametrize("state", [None, EntryState.PROCESSING, EntryState.PENDING_APPROVAL, EntryState.COMPLETED,
                                   EntryState.REJECTED, EntryState.ESCALATED])
def test_given_a_run_that_is_not_failed_or_ignored_when_replayed_then_409_and_nothing_written(
    cloud, lambda_context, state
):
    envelope = new_run()  # received
    if state is not None:
        store().record(envelope.run_id, TimelineEntry(state=state, step="test"))
    before = sorted(map(repr, cloud.items()))

    status, body = replay(lambda_context, envelope.run_id)

    assert (status, body["error"]) == (409, "not_replayable")
    assert body["status"] == store().get(envelope.run_id).status.value
    assert sorted(map(repr, cloud.items())) == before
    assert queued(cloud) == []


@pytest.mark.parametrize("run_id", ["not-a-run", "A" * 3000, "00000000-0000-5000-8000-00000000000Z", "%2e%2e"])
def test_given_a_malformed_run_id_when_replayed_then_400(cloud, lambda_context, run_id):
    status, body = replay(lambda_context, run_id)

    assert (status, body["error"]) == (400, "bad_run_id")
    assert cloud.items() == []


def test_given_an_unknown_run_when_replayed_then_404(cloud, lambda_context):
    status, body = replay(lambda_context, str(uuid.uuid4()))

    assert (status, body["error"]) == (404, "unknown_run")
    assert cloud.items() == []


def test_given_two_replays_of_one_run_at_once_then_one_new_run_is_made_and_queued(
    state_machine, cloud, lambda_context, monkeypatch  # noqa: F811
):
    original = failed_run(lambda_context)
    # Both requests have read the run (failed, never replayed) before either writes: only the conditional write
    # decides. (The writes themselves take turns: moto's transactions, unlike DynamoDB's, are not thread-safe.)
    both_read = threading.Barrier(2)
    one_at_a_time = threading.Lock()
    real = DynamoTimelineStore.create_replay

    def create_replay_after_both_read(self, *args: Any, **kwargs: Any) -> Any:
        both_read.wait(timeout=10)
        with one_at_a_time:
            return real(self, *args, **kwargs)

    monkeypatch.setattr(DynamoTimelineStore, "create_replay", create_replay_after_both_read)
    answers: list[tuple[int, dict[str, Any]]] = []
    threads = [threading.Thread(target=lambda: answers.append(replay(lambda_context, original.run_id)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(status for status, _ in answers) == [202, 409]
    made = next(body["run_id"] for status, body in answers if status == 202)
    assert next(body["replayed_as"] for status, body in answers if status == 409) == made
    assert [m.run_id for m in queued(cloud)] == [made]
    replayed = [e for e in store().get(original.run_id).timeline if e.state is EntryState.REPLAYED]
    assert len(replayed) == 1
    runs = {i["pk"]["S"] for i in cloud.items() if i["sk"]["S"] == "#RUN"}
    assert runs == {f"RUN#{original.run_id}", f"RUN#{made}"}


def test_given_the_queue_unavailable_when_replayed_then_503_and_nothing_of_the_replay_is_left(
    state_machine, cloud, lambda_context, monkeypatch  # noqa: F811
):
    from interlock.ingest.ports import SqsEventQueue

    original = failed_run(lambda_context)
    def items_of(run_id: str) -> list[str]:  # bar updated_at, which a replay moves
        return sorted(repr({k: v for k, v in i.items() if k != "updated_at"})
                      for i in cloud.items() if i["pk"]["S"] == f"RUN#{run_id}")

    before = items_of(original.run_id)

    def unavailable(self: SqsEventQueue, envelope: Envelope) -> None:
        raise RuntimeError("sqs is down")

    with monkeypatch.context() as patched:
        patched.setattr(SqsEventQueue, "send", unavailable)
        status, body = replay(lambda_context, original.run_id)

    assert (status, body["error"]) == (503, "unavailable")
    assert items_of(run_id_for(replay_dedupe_key(original.run_id))) == []
    assert items_of(original.run_id) == before  # as it was: it can be replayed once the queue is back
    assert replay(lambda_context, original.run_id)[0] == 202


def test_given_a_replay_then_runs_replayed_is_counted(state_machine, cloud, lambda_context, capsys):  # noqa: F811
    original = failed_run(lambda_context)
    capsys.readouterr()

    replay(lambda_context, original.run_id)

    assert published(capsys) == ["RunsReplayed"]


def test_given_a_replay_envelope_then_its_run_id_is_that_of_its_dedupe_key(cloud, lambda_context):
    original = new_run()
    store().record(original.run_id, TimelineEntry(state=EntryState.FAILED, step="router"))

    replay(lambda_context, original.run_id)

    [message] = queued(cloud)
    assert message.dedupe_key == replay_dedupe_key(original.run_id)
    assert message.run_id == run_id_for(message.dedupe_key)
    assert message.received_at <= utcnow()


def _recorded_but_never_queued(original: Envelope, minutes_ago: float) -> str:
    """What a replay function that died between its write and the queue leaves behind."""
    from datetime import timedelta

    key = replay_dedupe_key(original.run_id)
    at = utcnow() - timedelta(minutes=minutes_ago)
    replay_envelope = original.model_copy(update={"run_id": run_id_for(key), "dedupe_key": key, "received_at": at})
    assert store().create_replay(
        original.run_id, replay_envelope,
        TimelineEntry(state=EntryState.RECEIVED, step="replay", at=at, details={"replay_of": original.run_id}),
        TimelineEntry(state=EntryState.REPLAYED, step="replay", at=at, details={"replayed_as": replay_envelope.run_id}),
    ) is None
    return replay_envelope.run_id


def test_given_a_replay_that_never_reached_the_queue_when_replayed_again_later_then_it_is_queued_again(
    state_machine, cloud, lambda_context  # noqa: F811
):
    original = failed_run(lambda_context)
    stuck = _recorded_but_never_queued(original, minutes_ago=10)
    assert queued(cloud) == []

    status, body = replay(lambda_context, original.run_id)

    assert (status, body) == (202, {"run_id": stuck, "replay_of": original.run_id, "requeued": True})
    assert [m.run_id for m in queued(cloud)] == [stuck]
    deliver(lambda_context, sqs_record(queued(cloud)[0].model_dump_json()))
    assert store().get(stuck).status.value == "failed"
    assert replay(lambda_context, original.run_id)[1]["error"] == "already_replayed"  # routed: not stuck any more


def test_given_a_replay_just_made_when_replayed_again_then_it_is_not_queued_twice(
    state_machine, cloud, lambda_context  # noqa: F811
):
    original = failed_run(lambda_context)
    _recorded_but_never_queued(original, minutes_ago=0)

    status, body = replay(lambda_context, original.run_id)

    assert (status, body["error"]) == (409, "already_replayed")
    assert queued(cloud) == []


@pytest.mark.parametrize("run_id", ["not-a-run", "A" * 3000])
def test_given_a_malformed_run_id_when_its_event_is_read_then_400(cloud, lambda_context, run_id):
    status, body = read(lambda_context, "/event", run_id)

    assert (status, body["error"]) == (400, "bad_run_id")
