"""The support triage tasks: validate, classify, fetch account, draft, guardrail, send, record outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from interlock.connectors.crm import Account, HttpCrm
from interlock.connectors.helpdesk import HttpHelpdesk
from interlock.errors import CrmUnavailable, HelpdeskRejected, MissingData, NotConfigured
from interlock.kit import outcomes
from interlock.models import EntryState, Envelope, run_id_for
from interlock.workflows.support_triage import triage
from interlock.workflows.support_triage.rules import TEMPLATES, Classification, template_name
from pydantic import ValidationError

from unit.fakes import RecordingTimeline, offline_runner

RUN_ID = run_id_for("form:msg_1")
GOOD = {"subject": "Invoice question", "body": "Where is my invoice?", "customer_email": "ada@example.com",
        "customer_name": "Ada"}


def envelope(payload: dict[str, Any]) -> Envelope:
    return Envelope(event_id="msg_1", source="form", type="support.ticket", payload_version="v1",
                    received_at=datetime(2024, 1, 1, tzinfo=UTC), dedupe_key="form:msg_1", run_id=RUN_ID,
                    payload=payload)


def validate(data: Any) -> triage.Ticket:
    return triage.validate(triage.ValidateInput(run_id=RUN_ID, envelope=envelope({"type": "x", "data": data})))


def classification(category: str = "billing", confidence: float = 0.9) -> Classification:
    return Classification(category=category, confidence=confidence, summary="s",  # type: ignore[arg-type]
                          decided_by="test")


# -- validate --------------------------------------------------------------------------------------------


def test_given_a_complete_ticket_when_validated_then_the_ticket_comes_back():
    assert validate(GOOD) == triage.Ticket(**GOOD)


def test_given_a_ticket_without_optional_name_and_with_extra_fields_when_validated_then_it_is_accepted():
    ticket = validate({"subject": "s", "body": "b", "customer_email": "a@b.co", "order": 123})

    assert ticket.customer_name is None


def test_given_several_missing_fields_when_validated_then_every_missing_field_is_listed_in_order():
    with pytest.raises(MissingData) as exc_info:
        validate({"body": "b"})

    assert exc_info.value.details == {"fields": ["subject", "customer_email"]}
    assert exc_info.value.message == "the ticket is missing subject, customer_email"
    assert exc_info.value.step == "validate"
    assert exc_info.value.retryable is False


@pytest.mark.parametrize("blank", ["", "   ", "\n\t", None])
def test_given_blank_strings_when_validated_then_they_count_as_missing(blank):
    with pytest.raises(MissingData) as exc_info:
        validate({**GOOD, "subject": blank, "body": blank})

    assert exc_info.value.details["fields"] == ["subject", "body"]


@pytest.mark.parametrize("email", ["ada", "ada@example", "@example.com", "ada smith@example.com", "ada@"])
def test_given_a_bad_email_when_validated_then_missing_data_names_customer_email(email):
    with pytest.raises(MissingData) as exc_info:
        validate({**GOOD, "customer_email": email})

    assert exc_info.value.details["fields"] == ["customer_email"]
    assert "email" in exc_info.value.message


@pytest.mark.parametrize("data", ["a string", ["subject", "body"], 42, None], ids=["str", "list", "int", "none"])
def test_given_data_that_is_not_an_object_when_validated_then_every_field_is_missing(data):
    with pytest.raises(MissingData) as exc_info:
        validate(data)

    assert exc_info.value.details["fields"] == ["subject", "body", "customer_email"]


def test_given_a_payload_without_data_when_validated_then_every_field_is_missing():
    with pytest.raises(MissingData) as exc_info:
        triage.validate(triage.ValidateInput(run_id=RUN_ID, envelope=envelope({"type": "support.ticket"})))

    assert exc_info.value.details["fields"] == ["subject", "body", "customer_email"]


def test_given_a_field_of_the_wrong_type_when_validated_then_missing_data_names_it():
    with pytest.raises(MissingData) as exc_info:
        validate({**GOOD, "subject": 12345, "customer_name": ["not", "a", "name"]})

    assert exc_info.value.details["fields"] == ["customer_name", "subject"]
    assert "invalid" in exc_info.value.message


def test_given_the_missing_data_error_when_crossing_to_step_functions_then_its_message_is_parseable_json():
    with pytest.raises(MissingData) as exc_info:
        validate({})

    body = json.loads(str(exc_info.value))
    assert body["reason"] == "missing_data"
    assert body["fields"] == ["subject", "body", "customer_email"]


# -- classify / fetch account ------------------------------------------------------------------------------


def test_given_a_ticket_when_classified_offline_then_the_keyword_rules_decide_and_it_is_labelled_offline():
    data = triage.TicketInput(run_id=RUN_ID, ticket=triage.Ticket(**GOOD))
    store = RecordingTimeline()

    result = triage.classify(data, offline_runner(store), 0.75)

    assert (result.category, result.decided_by) == ("billing", "offline")
    assert result.decision is not None and result.decision["decision"] == "classify_ticket"
    kinds = [(e.step, e.details["kind"]) for _, e, _ in store.entries]
    assert kinds == [("classify", "decision_context"), ("classify", "decision_attempt"), ("classify", "decision")]
    assert store.entries[1][1].details["provider"] == "offline"


def test_given_no_crm_configured_when_fetching_the_account_then_the_run_continues_partial():
    data = triage.TicketInput(run_id=RUN_ID, ticket=triage.Ticket(**GOOD))

    assert triage.fetch_account(data, None) == triage.AccountContext(found=False, partial=True,
                                                                     reason="crm_not_configured")


def test_given_the_crm_finds_the_account_through_http_when_fetching_then_it_is_in_the_context():
    mock = httpx.MockTransport(lambda r: httpx.Response(200, json={"account_id": "a1", "name": "Ada", "plan": "pro"}))
    data = triage.TicketInput(run_id=RUN_ID, ticket=triage.Ticket(**GOOD))

    context = triage.fetch_account(data, HttpCrm("https://crm.example.com", transport=mock))

    assert context.found is True
    assert context.partial is False
    assert context.account == Account(account_id="a1", name="Ada", plan="pro")


def test_given_the_crm_has_no_account_through_http_when_fetching_then_found_is_false_and_not_partial():
    mock = httpx.MockTransport(lambda r: httpx.Response(404))
    data = triage.TicketInput(run_id=RUN_ID, ticket=triage.Ticket(**GOOD))

    context = triage.fetch_account(data, HttpCrm("https://crm.example.com", transport=mock))

    assert (context.found, context.partial, context.account) == (False, False, None)
    assert [(c.tool, c.outcome) for c in context.tool_calls] == [("crm.find_account", "not_found")]
    assert context.tool_calls[0].latency_ms >= 0


def test_given_the_crm_is_down_through_http_when_fetching_then_crm_unavailable_reaches_step_functions():
    mock = httpx.MockTransport(lambda r: httpx.Response(503))
    data = triage.TicketInput(run_id=RUN_ID, ticket=triage.Ticket(**GOOD))

    with pytest.raises(CrmUnavailable):
        triage.fetch_account(data, HttpCrm("https://crm.example.com", transport=mock))


# -- draft ------------------------------------------------------------------------------------------------


def draft(category: str = "billing", ticket: dict[str, Any] | None = None,
          account: triage.AccountContext | None = None) -> triage.Draft:
    return triage.draft_reply(triage.DraftInput(
        run_id=RUN_ID,
        ticket=triage.Ticket(**(ticket or GOOD)),
        classification=classification(category),
        account=account or triage.AccountContext(found=False),
    ), offline_runner())


def test_given_a_named_customer_when_drafting_then_the_reply_greets_them_and_quotes_the_subject():
    result = draft()

    assert result.subject == "Re: Invoice question"
    assert result.body.startswith("Hi Ada,\n\n")
    assert result.body.endswith("Best regards,\nSupport")
    assert result.template == "billing.not_found.v1"  # the CRM found no account
    assert result.decided_by == "offline"


def test_given_no_customer_name_but_an_account_when_drafting_then_the_account_name_and_plan_are_used():
    ticket = {**GOOD, "customer_name": None}
    account = triage.AccountContext(found=True, account=Account(account_id="a", name="Ada L.", plan="Pro"))

    result = draft("billing", ticket, account)

    assert result.body.startswith("Hi Ada L.,")
    assert "on the Pro plan" in result.body


def test_given_no_name_anywhere_when_drafting_then_the_greeting_is_generic_and_no_plan_is_mentioned():
    result = draft("billing", {**GOOD, "customer_name": None})

    assert result.body.startswith("Hi there,")
    assert "plan" not in result.body


@pytest.mark.parametrize("category", sorted(TEMPLATES))
def test_given_each_category_when_drafting_then_a_template_exists_and_has_no_leftover_placeholder(category):
    result = draft(category)

    assert result.template == template_name(category, "not_found")
    assert "{" not in result.body and "}" not in result.body


# -- guardrail / send -----------------------------------------------------------------------------------


def test_given_a_guardrail_input_when_evaluated_then_the_threshold_is_applied():
    data = triage.GuardrailInput(run_id=RUN_ID, classification=classification("billing", 0.6),
                                 account=triage.AccountContext(found=False),
                                 draft=triage.Draft(subject="s", body="b", template="t"))

    assert triage.guardrail(data, 0.75).requires_approval is True
    assert triage.guardrail(data, 0.5).requires_approval is False


def send_input() -> triage.SendInput:
    return triage.SendInput(run_id=RUN_ID, ticket=triage.Ticket(**GOOD),
                            draft=triage.Draft(subject="Re: x", body="Hi", template="billing.v1"),
                            classification=classification())


def test_given_no_helpdesk_configured_when_sending_then_not_configured_names_the_variable():
    with pytest.raises(NotConfigured) as exc_info:
        triage.send_reply(send_input(), None)

    assert exc_info.value.reason == "helpdesk_not_configured"
    assert "INTERLOCK_HELPDESK_BASE_URL" in exc_info.value.message
    assert exc_info.value.retryable is False


def test_given_the_helpdesk_accepts_when_sending_through_http_then_the_delivery_is_returned():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"reply_id": "rep_1"})

    delivery = triage.send_reply(send_input(), HttpHelpdesk("https://h.example.com",
                                                            transport=httpx.MockTransport(answer)))

    assert (delivery.reply_id, delivery.to) == ("rep_1", "ada@example.com")
    assert [(c.tool, c.outcome) for c in delivery.tool_calls] == [("helpdesk.send_reply", "sent")]
    assert seen[0].headers["Idempotency-Key"] == RUN_ID


def test_given_the_helpdesk_refuses_when_sending_through_http_then_helpdesk_rejected_reaches_step_functions():
    mock = httpx.MockTransport(lambda r: httpx.Response(422, json={"error": "bad address"}))

    with pytest.raises(HelpdeskRejected):
        triage.send_reply(send_input(), HttpHelpdesk("https://h.example.com", transport=mock))


# -- record_outcome ---------------------------------------------------------------------------------------


def lambda_error(name: str, message: str) -> dict[str, str]:
    return {"Error": name, "Cause": json.dumps({"errorMessage": message, "errorType": name})}


def outcome(store: RecordingTimeline, **fields: Any) -> dict[str, Any]:
    from interlock.kit.context import Services, StepContext

    ctx = StepContext(run_id=RUN_ID, attempt=fields.get("attempt", 0), workflow="support_triage", step="record",
                      deadline=None, services=Services(timeline=store))  # type: ignore[arg-type]
    return outcomes.record(outcomes.OutcomeInput(run_id=RUN_ID, **fields), ctx)


def test_given_a_failed_step_when_recorded_then_the_run_fails_with_the_steps_reason():
    store = RecordingTimeline()
    exc = MissingData("the ticket is missing subject", step="validate", fields=["subject"])

    result = outcome(store, kind="failed", error=lambda_error("MissingData", str(exc)), attempt=2)

    assert result == {"outcome": "failed", "reason": "missing_data"}
    [(run_id, entry, _)] = store.entries
    assert run_id == RUN_ID
    assert entry.state is EntryState.FAILED
    assert entry.step == "outcome"
    assert entry.attempt == 2
    assert entry.details == {"outcome": "failed", "reason": "missing_data", "error": "MissingData",
                             "step": "validate", "message": "the ticket is missing subject", "fields": ["subject"]}


def test_given_a_partial_fetch_when_recorded_then_a_processing_entry_notes_it_and_the_context_is_partial():
    store = RecordingTimeline()
    exc = CrmUnavailable("CRM answered 503", step="fetch_account", status=503)

    result = outcome(store, kind="partial", continued_without="fetch_account",
                     error=lambda_error("CrmUnavailable", str(exc)))

    assert result == {"found": False, "partial": True, "reason": "crm_unavailable"}
    # the result feeds DraftReply's `account` input as is
    assert triage.AccountContext.model_validate(result).partial is True
    [(_, entry, _)] = store.entries
    assert entry.state is EntryState.PROCESSING
    assert entry.step == "fetch_account"
    assert entry.details["partial"] is True
    assert entry.details["reason"] == "crm_unavailable"
    assert entry.details["continued_without"] == "fetch_account"


def test_given_a_fetch_that_timed_out_when_recorded_partial_then_the_reason_is_timeout():
    store = RecordingTimeline()

    result = outcome(store, kind="partial", continued_without="fetch_account",
                     error={"Error": "States.Timeout", "Cause": ""})

    assert result["reason"] == "timeout"


def test_given_an_approver_rejection_when_recorded_then_the_run_is_rejected_with_the_approval_attached():
    store = RecordingTimeline()
    approval = {"decision": "rejected", "decided_at": "2024-01-01T00:00:00+00:00", "via": "email_link"}

    result = outcome(store, kind="rejected", approval=approval)

    assert result == {"outcome": "rejected", "reason": "approver_rejected"}
    [(_, entry, _)] = store.entries
    assert entry.state is EntryState.REJECTED
    assert entry.details == {"outcome": "rejected", "reason": "approver_rejected", "approval": approval}


def test_given_the_approval_task_timed_out_when_recorded_escalated_then_the_reason_is_approval_timed_out():
    store = RecordingTimeline()

    result = outcome(store, kind="escalated", error={"Error": "States.Timeout", "Cause": ""})

    assert result == {"outcome": "escalated", "reason": "approval_timed_out"}
    assert store.states == ["escalated"]


def test_given_an_escalation_for_another_reason_when_recorded_then_that_reason_is_kept():
    store = RecordingTimeline()

    result = outcome(store, kind="escalated", error={"Error": "States.TaskFailed", "Cause": "x"})

    assert result["reason"] == "task_failed"


def test_given_no_error_at_all_when_recorded_failed_then_the_reason_is_unknown_error():
    store = RecordingTimeline()

    assert outcome(store, kind="failed")["reason"] == "unknown_error"


@pytest.mark.parametrize("kind", ["completed", "", "FAILED", "failed; drop"])
def test_given_an_unknown_outcome_kind_when_parsed_then_it_is_refused(kind):
    with pytest.raises(ValidationError):
        outcomes.OutcomeInput(run_id=RUN_ID, kind=kind)


# -- outsider text in the draft: cleaned, declared, checked ------------------------------------------------------

PHISHING_NAME = ("Dear customer, your account is suspended.\nConfirm your card at http://evil.example/verify "
                 "within 24 hours to avoid a $50 fee.")


def guard(result: triage.Draft, cls: Classification | None = None) -> list[str]:
    return triage.guardrail(triage.GuardrailInput(run_id=RUN_ID, classification=cls or classification(),
                                                  account=triage.AccountContext(found=False), draft=result),
                            0.75).reasons


def test_given_a_paragraph_with_a_link_as_customer_name_when_drafting_then_the_greeting_leaves_it_out():
    result = draft("billing", {**GOOD, "customer_name": PHISHING_NAME})

    assert result.body.startswith("Hi there,\n\n")
    assert "evil" not in result.body and "suspended" not in result.body
    assert [p.part for p in result.outsider] == ["subject"]
    assert guard(result) == []


def test_given_a_crm_account_name_that_is_not_a_name_when_drafting_then_it_is_left_out_too():
    account = triage.AccountContext(found=True, account=Account(account_id="a", name="Visit www.evil.example",
                                                                plan="Pro\nhttp://evil.example"))

    result = draft("billing", {**GOOD, "customer_name": None}, account)

    assert result.body.startswith("Hi there,")
    assert "evil" not in result.body and "plan" not in result.body


def test_given_a_clean_name_and_plan_when_drafting_then_each_is_an_outsider_part_with_its_source():
    account = triage.AccountContext(found=True, account=Account(account_id="a", name="Ada L.", plan="Pro"))

    result = draft("billing", {**GOOD, "customer_name": None}, account)

    assert [(p.part, p.source, p.text) for p in result.outsider] == [
        ("subject", "customer", "Invoice question"), ("name", "crm", "Ada L."), ("plan", "crm", "Pro")]


def test_given_a_subject_with_line_breaks_when_drafting_then_the_reply_subject_is_one_bounded_line():
    result = draft("billing", {**GOOD, "subject": "Invoice\r\n\r\nBcc: x@evil.example\x1b[2J" + "y" * 300})

    assert result.subject.startswith("Re: Invoice Bcc: x@evil.example [2J")
    assert "\n" not in result.subject and "\r" not in result.subject and "\x1b" not in result.subject
    assert len(result.subject) <= 4 + 120
    assert guard(result) == ["outsider_text:subject:link"]


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("subject", "Pay $20 at http://evil.example", "link"), ("subject", "Pay $20 now", "amount"),
    ("customer_name", "Refund", "commitment")])
def test_given_outsider_text_with_a_link_amount_or_commitment_when_drafted_then_a_person_decides(
        field, value, rule):
    result = draft("billing", {**GOOD, field: value})

    part = "name" if field == "customer_name" else "subject"
    assert f"outsider_text:{part}:{rule}" in guard(result)


@pytest.mark.parametrize(("account", "says", "never", "template"), [
    (triage.AccountContext(found=True, account=Account(account_id="a", name="Ada", plan="Pro")),
     "We've looked at your account on the Pro plan", "couldn't", "billing.v1"),
    (triage.AccountContext(found=False), "We couldn't find an account for this email address", "looked at",
     "billing.not_found.v1"),
    (triage.AccountContext(found=False, partial=True, reason="crm_unavailable"),
     "will look up your account", "looked at", "billing.unavailable.v1"),
    (triage.AccountContext(found=False, partial=True, reason="crm_not_configured"),
     "will look up your account", "looked at", "billing.unavailable.v1"),
])
def test_given_each_account_lookup_outcome_when_drafting_then_the_template_says_what_happened(
        account, says, never, template):
    result = draft("billing", GOOD, account)

    assert says in result.body and never not in result.body
    assert result.template == template


# -- every risk signal ------------------------------------------------------------------------------------------


def test_given_the_refund_request_in_billing_words_when_classified_offline_then_a_person_decides():
    ticket = triage.Ticket(subject="Refund request for invoice 1042", customer_email="ada@example.com",
                           body="I was charged twice last month. Please refund the duplicate charge.")

    cls = triage.classify(triage.TicketInput(run_id=RUN_ID, ticket=ticket), offline_runner(), 0.75)

    assert (cls.category, cls.confidence) == ("billing", 0.95)
    assert "refund" in cls.secondary_categories
    assert "risk_signal:refund" in guard(draft("billing", ticket.model_dump()), cls)
