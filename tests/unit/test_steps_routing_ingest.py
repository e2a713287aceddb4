"""Step runner, router and ingest service logic with in-memory fakes (no AWS)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from interlock.errors import CrmUnavailable, MissingData
from interlock.ingest.service import IngestService, RawRequest
from interlock.kit.registry import routes
from interlock.models import EntryState, Envelope, run_id_for, utcnow
from interlock.routing import Router, StepFunctionsEngine, UnknownWorkflow, route_for
from interlock.settings import IngestSettings
from interlock.steps import StepInput, run_step
from interlock.timeline import DedupeRecord
from interlock.webhooks.standard import signed_headers
from pydantic import BaseModel, ValidationError

from unit.fakes import RecordingEngine, RecordingQueue, RecordingTimeline, StaticSecrets

# -- run_step ---------------------------------------------------------------------------------------------


class Doubled(BaseModel):
    value: int


class NumberInput(StepInput):
    number: int


def test_given_a_step_that_succeeds_when_run_then_its_output_is_returned_and_a_processing_entry_recorded():
    store = RecordingTimeline(once_keys={"retried:r1:double:0"})  # attempt 0 left its own retried entry

    out = run_step("double", {"run_id": "r1", "attempt": 1, "number": 21, "ignored": True}, NumberInput,
                   lambda d: Doubled(value=d.number * 2), store)

    assert out == {"value": 42}
    [(run_id, entry, _)] = store.entries
    assert (run_id, entry.state, entry.step, entry.attempt, entry.details) == (
        "r1", EntryState.PROCESSING, "double", 1, {"value": 42})


def test_given_a_summary_and_state_when_run_then_the_entry_uses_them():
    store = RecordingTimeline()

    run_step("send", {"run_id": "r1", "number": 1}, NumberInput, lambda d: Doubled(value=2), store,
             summary=lambda out: {"short": out.value}, state=EntryState.COMPLETED)

    assert store.entries[0][1].state is EntryState.COMPLETED
    assert store.entries[0][1].details == {"short": 2}


def test_given_a_retryable_error_when_run_then_a_retried_entry_is_left_and_the_error_propagates():
    store = RecordingTimeline(once_keys={"retried:r1:fetch_account:1"})  # attempt 1 left its own entry

    def work(data: NumberInput) -> Doubled:
        raise CrmUnavailable("CRM answered 503", step="fetch_account", status=503)

    with pytest.raises(CrmUnavailable):
        run_step("fetch_account", {"run_id": "r1", "attempt": 2, "number": 1}, NumberInput, work, store)

    [(_, entry, _)] = store.entries
    assert entry.state is EntryState.RETRIED
    assert entry.attempt == 2
    assert entry.details == {"reason": "crm_unavailable", "message": "CRM answered 503", "retry_count": 2,
                             "status": 503}


def test_given_an_attempt_that_timed_out_when_the_retry_runs_then_it_leaves_the_retried_entry_first():
    store = RecordingTimeline()

    # Given attempt 0 timed out (killed: it recorded nothing), when Step Functions runs attempt 1
    run_step("double", {"run_id": "r1", "attempt": 1, "number": 21}, NumberInput,
             lambda d: Doubled(value=d.number * 2), store)

    # Then the timeline says attempt 0 was retried, then what attempt 1 did
    (_, retried, _), (_, done, _) = store.entries
    assert (retried.state, retried.step, retried.attempt) == (EntryState.RETRIED, "double", 0)
    assert retried.details["reason"] == "no_answer" and retried.details["retry_count"] == 0
    assert (done.state, done.attempt) == (EntryState.PROCESSING, 1)


def test_given_an_attempt_that_recorded_its_retryable_error_when_the_retry_runs_then_one_retried_entry_stands():
    store = RecordingTimeline()

    def flaky(data: NumberInput) -> Doubled:
        if data.attempt == 0:
            raise CrmUnavailable("CRM answered 503", step="fetch_account", status=503)
        return Doubled(value=1)

    with pytest.raises(CrmUnavailable):
        run_step("fetch_account", {"run_id": "r1", "attempt": 0, "number": 1}, NumberInput, flaky, store)
    run_step("fetch_account", {"run_id": "r1", "attempt": 1, "number": 1}, NumberInput, flaky, store)

    assert [(e.state, e.attempt, e.details.get("reason")) for _, e, _ in store.entries] == [
        (EntryState.RETRIED, 0, "crm_unavailable"), (EntryState.PROCESSING, 1, None)]


def test_given_a_non_retryable_error_when_run_then_nothing_is_recorded_and_the_error_propagates():
    store = RecordingTimeline()

    def work(data: NumberInput) -> Doubled:
        raise MissingData("nope", step="validate")

    with pytest.raises(MissingData):
        run_step("validate", {"run_id": "r1", "number": 1}, NumberInput, work, store)
    assert store.entries == []


def test_given_an_input_that_does_not_fit_the_model_when_run_then_it_fails_before_any_work():
    store = RecordingTimeline()
    called = []

    with pytest.raises(ValidationError):
        run_step("x", {"run_id": "r1", "number": "many"}, NumberInput, lambda d: called.append(d), store)
    assert called == [] and store.entries == []


# -- routing ----------------------------------------------------------------------------------------------


def make_envelope(source: str = "form", event_type: str = "support.ticket") -> Envelope:
    key = f"{source}:msg_1"
    return Envelope(event_id="msg_1", source=source, type=event_type, payload_version="v1", received_at=utcnow(),
                    dedupe_key=key, run_id=run_id_for(key), payload={"type": event_type, "data": {}})


def test_the_route_table_sends_form_support_tickets_to_support_triage_and_nothing_else():
    assert route_for("form", "support.ticket") == "support_triage"
    assert route_for("form", "support.other") is None
    assert route_for("stripe", "support.ticket") is None
    assert routes()[("form", "support.ticket")] == "support_triage"


def test_given_a_routed_event_when_routed_then_processing_is_recorded_before_the_execution_named_by_run_id():
    store, engine = RecordingTimeline(), RecordingEngine()
    envelope = make_envelope()

    Router(engine, store, {"approval_timeout_seconds": 60}).route(envelope)

    assert store.states == ["processing"]
    assert store.entries[0][2] == "support_triage"
    [(workflow, run_id, execution_input)] = engine.started
    assert (workflow, run_id) == ("support_triage", envelope.run_id)
    assert execution_input == {"run_id": envelope.run_id, "entry": "start",
                               "envelope": envelope.model_dump(mode="json"),
                               "policy": {"approval_timeout_seconds": 60}}
    json.dumps(execution_input)  # the execution input must be JSON


def test_given_an_unrouted_event_when_routed_then_the_run_fails_with_no_route_and_nothing_starts():
    store, engine = RecordingTimeline(), RecordingEngine()

    Router(engine, store, {}).route(make_envelope(event_type="invoice.paid"))

    assert engine.started == []
    [(_, entry, _)] = store.entries
    assert entry.state is EntryState.FAILED
    assert entry.details == {"reason": "no_route", "event_source": "form", "event_type": "invoice.paid"}


def test_given_a_workflow_without_a_state_machine_when_started_then_unknown_workflow_is_raised():
    with pytest.raises(UnknownWorkflow):
        StepFunctionsEngine({}, client=object()).start("support_triage", "r", {})


# -- ingest service -------------------------------------------------------------------------------------

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def ingest(body: bytes | str | None, headers: dict[str, str] | None = None, *, source: str = "form",
           is_base64: bool = False, secrets: dict[str, list[str]] | None = None, queue: RecordingQueue | None = None,
           store: RecordingTimeline | None = None, secrets_fail_with: Exception | None = None, method: str = "POST",
           **settings: Any):
    store = store if store is not None else RecordingTimeline()
    queue = queue if queue is not None else RecordingQueue()
    secret_port = StaticSecrets({"form": [SECRET]} if secrets is None else secrets, fail_with=secrets_fail_with)
    service = IngestService(IngestSettings(table_name="t", ingest_queue_url="q", **settings), secret_port,
                            store, queue)
    text = body.decode() if isinstance(body, bytes) else body
    outcome = service.accept(RawRequest(source=source, headers=headers or {}, body=text, is_base64=is_base64,
                                        method=method))
    return outcome, store, queue, secret_port


def signed(body: bytes, msg_id: str = "msg_1") -> dict[str, str]:
    return signed_headers(SECRET, msg_id, int(time.time()), body)


TICKET = json.dumps({"type": "support.ticket", "data": {"subject": "s"}}).encode()


def test_given_a_signed_ticket_when_accepted_then_one_envelope_is_created_and_queued():
    outcome, store, queue, _ = ingest(TICKET, signed(TICKET))

    assert outcome.status == 202
    assert outcome.body == {"run_id": run_id_for("form:msg_1"), "event_id": "msg_1", "duplicate": False}
    [envelope] = queue.sent
    assert store.created == [envelope]
    assert envelope.payload == {"type": "support.ticket", "timestamp": None, "data": {"subject": "s"}}
    assert envelope.dedupe_key == "form:msg_1"


def test_given_an_oversize_body_when_accepted_then_413_and_nothing_is_kept():
    body = b"x" * 2000
    outcome, store, queue, _ = ingest(body, signed(body), max_body_bytes=1000)

    assert outcome.status == 413
    assert store.created == [] and queue.sent == []


def test_given_a_source_without_a_secret_when_any_request_comes_then_404_whatever_its_size_or_method():
    # A disabled source says nothing about itself: not 413, not 405, but what an unknown source gets
    body = b"x" * 2000
    for outcome in (ingest(body, signed(body), max_body_bytes=1000, secrets={})[0],
                    ingest(TICKET, signed(TICKET), method="GET", secrets={})[0]):
        assert (outcome.status, outcome.body["error"]) == (404, "unknown_source")


def test_given_a_disabled_source_when_accepted_then_404_and_no_secret_is_read():
    outcome, _, _, secrets = ingest(TICKET, signed(TICKET), source="stripe")

    assert outcome.status == 404
    assert outcome.body["error"] == "unknown_source"
    assert secrets.asked == []


def test_given_a_body_marked_base64_that_is_not_when_accepted_then_400():
    outcome, store, queue, _ = ingest("not base64!!", {}, is_base64=True)

    assert outcome.status == 400
    assert outcome.body["error"] == "bad_body"
    assert store.created == [] and queue.sent == []


def test_given_a_signed_body_that_is_not_utf8_when_accepted_then_400_not_a_crash():
    body = b"\xff\xfe{\x00"
    headers = signed(body)
    outcome, store, queue, _ = ingest(base64.b64encode(body).decode(), headers, is_base64=True)

    assert outcome.status == 400
    assert outcome.body["error"] == "invalid_payload"
    assert store.created == [] and queue.sent == []


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ([1, 2], "body"),
        ({"type": ""}, "type"),
        ({"type": "t", "data": "not an object"}, "data"),
        ({"type": 5}, "type"),
    ],
)
def test_given_a_payload_of_the_wrong_shape_when_accepted_then_400_names_the_field(payload, fragment):
    body = json.dumps(payload).encode()
    outcome, store, queue, _ = ingest(body, signed(body))

    assert outcome.status == 400
    assert outcome.body["message"].startswith(fragment)
    assert store.created == [] and queue.sent == []


def test_given_the_queue_fails_when_accepted_then_503_and_the_new_run_is_forgotten():
    queue = RecordingQueue(fail_with=RuntimeError("sqs down"))
    outcome, store, _, _ = ingest(TICKET, signed(TICKET), queue=queue)

    assert outcome.status == 503
    assert [e.run_id for e in store.forgotten] == [run_id_for("form:msg_1")]


def test_given_a_duplicate_delivery_when_accepted_then_202_duplicate_with_an_entry_and_nothing_queued():
    store = RecordingTimeline(existing_dedupe_keys={"form:msg_1"})
    outcome, store, queue, _ = ingest(TICKET, signed(TICKET), store=store)

    assert outcome.status == 202
    assert outcome.body["duplicate"] is True
    assert queue.sent == []
    assert store.states == ["duplicate"]


def test_given_the_secret_store_fails_when_accepted_then_503_not_404_and_nothing_is_kept():
    outcome, store, queue, _ = ingest(TICKET, signed(TICKET), secrets_fail_with=RuntimeError("throttled"))

    assert outcome.status == 503
    assert outcome.body["error"] == "unavailable"
    assert store.created == [] and queue.sent == []


def test_given_a_source_with_no_secret_when_accepted_then_404_and_nothing_is_kept():
    outcome, store, queue, _ = ingest(TICKET, signed(TICKET), secrets={})

    assert outcome.status == 404
    assert store.created == [] and queue.sent == []


# -- two-phase acceptance: nothing is acknowledged as a duplicate before it is on the queue ----------------


def test_given_a_delivery_still_being_accepted_when_a_retry_arrives_then_409_and_nothing_is_recorded_or_queued():
    store = RecordingTimeline(accepting={"form:msg_1": (run_id_for("form:msg_1"), time.time() - 1)})

    started = time.monotonic()
    outcome, store, queue, _ = ingest(TICKET, signed(TICKET), store=store, in_progress_wait_seconds=0.3)

    assert outcome.status == 409
    assert outcome.body["error"] == "in_progress"
    assert queue.sent == [] and store.entries == [] and store.taken_over == []
    assert time.monotonic() - started >= 0.3  # it waited for the first delivery to settle first


@dataclass
class SettlingTimeline(RecordingTimeline):
    """The first delivery of ``form:msg_1`` is being accepted, and settles (``queued`` or ``undone``) after the
    retry has looked at it ``looks`` times."""

    settles_to: str = "queued"
    looks: int = 2

    def dedupe_record(self, dedupe_key: str) -> DedupeRecord | None:
        if dedupe_key in self.accepting:
            self.looks -= 1
            if self.looks < 0:
                del self.accepting[dedupe_key]
                if self.settles_to == "queued":
                    self.existing_dedupe_keys.add(dedupe_key)
        return super().dedupe_record(dedupe_key)


def test_given_a_retry_while_the_first_delivery_is_accepted_when_the_first_is_queued_then_a_2xx_duplicate():
    # Slack retries after 3 s, often while its first delivery is still being accepted: answer it 2xx once safe
    store = SettlingTimeline(accepting={"form:msg_1": (run_id_for("form:msg_1"), time.time())}, settles_to="queued")

    outcome, store, queue, _ = ingest(TICKET, signed(TICKET), store=store)

    assert (outcome.status, outcome.body["duplicate"]) == (202, True)
    assert queue.sent == [] and [e.state for _, e, _ in store.entries] == [EntryState.DUPLICATE]


def test_given_a_retry_while_the_first_delivery_is_accepted_when_the_first_is_undone_then_the_retry_queues_it():
    store = SettlingTimeline(accepting={"form:msg_1": (run_id_for("form:msg_1"), time.time())}, settles_to="undone")

    outcome, store, queue, _ = ingest(TICKET, signed(TICKET), store=store)

    assert (outcome.status, outcome.body["duplicate"]) == (202, False)
    assert [e.dedupe_key for e in queue.sent] == ["form:msg_1"]


def test_given_an_abandoned_acceptance_when_a_retry_arrives_then_it_takes_over_and_queues_the_event():
    store = RecordingTimeline(accepting={"form:msg_1": (run_id_for("form:msg_1"), time.time() - 120)})

    outcome, store, queue, _ = ingest(TICKET, signed(TICKET), store=store, accepting_stale_seconds=60)

    assert outcome.status == 202
    assert outcome.body == {"run_id": run_id_for("form:msg_1"), "event_id": "msg_1", "duplicate": False}
    assert [e.dedupe_key for e in store.taken_over] == ["form:msg_1"]
    assert [e.dedupe_key for e in queue.sent] == ["form:msg_1"]
    assert store.queued_keys == {"form:msg_1"}


def test_given_a_queued_event_when_accepted_then_its_dedupe_key_is_marked_queued():
    _, store, queue, _ = ingest(TICKET, signed(TICKET))

    assert store.queued_keys == {queue.sent[0].dedupe_key}


def test_given_the_queue_fails_when_accepted_then_nothing_is_marked_queued():
    _, store, _, _ = ingest(TICKET, signed(TICKET), queue=RecordingQueue(fail_with=RuntimeError("sqs down")))

    assert store.queued_keys == set()
    assert [e.dedupe_key for e in store.forgotten] == ["form:msg_1"]
