"""An operator's resend of a lost approval email (interlock.approval_resend) on moto's DynamoDB and SES, and its
handler ``POST /runs/{run_id}/approvals/resend``: a new link to the same request, the older one dead, decisions
made standing, refusals for what cannot be resent."""

from __future__ import annotations

import email
import json
from email import policy
from typing import Any

import http_approval_resend
import pytest
from interlock.approval_resend import ApprovalResend, ResendRequest
from interlock.approvals import ApprovalRequestInput, Decision, Outcome, RequestSettings, SesMailer

from integration.support import rest_event
from integration.test_approvals import APPROVER, BASE_URL, LINK, SENDER, TASK_TOKEN, TTL, World, email_parts
from integration.test_approvals import world as world

OTHER = "second@example.com"


def settings(pool: str = APPROVER) -> RequestSettings:
    return RequestSettings(public_base_url=BASE_URL, approver_email=pool, sender_email=SENDER, ttl_seconds=TTL)


def request(world: World, pool: str = APPROVER, approvers: int = 1, now: float | None = None) -> None:
    data = ApprovalRequestInput(run_id=world.run_id, task_token=TASK_TOKEN, workflow="support_triage",
                                reasons=["risky_category:refund"], approvers=approvers,
                                context={"ticket": {"subject": "Refund please", "body": "b"}})
    world.service.request(data, settings(pool), SesMailer(), now=now)


def tokens(world: World) -> dict[str, str]:
    """The last link each address was emailed."""
    found = {}
    for message in world.sent():
        text, _ = email_parts(message.raw_data)
        match = LINK.search(text)
        assert match, text
        found[next(iter(sorted(message.destinations)))] = match.group(1)
    return found


def resender(world: World, pool: str = APPROVER, mailer: Any = None) -> ApprovalResend:
    return ApprovalResend(world.approvals, world.timeline, mailer or SesMailer(), settings(pool))


def last_entry(world: World) -> tuple[str, str, dict[str, Any]]:
    view = world.timeline.get(world.run_id)
    assert view is not None
    entry = view.timeline[-1]
    return entry.state.value, entry.step, entry.details


def test_given_a_lost_email_when_resent_then_a_new_link_decides_and_the_old_one_is_dead(world) -> None:
    request(world)
    old = tokens(world)[APPROVER]

    outcome = resender(world).resend(world.run_id, ResendRequest())

    assert (outcome.status, outcome.body["resent_to"]) == (200, [APPROVER])
    assert len(world.sent()) == 2
    new = tokens(world)[APPROVER]
    assert new != old
    assert world.service.find(old) is None  # the replaced link answers as one never sent
    assert world.service.decide(old, Decision.APPROVE).outcome is Outcome.UNKNOWN
    assert world.callbacks.calls == []
    state, step, details = last_entry(world)
    assert (state, step, details["reason"], details["approvers"]) == ("retried", "approval", "approval_resent",
                                                                      [APPROVER])
    assert world.timeline.get(world.run_id).status.value == "pending_approval"  # still waiting, same deadline
    result = world.service.decide(new, Decision.APPROVE)
    assert result.outcome is Outcome.DECIDED
    assert [output["decision"] for _, output in world.callbacks.calls] == ["approved"]
    first, again = (email.message_from_string(m.raw_data, policy=policy.default) for m in world.sent()[:2])
    assert TASK_TOKEN not in again.as_string()
    assert again["Subject"] == first["Subject"] and again["To"] == first["To"]  # the request's own template


def test_given_two_approvers_one_decided_when_resent_then_only_the_other_and_a_decided_one_is_refused(
    world
) -> None:
    pool = f"{APPROVER}, {OTHER}"
    request(world, pool, approvers=2)
    first = tokens(world)
    assert world.service.decide(first[APPROVER], Decision.APPROVE).outcome is Outcome.DECIDED  # counted: 1 of 2
    resend = resender(world, pool)

    assert resend.resend(world.run_id, ResendRequest()).body["resent_to"] == [OTHER]
    assert world.service.find(first[APPROVER]) is not None  # not resent: the decided approver's link stands
    assert world.service.find(first[OTHER]) is None
    refused = resend.resend(world.run_id, ResendRequest(approver=APPROVER.upper()))
    assert (refused.status, refused.body["error"]) == (409, "already_decided")
    refused = resend.resend(world.run_id, ResendRequest(approver="stranger@example.com"))
    assert (refused.status, refused.body["error"]) == (400, "unknown_approver")
    # resent twice: only the newest link works
    second = tokens(world)[OTHER]
    assert resend.resend(world.run_id, ResendRequest(approver=OTHER)).status == 200
    assert world.service.find(second) is None
    assert world.service.decide(tokens(world)[OTHER], Decision.APPROVE).outcome is Outcome.DECIDED
    assert [output["approvals"] for _, output in world.callbacks.calls] == [2]


def test_given_what_cannot_be_resent_then_a_clear_refusal_and_no_email(world) -> None:
    import time

    resend = resender(world)
    assert resend.resend("not-a-run", ResendRequest()).body["error"] == "bad_run_id"
    assert resend.resend("0b7c9a52-4f1e-5d0a-9c33-2f7f1b6c0e11", ResendRequest()).status == 404
    assert resend.resend(world.run_id, ResendRequest()).body["error"] == "not_waiting"  # received, asks nobody
    request(world, now=time.time() - TTL - 1)  # its deadline passed
    assert len(world.sent()) == 1
    assert resend.resend(world.run_id, ResendRequest()).body["error"] == "expired"
    assert len(world.sent()) == 1


def test_given_the_email_cannot_be_sent_when_resent_then_503_and_the_old_link_still_works(
    world
) -> None:
    request(world)
    old = tokens(world)[APPROVER]

    class Down:
        def send(self, *_: Any, **__: Any) -> str:
            raise ConnectionError("SES unavailable")

    outcome = resender(world, mailer=Down()).resend(world.run_id, ResendRequest())

    assert (outcome.status, outcome.body["error"]) == (503, "email_unavailable")
    assert world.service.find(old) is not None
    assert last_entry(world)[0] == "pending_approval"


def call(lambda_context, run_id: str, body: str | None, user_arn: str | None = None) -> tuple[int, dict[str, Any]]:
    event = rest_event("POST", f"/runs/{run_id}/approvals/resend", "/runs/{run_id}/approvals/resend",
                       {"run_id": run_id}, body=body, headers={"Content-Type": "application/json"})
    event["requestContext"].setdefault("identity", {})["userArn"] = user_arn
    response = http_approval_resend.handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("body", ["not json", "[]", '{"approver": 5}', '{"to": "x@example.com"}', '{"approver": ""}',
                                  "[" * 5000 + "]" * 5000, '{"approver": "\\ud800@example.com"}'])
def test_given_a_bad_body_then_400_and_nothing_sent(world, lambda_context, monkeypatch, body) -> None:
    request(world)
    monkeypatch.setattr(http_approval_resend, "approval_resend", lambda: resender(world))

    status, answer = call(lambda_context, world.run_id, body)

    assert status == 400 and answer["error"] in ("bad_body", "bad_request")
    assert len(world.sent()) == 1


def test_given_a_signed_request_when_resent_then_the_timeline_names_who_asked(
    world, lambda_context, monkeypatch
) -> None:
    request(world)
    monkeypatch.setattr(http_approval_resend, "approval_resend", lambda: resender(world))
    arn = "arn:aws:sts::123456789012:assumed-role/Operators/ana"

    status, answer = call(lambda_context, world.run_id, json.dumps({"approver": APPROVER}), user_arn=arn)

    assert (status, answer["resent_to"]) == (200, [APPROVER])
    assert last_entry(world)[2]["requested_by"] == arn
    assert tokens(world)[APPROVER] not in json.dumps(answer)  # the link goes to the approver only
