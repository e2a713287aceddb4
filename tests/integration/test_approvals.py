"""Human approval: ApprovalService with DynamoApprovalStore and SES (moto), and the /approvals/{token} handler."""

from __future__ import annotations

import email
import json
import re
import time
from dataclasses import dataclass, field
from email import policy
from typing import Any
from urllib.parse import urlencode

import http_approvals
import pytest
from interlock import approval_pages as pages
from interlock.approvals import (
    ApprovalRecord,
    ApprovalRequestInput,
    ApprovalService,
    ApprovalStatus,
    Decision,
    DynamoApprovalStore,
    Outcome,
    RequestSettings,
    SesMailer,
    StepFunctionsCallbacks,
    token_hash,
)
from interlock.models import EntryState, Envelope, TimelineEntry, run_id_for, utcnow
from interlock.timeline import DynamoTimelineStore
from interlock.workflows.support_triage.approval import view as triage_view

from integration.support import ACCOUNT, REGION, TABLE_NAME, header, rest_event

TASK_TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAd9sT1ABCDEFtasktokenSECRET" + "x" * 200
SENDER = "interlock@example.com"
APPROVER = "approver@example.com"
BASE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
LINK = re.compile(re.escape(BASE_URL) + r"/approvals/([A-Za-z0-9_-]{43})")
TTL = 3600


@dataclass
class FakeCallbacks:
    answer: bool = True
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_with: Exception | None = None

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        self.calls.append((task_token, output))
        if self.fail_with is not None:
            raise self.fail_with
        return self.answer


@dataclass
class World:
    cloud: Any
    service: ApprovalService
    callbacks: FakeCallbacks
    timeline: DynamoTimelineStore
    approvals: DynamoApprovalStore
    run_id: str

    def sent(self) -> list[Any]:
        from moto.ses.models import ses_backends

        return ses_backends[ACCOUNT][REGION].sent_messages

    def request(self, now: float | None = None, **ticket: Any) -> dict[str, Any]:
        """Ask for a support triage approval, its context the view the wait's request_approval step builds."""
        data = ApprovalRequestInput(
            run_id=self.run_id,
            task_token=TASK_TOKEN,
            workflow="support_triage",
            reasons=["risky_category:refund"],
            context={"view": triage_view({
                "ticket": {"subject": "Refund please", "body": "I was charged twice",
                           "customer_email": "ada@example.com", **ticket},
                "classification": {"category": "refund", "confidence": 0.85, "summary": "Refund please"},
                "account": {"found": True, "account": {"account_id": "a1", "name": "Ada", "plan": "pro"}},
                "draft": {"subject": "Re: Refund please", "body": "Hi Ada, we've received your refund request."},
                "guardrail": {"requires_approval": True, "reasons": ["risky_category:refund"],
                              "min_confidence": 0.75},
            }).model_dump(mode="json")},
        )
        settings = RequestSettings(public_base_url=BASE_URL, approver_email=APPROVER, sender_email=SENDER,
                                   ttl_seconds=TTL)
        return self.service.request(data, settings, SesMailer(), now=now)

    def token(self) -> str:
        """The token from the last email's link (the only place it exists)."""
        text, _ = email_parts(self.sent()[-1].raw_data)
        match = LINK.search(text)
        assert match, text
        return match.group(1)

    def states(self) -> list[str]:
        view = self.timeline.get(self.run_id)
        assert view is not None
        return [e.state.value for e in view.timeline]


def email_parts(raw: str) -> tuple[str, str]:
    message = email.message_from_string(raw, policy=policy.default)
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


@pytest.fixture
def world(cloud, monkeypatch) -> World:
    import boto3

    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    timeline = DynamoTimelineStore(TABLE_NAME)
    key = f"form:msg_{time.time_ns()}"
    envelope = Envelope(event_id="msg", source="form", type="support.ticket", payload_version="v1",
                        received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key), payload={"type": "t"})
    timeline.create_run_once(envelope, 3600)
    callbacks = FakeCallbacks()
    approvals = DynamoApprovalStore(TABLE_NAME)
    service = ApprovalService(approvals, timeline, callbacks)
    monkeypatch.setattr(http_approvals, "approval_service", lambda: service)
    return World(cloud, service, callbacks, timeline, approvals, envelope.run_id)


# -- request ----------------------------------------------------------------------------------------------


def test_given_a_record_stored_before_views_when_opened_then_its_workflow_shows_it(world, lambda_context):
    # An approval requested before approvals kept their view: its context is the workflow's own fields.
    world.timeline.record(world.run_id, TimelineEntry(state=EntryState.PROCESSING, step="router"),
                          workflow="support_triage")
    token = "legacy_" + "x" * 36
    world.approvals.put(ApprovalRecord(
        token_hash=token_hash(token), run_id=world.run_id, task_token=TASK_TOKEN, status=ApprovalStatus.PENDING,
        created_at=time.time(), deadline=time.time() + TTL,
        context={"ticket": {"subject": "Refund please <b>now</b>", "body": "I was charged twice"},
                 "draft": {"subject": "Re: Refund please", "body": "Hi Ada, we've received your refund request."},
                 "guardrail": {"requires_approval": True, "reasons": ["risky_category:refund"]}}))

    response = call(lambda_context, "GET", token)

    assert response["statusCode"] == 200
    assert "Refund please &lt;b&gt;now&lt;/b&gt;" in response["body"]  # the workflow's view, escaped
    assert "refund request" in response["body"]
    assert world.approvals.get(token_hash(token)).context.get("view") is None  # the record itself is unchanged




def test_given_a_run_needing_approval_when_requested_then_one_email_with_the_link_and_the_run_is_pending(world):
    answer = world.request()

    assert answer["requested"] is True
    [message] = world.sent()
    assert message.source == SENDER
    assert set(message.destinations) == {APPROVER}  # moto also lists the To header's address
    text, html = email_parts(message.raw_data)
    token = world.token()
    assert f"{BASE_URL}/approvals/{token}" in text
    assert f'href="{BASE_URL}/approvals/{token}"' in html
    assert world.states() == ["received", "pending_approval"]
    view = world.timeline.get(world.run_id)
    assert view.status.value == "pending_approval"
    details = view.timeline[-1].details
    assert details["reasons"] == ["risky_category:refund"]
    assert details["approvers"] == [APPROVER]
    assert details["required"] == 1
    assert details["expires_at"] == answer["expires_at"]
    assert len(details["email_message_ids"]) == 1 and details["email_message_ids"][0]


def test_given_a_request_when_stored_then_only_the_hash_is_kept_and_the_task_token_never_leaves(world):
    world.request()
    token = world.token()

    everything = json.dumps(world.cloud.items())
    assert token not in everything
    assert token_hash(token) in everything
    raw = world.sent()[0].raw_data
    text, html = email_parts(raw)
    assert TASK_TOKEN not in raw and TASK_TOKEN not in text and TASK_TOKEN not in html
    assert TASK_TOKEN[:40] not in raw
    record = world.approvals.get(token_hash(token))
    assert record.task_token == TASK_TOKEN
    assert record.status is ApprovalStatus.PENDING
    assert record.deadline == pytest.approx(record.created_at + TTL)


def test_given_two_requests_when_made_then_each_gets_its_own_token(world):
    world.request()
    first = world.token()
    world.request()

    assert world.token() != first


def test_given_a_subject_with_a_header_injection_when_requested_then_one_email_goes_to_the_approver_only(world):
    world.request(subject="Refund\r\nBcc: attacker@evil.example")

    [message] = world.sent()
    assert set(message.destinations) == {APPROVER}  # moto also lists the To header's address
    parsed = email.message_from_string(message.raw_data, policy=policy.default)
    assert parsed["Bcc"] is None
    assert "\n" not in parsed["Subject"]


def test_given_an_xss_payload_in_the_ticket_when_emailed_then_the_html_part_is_escaped(world):
    world.request(subject="<script>alert(1)</script>", body="<img src=x onerror=alert(2)>")

    _, html = email_parts(world.sent()[0].raw_data)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# -- decide ------------------------------------------------------------------------------------------------


def test_given_a_pending_approval_when_approved_then_the_workflow_resumes_once_with_approved(world):
    world.request()

    result = world.service.decide(world.token(), Decision.APPROVE)

    assert result.outcome is Outcome.DECIDED
    assert result.status is ApprovalStatus.APPROVED
    [(task_token, output)] = world.callbacks.calls
    assert task_token == TASK_TOKEN
    assert output["decision"] == "approved"
    assert output["via"] == "email_link"
    assert world.states() == ["received", "pending_approval", "approved"]
    assert world.timeline.get(world.run_id).status.value == "processing"
    record = world.approvals.get(token_hash(world.token()))
    assert record.status is ApprovalStatus.APPROVED
    assert record.decided_at is not None


def test_given_a_pending_approval_when_rejected_then_resume_says_rejected_and_the_run_goes_on_to_its_outcome(world):
    world.request()

    result = world.service.decide(world.token(), Decision.REJECT)

    assert result.outcome is Outcome.DECIDED
    assert world.callbacks.calls[0][1]["decision"] == "rejected"
    assert world.states()[-1] == "rejected"
    # what a rejection means is the workflow's: it records the run's outcome (support triage: rejected)
    assert world.timeline.get(world.run_id).status.value == "processing"


def test_given_a_decided_approval_when_decided_again_then_already_decided_and_nothing_resumes_again(world):
    world.request()
    token = world.token()
    world.service.decide(token, Decision.APPROVE)

    again = world.service.decide(token, Decision.REJECT)

    assert again.outcome is Outcome.ALREADY_DECIDED
    assert again.status is ApprovalStatus.APPROVED
    assert len(world.callbacks.calls) == 1
    assert world.states() == ["received", "pending_approval", "approved"]
    assert world.approvals.get(token_hash(token)).status is ApprovalStatus.APPROVED


def test_given_an_approval_past_its_deadline_when_decided_then_expired_and_nothing_changes(world):
    now = time.time()
    world.request(now=now)
    token = world.token()
    before = sorted(map(repr, world.cloud.items()))

    result = world.service.decide(token, Decision.APPROVE, now=now + TTL)

    assert result.outcome is Outcome.EXPIRED
    assert result.status is ApprovalStatus.EXPIRED
    assert world.callbacks.calls == []
    assert sorted(map(repr, world.cloud.items())) == before
    assert world.approvals.get(token_hash(token)).status is ApprovalStatus.PENDING


def test_given_an_approval_just_before_its_deadline_when_decided_then_it_counts(world):
    now = time.time()
    world.request(now=now)

    assert world.service.decide(world.token(), Decision.APPROVE, now=now + TTL - 1).outcome is Outcome.DECIDED


@pytest.mark.parametrize(
    "token",
    ["A" * 43, "short", "", "../../etc/passwd", "A" * 42 + "=", "A" * 43 + "\n", "A" * 500],
    ids=["well-formed-unknown", "short", "empty", "path", "padding", "newline", "long"],
)
def test_given_an_unknown_or_malformed_token_when_decided_then_unknown_and_nothing_changes(world, token):
    world.request()
    before = sorted(map(repr, world.cloud.items()))

    assert world.service.decide(token, Decision.APPROVE).outcome is Outcome.UNKNOWN
    assert world.callbacks.calls == []
    assert sorted(map(repr, world.cloud.items())) == before


def test_given_the_workflow_stopped_waiting_when_decided_then_expired_the_record_is_void_and_the_run_escalated(world):
    world.request()
    token = world.token()
    world.callbacks.answer = False

    result = world.service.decide(token, Decision.APPROVE)

    assert result.outcome is Outcome.EXPIRED
    assert result.status is ApprovalStatus.EXPIRED
    assert len(world.callbacks.calls) == 1
    assert world.approvals.get(token_hash(token)).status is ApprovalStatus.EXPIRED
    assert world.states()[-1] == "escalated"
    assert world.timeline.get(world.run_id).timeline[-1].details["reason"] == "decision_after_workflow_stopped_waiting"
    # and the link stays dead
    world.callbacks.answer = True
    assert world.service.decide(token, Decision.APPROVE).outcome is Outcome.EXPIRED
    assert len(world.callbacks.calls) == 1


def test_given_step_functions_cannot_be_reached_when_decided_then_the_link_stays_usable_and_a_retry_resumes(world):
    # A throttled or failed SendTaskSuccess must not spend the link: the workflow is still waiting.
    world.request()
    token = world.token()
    world.callbacks.fail_with = RuntimeError("ThrottlingException: Rate exceeded")

    with pytest.raises(RuntimeError):
        world.service.decide(token, Decision.APPROVE)

    assert world.approvals.get(token_hash(token)).status is ApprovalStatus.PENDING
    assert world.timeline.get(world.run_id).status.value == "pending_approval"
    world.callbacks.fail_with = None
    retry = world.service.decide(token, Decision.APPROVE)
    assert retry.outcome is Outcome.DECIDED
    assert [output["decision"] for _, output in world.callbacks.calls] == ["approved", "approved"]
    assert world.states() == ["received", "pending_approval", "approved", "pending_approval", "approved"]
    assert world.timeline.get(world.run_id).status.value == "processing"
    assert world.approvals.get(token_hash(token)).status is ApprovalStatus.APPROVED


def test_given_the_timeline_write_fails_when_decided_then_nothing_resumes_and_the_link_stays_usable(
    world, monkeypatch
):
    world.request()
    token = world.token()
    real_record = world.timeline.record
    failures = []

    def failing_once(run_id, entry, workflow=None, **kwargs):
        if entry.state.value == "approved" and not failures:
            failures.append(entry)
            raise RuntimeError("ProvisionedThroughputExceededException")
        return real_record(run_id, entry, workflow, **kwargs)

    monkeypatch.setattr(world.timeline, "record", failing_once)

    with pytest.raises(RuntimeError):
        world.service.decide(token, Decision.APPROVE)

    assert world.callbacks.calls == []
    assert world.approvals.get(token_hash(token)).status is ApprovalStatus.PENDING
    assert world.service.decide(token, Decision.APPROVE).outcome is Outcome.DECIDED
    assert len(world.callbacks.calls) == 1


# -- the Step Functions callbacks adapter -------------------------------------------------------------------


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_given_step_functions_no_longer_waits_when_resumed_then_false(aws, code):
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("stepfunctions", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("send_task_success", service_error_code=code, http_status_code=400)
        assert StepFunctionsCallbacks(client).resume("token", {"decision": "approved"}) is False


def test_given_step_functions_accepts_when_resumed_then_true_and_the_output_is_json(aws):
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("stepfunctions", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response("send_task_success", {},
                          {"taskToken": "tok", "output": json.dumps({"decision": "approved"})})
        assert StepFunctionsCallbacks(client).resume("tok", {"decision": "approved"}) is True


def test_given_step_functions_throttles_when_resumed_then_the_error_propagates_rather_than_voiding_the_link(aws):
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("stepfunctions", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("send_task_success", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(client.exceptions.ClientError):
            StepFunctionsCallbacks(client).resume("tok", {})


# -- the request step's real handler --------------------------------------------------------------------------


def test_given_the_request_step_handler_when_invoked_then_the_approver_gets_the_email(cloud, monkeypatch,
                                                                                      lambda_context, fresh_import):
    import boto3

    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    for name, value in {"PUBLIC_BASE_URL": BASE_URL, "APPROVER_EMAIL": APPROVER, "SENDER_EMAIL": SENDER,
                        "APPROVAL_TTL_SECONDS": "600", "APPROVAL_TIMEOUT_SECONDS": "600"}.items():
        monkeypatch.setenv(f"INTERLOCK_{name}", value)
    job_approve = fresh_import("job_approve")  # it reads its settings at import
    timeline = DynamoTimelineStore(TABLE_NAME)
    key = "form:msg_step"
    envelope = Envelope(event_id="msg_step", source="form", type="support.ticket", payload_version="v1",
                        received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key), payload={"type": "t"})
    timeline.create_run_once(envelope, 3600)
    event = {"workflow": "support_triage", "step": "request_approval", "run_id": envelope.run_id, "attempt": 0,
             "task_token": TASK_TOKEN, "reasons": ["risky_category:legal"], "context": {
                 "ticket": {"subject": "Help", "body": "b", "customer_email": "a@example.com"},
                 "classification": {"category": "legal", "confidence": 0.9},
                 "account": {"found": False, "partial": True}, "draft": {"body": "d"},
                 "guardrail": {"requires_approval": True, "reasons": ["risky_category:legal"]}}}

    answer = job_approve.handler(event, lambda_context)

    assert answer["requested"] is True
    from moto.ses.models import ses_backends

    [message] = ses_backends[ACCOUNT][REGION].sent_messages
    assert set(message.destinations) == {APPROVER}  # moto also lists the To header's address
    assert TASK_TOKEN not in message.raw_data
    assert timeline.get(envelope.run_id).status.value == "pending_approval"


# -- the /approvals/{token} handler -----------------------------------------------------------------------


def call(lambda_context, method: str, token: str, form: dict[str, str] | None = None, *,
         raw_body: str | None = None, is_base64: bool = False) -> dict[str, Any]:
    body = raw_body if raw_body is not None else (urlencode(form) if form is not None else None)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    event = rest_event(method, f"/approvals/{token}", "/approvals/{token}", {"token": token}, headers=headers,
                       body=body, is_base64=is_base64)
    return http_approvals.handler(event, lambda_context)


def assert_security_headers(response: dict[str, Any]) -> None:
    assert header(response, "Cache-Control") == "no-store"
    assert header(response, "Referrer-Policy") == "no-referrer"
    assert header(response, "X-Frame-Options") == "DENY"
    assert header(response, "X-Content-Type-Options") == "nosniff"
    assert "frame-ancestors 'none'" in header(response, "Content-Security-Policy")
    assert header(response, "Content-Type").startswith("text/html")


def test_given_a_pending_approval_when_opened_and_prefetched_repeatedly_then_nothing_changes(world, lambda_context):
    world.request()
    token = world.token()
    before = sorted(map(repr, world.cloud.items()))

    responses = [call(lambda_context, method, token) for method in ("GET", "HEAD", "GET", "HEAD", "GET")]

    for response in responses:
        assert response["statusCode"] == 200
        assert_security_headers(response)
    assert "Approve this reply?" in responses[0]["body"]
    assert world.callbacks.calls == []
    assert world.approvals.get(token_hash(token)).status is ApprovalStatus.PENDING
    assert sorted(map(repr, world.cloud.items())) == before


def test_given_a_pending_approval_when_the_form_posts_approve_then_it_is_decided(world, lambda_context):
    world.request()
    token = world.token()

    response = call(lambda_context, "POST", token, {"decision": "approve"})

    assert response["statusCode"] == 200
    assert_security_headers(response)
    assert "You approved this reply" in response["body"]
    assert [output["decision"] for _, output in world.callbacks.calls] == ["approved"]
    assert world.states()[-1] == "approved"


def test_given_a_base64_form_body_when_posted_then_it_is_decoded(world, lambda_context):
    import base64

    world.request()
    body = base64.b64encode(b"decision=reject").decode()

    response = call(lambda_context, "POST", world.token(), raw_body=body, is_base64=True)

    assert response["statusCode"] == 200
    assert world.callbacks.calls[0][1]["decision"] == "rejected"


def test_given_a_decided_approval_when_posted_again_then_409_and_nothing_resumes(world, lambda_context):
    world.request()
    token = world.token()
    call(lambda_context, "POST", token, {"decision": "approve"})

    response = call(lambda_context, "POST", token, {"decision": "reject"})

    assert response["statusCode"] == 409
    assert_security_headers(response)
    assert "already approved" in response["body"]
    assert len(world.callbacks.calls) == 1
    shown = call(lambda_context, "GET", token)
    assert shown["statusCode"] == 200
    assert "Already decided" in shown["body"]
    assert "<form" not in shown["body"]


@pytest.mark.parametrize(
    "form",
    [{"decision": "approved"}, {"decision": ""}, {}, {"decision": "APPROVE"}, {"choice": "approve"}],
    ids=["approved", "blank", "none", "upper", "other-field"],
)
def test_given_a_bad_decision_when_posted_then_400_and_nothing_changes(world, lambda_context, form):
    world.request()
    token = world.token()
    before = sorted(map(repr, world.cloud.items()))

    response = call(lambda_context, "POST", token, form)

    assert response["statusCode"] == 400
    assert_security_headers(response)
    assert world.callbacks.calls == []
    assert sorted(map(repr, world.cloud.items())) == before


@pytest.mark.parametrize(
    ("raw_body", "is_base64"),
    [("/w==", True),  # b"\xff": not UTF-8
     ("ZGVjaXNpb249YXBwcm92ZSZub3RlPf8=", True),  # b"decision=approve&note=\\xff"
     ("not base64!", True),
     ("decision=approve&decision=reject", False),
     ("decision=appro%ffve", False),
     ("&".join(f"f{i}=1" for i in range(50)) + "&decision=approve", False),
     ("decision=approve&pad=" + "x" * 10_000, False)],
    ids=["not-utf8", "not-utf8-after-the-decision", "not-base64", "two-decisions", "bad-escape", "many-fields", "huge"],
)
def test_given_a_form_body_that_is_not_the_pages_form_then_400_with_the_error_page_and_nothing_changes(
        world, lambda_context, raw_body, is_base64):
    world.request()
    token = world.token()
    before = sorted(map(repr, world.cloud.items()))

    response = call(lambda_context, "POST", token, raw_body=raw_body, is_base64=is_base64)

    assert response["statusCode"] == 400
    assert_security_headers(response)
    assert response["body"] == pages.bad_decision()
    assert world.callbacks.calls == []
    assert sorted(map(repr, world.cloud.items())) == before


def test_given_an_unknown_token_when_opened_or_posted_then_404(world, lambda_context):
    for method in ("GET", "HEAD"):
        response = call(lambda_context, method, "B" * 43)
        assert response["statusCode"] == 404
        assert_security_headers(response)
    response = call(lambda_context, "POST", "B" * 43, {"decision": "approve"})
    assert response["statusCode"] == 404
    assert world.callbacks.calls == []


def test_given_a_path_no_route_matches_when_requested_then_404_not_an_error_page(world, lambda_context):
    for method in ("GET", "POST"):
        event = rest_event(method, "/approvals/a/b", "/approvals/{token}", {"token": "a/b"},
                           body="decision=approve" if method == "POST" else None)
        assert http_approvals.handler(event, lambda_context)["statusCode"] == 404
    assert world.callbacks.calls == []


def test_given_an_expired_approval_when_opened_or_posted_then_410_and_nothing_resumes(world, lambda_context):
    world.request(now=time.time() - TTL - 10)
    token = world.token()

    shown = call(lambda_context, "GET", token)
    posted = call(lambda_context, "POST", token, {"decision": "approve"})

    assert shown["statusCode"] == 410
    assert posted["statusCode"] == 410
    assert_security_headers(posted)
    assert world.callbacks.calls == []
    assert world.approvals.get(token_hash(token)).status is ApprovalStatus.PENDING


def test_given_the_workflow_stopped_waiting_when_posted_then_410(world, lambda_context):
    world.request()
    world.callbacks.answer = False

    response = call(lambda_context, "POST", world.token(), {"decision": "approve"})

    assert response["statusCode"] == 410
    assert world.states()[-1] == "escalated"


def test_given_step_functions_cannot_be_reached_when_posted_then_a_503_page_and_the_link_still_works(
    world, lambda_context
):
    world.request()
    token = world.token()
    world.callbacks.fail_with = RuntimeError("ThrottlingException: Rate exceeded")

    response = call(lambda_context, "POST", token, {"decision": "approve"})

    assert response["statusCode"] == 503
    assert_security_headers(response)
    assert "<form" not in response["body"]
    world.callbacks.fail_with = None
    assert call(lambda_context, "GET", token)["statusCode"] == 200
    assert call(lambda_context, "POST", token, {"decision": "approve"})["statusCode"] == 200


def test_given_the_real_wiring_when_an_approval_is_posted_then_step_functions_is_called_and_it_is_decided(
    world, lambda_context, monkeypatch
):
    # No fake: the handler's own service, with the Step Functions callbacks adapter (moto accepts any token).
    from interlock import wiring

    monkeypatch.setattr(http_approvals, "approval_service", wiring.approval_service)
    world.request()
    token = world.token()

    response = call(lambda_context, "POST", token, {"decision": "approve"})

    assert response["statusCode"] == 200
    assert world.approvals.get(token_hash(token)).status is ApprovalStatus.APPROVED
    assert call(lambda_context, "POST", token, {"decision": "approve"})["statusCode"] == 409


def test_given_a_full_approval_round_when_logged_then_neither_the_link_token_nor_the_task_token_appears(
    world, lambda_context, caplog, capsys
):
    import logging

    caplog.set_level(logging.DEBUG, logger="interlock")  # our logger; the SDK's debug wire logs are not on in Lambda
    world.request()
    token = world.token()
    call(lambda_context, "GET", token)
    call(lambda_context, "HEAD", token)
    call(lambda_context, "POST", token, {"decision": "approve"})
    call(lambda_context, "POST", token, {"decision": "approve"})

    ours = [r for r in caplog.records if r.name.startswith(("interlock", "aws_lambda_powertools"))]
    logged = " ".join(repr(r.__dict__) for r in ours) + capsys.readouterr().out
    assert ours, "the handler should have logged something"
    assert token not in logged
    assert TASK_TOKEN[:40] not in logged
