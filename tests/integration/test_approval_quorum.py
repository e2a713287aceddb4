"""Approvals that need several different people: ApprovalService on DynamoApprovalStore and SES (moto), and the
/approvals/{token} handler. Counting by approver, repeat clicks, a rejection closing the others' links, the last
approval and a rejection racing (both orders, forced), and decisions from several threads at once."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import http_approvals
import pytest
from interlock.approvals import (
    ApprovalRequestInput,
    ApprovalService,
    ApprovalStatus,
    Decision,
    DynamoApprovalStore,
    NotEnoughApprovers,
    Outcome,
    RequestSettings,
    SesMailer,
    quorum_key,
)
from interlock.models import EntryState, Envelope, TimelineEntry, run_id_for, utcnow
from interlock.timeline import DynamoTimelineStore

from integration.support import ACCOUNT, REGION, TABLE_NAME
from integration.test_approvals import BASE_URL, LINK, SENDER, FakeCallbacks, call, email_parts

POOL = ("ann@corp.io", "bob@corp.io", "cy@corp.io")
TTL = 3600


class Quorum:
    """A run waiting for ``required`` of the pool, with each approver's link from their own email."""

    def __init__(self, service: ApprovalService, timeline: DynamoTimelineStore, callbacks: FakeCallbacks,
                 store: DynamoApprovalStore, name: str) -> None:
        self.service, self.timeline, self.callbacks, self.store = service, timeline, callbacks, store
        key = f"form:{name}_{time.time_ns()}"
        envelope = Envelope(event_id=name, source="form", type="t", payload_version="v1", received_at=utcnow(),
                            dedupe_key=key, run_id=run_id_for(key), payload={"type": "t"})
        timeline.create_run_once(envelope, 3600)
        self.run_id = envelope.run_id
        self.task_token = f"TASK-{name}-" + "x" * 100

    def request(self, required: int = 2, pool: tuple[str, ...] = POOL, now: float | None = None) -> dict[str, Any]:
        data = ApprovalRequestInput(run_id=self.run_id, task_token=self.task_token, workflow="", approvers=required,
                                    reasons=["two_person_rule"], context={"view": {"title": "Approve the purchase?"}})
        settings = RequestSettings(public_base_url=BASE_URL, approver_email=",".join(pool), sender_email=SENDER,
                                   ttl_seconds=TTL)
        return self.service.request(data, settings, SesMailer(), now=now)

    def links(self) -> dict[str, list[str]]:
        """Every link of this run by approver, from the emails sent (oldest first)."""
        from moto.ses.models import ses_backends

        found: dict[str, list[str]] = {}
        for message in ses_backends[ACCOUNT][REGION].sent_messages:
            text, _ = email_parts(message.raw_data)
            if f"Run: {self.run_id}" in text:
                [to] = {d for d in message.destinations if d in POOL}  # moto lists To's too
                found.setdefault(to, []).append(LINK.search(text).group(1))
        return found

    def link(self, approver: str) -> str:
        return self.links()[approver][0]

    def decide(self, approver: str, decision: Decision, link: int = 0) -> Any:
        return self.service.decide(self.links()[approver][link], decision)

    def status(self) -> str:
        return self.timeline.get(self.run_id).status.value

    def entries(self) -> list[tuple[str, str | None]]:
        return [(e.state.value, e.details.get("approver")) for e in self.timeline.get(self.run_id).timeline
                if e.step == "approval" and e.state.value in ("approved", "rejected")]


@pytest.fixture
def world(cloud, monkeypatch):
    import boto3

    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    timeline = DynamoTimelineStore(TABLE_NAME)
    callbacks = FakeCallbacks()
    store = DynamoApprovalStore(TABLE_NAME)
    service = ApprovalService(store, timeline, callbacks)
    monkeypatch.setattr(http_approvals, "approval_service", lambda: service)

    def make(name: str = "q") -> Quorum:
        return Quorum(service, timeline, callbacks, store, name)

    return make


# -- request ------------------------------------------------------------------------------------------------------


def test_given_a_pool_of_three_when_two_are_asked_then_each_gets_their_own_email_and_link(world, cloud):
    q = world()
    q.request()

    links = q.links()
    assert sorted(links) == sorted(POOL)
    assert len({token for tokens in links.values() for token in tokens}) == 3
    everything = json.dumps(cloud.items())
    assert not any(token in everything for tokens in links.values() for token in tokens)  # only their hashes
    pending = q.timeline.get(q.run_id).timeline[-1]
    assert pending.state is EntryState.PENDING_APPROVAL
    assert (pending.details["approvers"], pending.details["required"]) == (list(POOL), 2)
    assert len(pending.details["email_message_ids"]) == 3
    from moto.ses.models import ses_backends

    for message in ses_backends[ACCOUNT][REGION].sent_messages:
        text, html = email_parts(message.raw_data)
        assert "2 different approvers; any rejection ends it" in text and html


def test_given_more_approvers_asked_than_the_pool_names_then_not_enough_approvers_and_nothing_stored(world, cloud):
    q = world()
    before = sorted(map(repr, cloud.items()))

    with pytest.raises(NotEnoughApprovers) as raised:
        q.request(required=3, pool=("ann@corp.io", "bob@corp.io"))

    assert raised.value.reason == "not_enough_approvers"
    assert json.loads(str(raised.value))["pool_size"] == 2
    assert sorted(map(repr, cloud.items())) == before
    assert q.links() == {}


# -- counting ----------------------------------------------------------------------------------------------------


def test_given_two_needed_when_one_approves_then_counted_on_the_timeline_and_nothing_resumes(world):
    q = world()
    q.request()

    result = q.decide("ann@corp.io", Decision.APPROVE)

    assert (result.outcome, result.status) == (Outcome.DECIDED, ApprovalStatus.APPROVED)
    assert (result.record.approvals, result.record.required) == (1, 2)
    assert q.callbacks.calls == []
    assert q.status() == "pending_approval"
    assert q.entries() == [("approved", "ann@corp.io")]
    entry = q.timeline.get(q.run_id).timeline[-1]
    assert (entry.details["approvals"], entry.details["required"]) == (1, 2)


def test_given_two_needed_when_two_different_people_approve_then_resumed_once_with_both_decisions(world):
    q = world()
    q.request()
    q.decide("ann@corp.io", Decision.APPROVE)

    result = q.decide("cy@corp.io", Decision.APPROVE)

    assert result.outcome is Outcome.DECIDED
    [(task_token, output)] = q.callbacks.calls
    assert task_token == q.task_token
    assert (output["decision"], output["approvals"], output["required"]) == ("approved", 2, 2)
    assert [(d["approver"], d["decision"]) for d in output["decisions"]] == [("ann@corp.io", "approved"),
                                                                            ("cy@corp.io", "approved")]
    assert q.status() == "processing"
    assert q.entries() == [("approved", "ann@corp.io"), ("approved", "cy@corp.io")]
    # bob's link is closed: nothing he does counts, resumes or lands on the timeline
    late = q.decide("bob@corp.io", Decision.REJECT)
    assert (late.outcome, late.status) == (Outcome.ALREADY_DECIDED, ApprovalStatus.CLOSED)
    assert len(q.callbacks.calls) == 1 and len(q.entries()) == 2


def test_given_one_approved_when_they_click_again_or_use_a_second_link_then_it_never_counts_twice(world):
    q = world()
    q.request()
    q.request()  # the request step ran again for the same wait: everyone has a second link to the same request
    assert all(len(tokens) == 2 for tokens in q.links().values())
    q.decide("ann@corp.io", Decision.APPROVE)

    again = q.decide("ann@corp.io", Decision.APPROVE)
    other_link = q.decide("ann@corp.io", Decision.APPROVE, link=1)
    other_link_reject = q.decide("ann@corp.io", Decision.REJECT, link=1)

    for result in (again, other_link, other_link_reject):
        assert (result.outcome, result.status) == (Outcome.ALREADY_DECIDED, ApprovalStatus.APPROVED)
        assert result.record.approvals == 1
    assert q.callbacks.calls == []
    assert q.entries() == [("approved", "ann@corp.io")]
    assert q.status() == "pending_approval"
    q.decide("bob@corp.io", Decision.APPROVE, link=1)
    assert [out["approvals"] for _, out in q.callbacks.calls] == [2]


def test_given_two_needed_when_someone_rejects_then_resumed_rejected_and_the_other_links_are_closed(
        world, lambda_context):
    q = world()
    q.request()
    q.decide("ann@corp.io", Decision.APPROVE)

    result = q.decide("bob@corp.io", Decision.REJECT)

    assert (result.outcome, result.status) == (Outcome.DECIDED, ApprovalStatus.REJECTED)
    [(_, output)] = q.callbacks.calls
    assert output["decision"] == "rejected"
    assert [d["decision"] for d in output["decisions"]] == ["approved", "rejected"]
    assert q.entries() == [("approved", "ann@corp.io"), ("rejected", "bob@corp.io")]
    shown = call(lambda_context, "GET", q.link("cy@corp.io"))
    assert shown["statusCode"] == 200
    assert "This approval is closed" in shown["body"] and "rejected by another approver" in shown["body"]
    assert "<form" not in shown["body"]
    posted = call(lambda_context, "POST", q.link("cy@corp.io"), {"decision": "approve"})
    assert posted["statusCode"] == 409 and "This approval is closed" in posted["body"]
    mine = call(lambda_context, "GET", q.link("ann@corp.io"))
    assert "already approved" in mine["body"]
    assert len(q.callbacks.calls) == 1


def test_given_two_needed_then_the_pages_show_the_progress(world, lambda_context):
    q = world()
    q.request()
    assert "0 of 2 approvals" in call(lambda_context, "GET", q.link("bob@corp.io"))["body"]

    posted = call(lambda_context, "POST", q.link("ann@corp.io"), {"decision": "approve"})

    assert posted["statusCode"] == 200 and "Your approval is counted: 1 of 2 approvals" in posted["body"]
    page = call(lambda_context, "GET", q.link("bob@corp.io"))["body"]
    assert "1 of 2 approvals" in page and "<form" in page and "Approve the purchase?" in page
    repeat = call(lambda_context, "POST", q.link("ann@corp.io"), {"decision": "approve"})
    assert repeat["statusCode"] == 409 and "1 of 2 approvals" in repeat["body"]


# -- races: the last approval and a rejection ---------------------------------------------------------------------


def _landing_first(store: DynamoApprovalStore, monkeypatch, other: Any) -> None:
    """The next decision reads the quorum, then ``other`` decides completely, then the first one writes."""
    real = store.replace
    fired: list[bool] = []

    def replace(quorum, read_version):
        if not fired:
            fired.append(True)
            other()
        return real(quorum, read_version)

    monkeypatch.setattr(store, "replace", replace)


def test_given_the_last_approval_in_flight_when_a_rejection_lands_first_then_rejected_and_resumed_once(
        world, monkeypatch):
    q = world()
    q.request()
    q.decide("ann@corp.io", Decision.APPROVE)
    rejection: list[Any] = []
    bob, cy = q.link("bob@corp.io"), q.link("cy@corp.io")
    _landing_first(q.store, monkeypatch, lambda: rejection.append(q.service.decide(cy, Decision.REJECT)))

    approval = q.service.decide(bob, Decision.APPROVE)

    assert rejection[0].outcome is Outcome.DECIDED
    assert (approval.outcome, approval.status) == (Outcome.ALREADY_DECIDED, ApprovalStatus.CLOSED)
    assert [out["decision"] for _, out in q.callbacks.calls] == ["rejected"]
    assert q.entries() == [("approved", "ann@corp.io"), ("rejected", "cy@corp.io")]


def test_given_a_rejection_in_flight_when_the_last_approval_lands_first_then_approved_and_resumed_once(
        world, monkeypatch):
    q = world()
    q.request()
    q.decide("ann@corp.io", Decision.APPROVE)
    approval: list[Any] = []
    bob, cy = q.link("bob@corp.io"), q.link("cy@corp.io")
    _landing_first(q.store, monkeypatch, lambda: approval.append(q.service.decide(bob, Decision.APPROVE)))

    rejection = q.service.decide(cy, Decision.REJECT)

    assert approval[0].outcome is Outcome.DECIDED
    assert (rejection.outcome, rejection.status) == (Outcome.ALREADY_DECIDED, ApprovalStatus.CLOSED)
    assert [out["decision"] for _, out in q.callbacks.calls] == ["approved"]
    assert q.entries() == [("approved", "ann@corp.io"), ("approved", "bob@corp.io")]


def test_given_two_first_approvals_in_flight_together_then_both_count_and_the_second_reaches_the_quorum(
        world, monkeypatch):
    q = world()
    q.request()
    first: list[Any] = []
    ann, bob = q.link("ann@corp.io"), q.link("bob@corp.io")
    _landing_first(q.store, monkeypatch, lambda: first.append(q.service.decide(ann, Decision.APPROVE)))

    second = q.service.decide(bob, Decision.APPROVE)  # read 0 approvals; wrote after ann's: counted on top of it

    assert first[0].outcome is second.outcome is Outcome.DECIDED
    [(_, output)] = q.callbacks.calls
    assert (output["decision"], output["approvals"]) == ("approved", 2)
    assert q.entries() == [("approved", "ann@corp.io"), ("approved", "bob@corp.io")]


@pytest.mark.parametrize("round_", range(4))
def test_given_every_approver_deciding_at_once_then_exactly_one_outcome_resumes_the_task(
        world, monkeypatch, serialised_moto, round_):
    # ann and bob approve while cy rejects, all having read the pending quorum before any of them writes.
    q = world(f"threads{round_}")
    q.request()
    links = {approver: q.link(approver) for approver in POOL}
    all_read = threading.Barrier(3)
    first_read = threading.local()
    real_quorum = q.store.quorum

    def quorum(key):
        found = real_quorum(key)
        if not getattr(first_read, "done", False):
            first_read.done = True
            all_read.wait(timeout=10)
        return found

    monkeypatch.setattr(q.store, "quorum", quorum)
    choices = {"ann@corp.io": Decision.APPROVE, "bob@corp.io": Decision.APPROVE, "cy@corp.io": Decision.REJECT}
    results: dict[str, Any] = {}
    order = list(POOL)[round_ % 3:] + list(POOL)[:round_ % 3]
    threads = [threading.Thread(target=lambda a=a: results.__setitem__(a, q.service.decide(links[a], choices[a])))
               for a in order]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 3
    [(_, output)] = q.callbacks.calls  # exactly one outcome resumed the task
    stored = real_quorum(quorum_key(q.task_token))
    assert stored.status.value == output["decision"]
    assert output["decisions"] == [d.output() for d in stored.decisions]
    # no decision that was answered as counted or decisive is lost: each is in the request, once, and on the timeline
    decided = sorted(a for a, result in results.items() if result.outcome is Outcome.DECIDED)
    assert sorted(d.approver for d in stored.decisions) == decided
    entries = q.entries()
    assert sorted(approver for _, approver in entries) == decided
    closing = entries[-1]
    if output["decision"] == "approved":
        assert sorted(entries) == [("approved", "ann@corp.io"), ("approved", "bob@corp.io")]
        assert results["cy@corp.io"].status is ApprovalStatus.CLOSED
    else:
        assert closing == ("rejected", "cy@corp.io")
        assert all(state == "approved" for state, _ in entries[:-1])
    assert q.status() == "processing"


# -- timeout, failure -------------------------------------------------------------------------------------------


def test_given_the_wait_timed_out_when_an_approval_would_only_count_then_every_link_is_void(world, lambda_context):
    q = world()
    q.request(required=3)
    q.decide("ann@corp.io", Decision.APPROVE)
    q.timeline.record(q.run_id, TimelineEntry(state=EntryState.ESCALATED, step="outcome",
                                              details={"reason": "approval_timed_out"}))
    # the run escalated: its wait is over, and no resume would tell the next approver
    result = q.decide("bob@corp.io", Decision.APPROVE)

    assert (result.outcome, result.status) == (Outcome.EXPIRED, ApprovalStatus.EXPIRED)
    assert q.callbacks.calls == []
    for approver in POOL:
        assert call(lambda_context, "GET", q.link(approver))["statusCode"] == 410
    assert q.entries() == [("approved", "ann@corp.io")]


def test_given_the_link_window_passed_then_every_link_is_expired(world, lambda_context):
    q = world()
    q.request(now=time.time() - TTL - 1)

    assert q.decide("ann@corp.io", Decision.APPROVE).outcome is Outcome.EXPIRED
    assert call(lambda_context, "POST", q.link("bob@corp.io"), {"decision": "reject"})["statusCode"] == 410
    assert q.callbacks.calls == []


def test_given_the_counted_approval_cannot_be_recorded_then_it_is_taken_back_and_the_link_still_works(
        world, monkeypatch):
    q = world()
    q.request()
    real = q.timeline.record
    failed: list[bool] = []

    def failing_once(run_id, entry, workflow=None, **kwargs):
        if entry.state is EntryState.APPROVED and not failed:
            failed.append(True)
            raise RuntimeError("ProvisionedThroughputExceededException")
        return real(run_id, entry, workflow, **kwargs)

    monkeypatch.setattr(q.timeline, "record", failing_once)

    with pytest.raises(RuntimeError):
        q.decide("ann@corp.io", Decision.APPROVE)

    assert q.store.quorum(quorum_key(q.task_token)).decisions == []
    assert q.decide("ann@corp.io", Decision.APPROVE).outcome is Outcome.DECIDED
    assert q.entries() == [("approved", "ann@corp.io")]


def test_given_the_quorums_decision_cannot_be_delivered_then_the_request_reopens_and_a_retry_delivers_it(world):
    q = world()
    q.request()
    q.decide("ann@corp.io", Decision.APPROVE)
    q.callbacks.fail_with = RuntimeError("ThrottlingException")

    with pytest.raises(RuntimeError):
        q.decide("bob@corp.io", Decision.APPROVE)

    stored = q.store.quorum(quorum_key(q.task_token))
    assert (stored.status, stored.approvals) == (ApprovalStatus.PENDING, 1)
    assert q.status() == "pending_approval"
    q.callbacks.fail_with = None
    assert q.decide("bob@corp.io", Decision.APPROVE).outcome is Outcome.DECIDED
    assert [out["approvals"] for _, out in q.callbacks.calls] == [2, 2]  # the failed try, then the delivered one


def test_given_a_quorum_round_when_logged_then_no_approver_address_token_or_task_token_appears(
        world, lambda_context, caplog, capsys):
    import logging

    caplog.set_level(logging.DEBUG, logger="interlock")
    q = world()
    q.request()
    for approver, decision in (("ann@corp.io", "approve"), ("ann@corp.io", "approve"), ("bob@corp.io", "reject"),
                               ("cy@corp.io", "approve")):
        call(lambda_context, "GET", q.link(approver))
        call(lambda_context, "POST", q.link(approver), {"decision": decision})

    logged = " ".join(repr(r.__dict__) for r in caplog.records) + capsys.readouterr().out
    assert caplog.records
    for secret in (*POOL, *(t for ts in q.links().values() for t in ts), q.task_token[:30]):
        assert secret not in logged
