"""The triage workflow's AI decisions: classify and draft as decisions, escalations reaching the guardrail."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from interlock.ai.decision import Outcome
from interlock.ai.providers import ModelCall, ModelReply, OfflineProvider, ProviderFailure
from interlock.ai.runner import DecisionRunner
from interlock.connectors.crm import Account
from interlock.local.env import function_environment, setting
from interlock.local.runtime import ai_line
from interlock.models import run_id_for
from interlock.outgoing import OutsiderPart
from interlock.settings import AiSettings
from interlock.topology import TOPOLOGY, DeploymentSettings
from interlock.workflows.support_triage import triage
from interlock.workflows.support_triage.approval import reason_text
from interlock.workflows.support_triage.decisions import CLASSIFY_TICKET, DRAFT_REPLY
from interlock.workflows.support_triage.guardrail import evaluate
from interlock.workflows.support_triage.rules import TEMPLATES, Classification

from unit.fakes import RecordingTimeline, offline_runner

RUN_ID = run_id_for("form:msg_ai")
TEMPLATE_BILLING = TEMPLATES["billing"]
TICKET = triage.Ticket(subject="Invoice question", body="Where is my invoice? Call me on +44 20 7946 0958.",
                       customer_email="ada@example.com", customer_name="Ada",
                       thread=[triage.Turn(author="customer", text="First message about the invoice", at="t1"),
                               triage.Turn(author="agent", text="We are looking into it", at="t2")])


class Scripted:
    """A provider answering from a list: a JSON text, or a ProviderFailure to raise."""

    name = "openai"

    def __init__(self, *replies: str | ProviderFailure) -> None:
        self.replies = list(replies)
        self.calls: list[ModelCall] = []

    def complete(self, call: ModelCall) -> ModelReply:
        self.calls.append(call)
        reply = self.replies.pop(0)
        if isinstance(reply, ProviderFailure):
            raise reply
        return ModelReply(text=reply, refusal=None, tokens_in=100, tokens_out=20, model=call.model)


def runner(provider: Any, **settings: Any) -> tuple[DecisionRunner, RecordingTimeline]:
    store = RecordingTimeline()
    return DecisionRunner(provider, store, AiSettings(**settings), sleep=lambda s: None), store


def failing() -> ProviderFailure:
    return ProviderFailure(Outcome.ERROR, "the endpoint answered 500", status=500)


def classification(**extra: Any) -> Classification:
    return Classification(**{"category": "billing", "confidence": 0.9, "summary": "s", "decided_by": "openai:m",
                             **extra})


def draft_input(cls: Classification) -> triage.DraftInput:
    return triage.DraftInput(run_id=RUN_ID, ticket=TICKET, classification=cls,
                             account=triage.AccountContext(found=True, account=Account(account_id="a1", name="Ada L",
                                                                                        plan="Pro")))


# -- classify ------------------------------------------------------------------------------------------------


def test_given_a_model_answer_when_classifying_then_the_classification_is_the_models_and_says_who_decided():
    provider = Scripted('{"category": "billing", "confidence": 0.93, "summary": "Invoice missing", '
                        '"reasoning": "asks for an invoice"}')
    run, _ = runner(provider)

    result = triage.classify(triage.TicketInput(run_id=RUN_ID, ticket=TICKET), run, 0.75)

    assert (result.category, result.confidence, result.summary) == ("billing", 0.93, "Invoice missing")
    assert result.decided_by == "openai:gpt-4.1-mini"
    assert result.decision is not None and result.decision["escalation"] is None


REFUND_IN_BILLING_WORDS = triage.Ticket(
    subject="Refund request for invoice 1042", customer_email="ada@example.com",
    body="I was charged twice last month. Please refund the duplicate charge.")


def guard(cls: Classification) -> list[str]:
    return evaluate(cls, 0.75, None, []).reasons


def test_given_a_model_that_reports_a_secondary_refund_when_classifying_then_a_person_decides():
    # The ticket has no refund keyword: only the model's secondary category tells.
    ticket = triage.Ticket(subject="Invoice 1042", body="I was charged twice. I want my money returned.",
                           customer_email="ada@example.com")
    provider = Scripted('{"category": "billing", "confidence": 0.95, "summary": "Charged twice", '
                        '"secondary_categories": ["refund"], "reasoning": "asks for the money back"}')

    result = triage.classify(triage.TicketInput(run_id=RUN_ID, ticket=ticket), runner(provider)[0], 0.75)

    assert (result.category, result.secondary_categories) == ("billing", ["refund"])
    assert guard(result) == ["risk_signal:refund"]


def test_given_a_model_that_reports_no_secondary_category_when_the_ticket_asks_for_a_refund_then_a_person_decides():
    # The keyword rules read the ticket whoever decided: a model that misses (or is steered past) the refund
    # does not send it.
    provider = Scripted('{"category": "billing", "confidence": 0.95, "summary": "Charged twice", '
                        '"secondary_categories": [], "reasoning": "duplicate charge"}')

    result = triage.classify(triage.TicketInput(run_id=RUN_ID, ticket=REFUND_IN_BILLING_WORDS),
                             runner(provider)[0], 0.75)

    assert "refund" in result.secondary_categories
    assert guard(result) == ["risk_signal:refund"]


def test_given_the_classify_prompt_when_loaded_then_it_asks_for_secondary_categories_and_the_schema_has_them():
    from interlock.ai.prompts import load_prompt
    from interlock.ai.runner import prompt_dir

    prompt = load_prompt(CLASSIFY_TICKET.prompt, directory=prompt_dir(CLASSIFY_TICKET))

    assert prompt.version == "v2" and "secondary_categories" in prompt.text
    assert "secondary_categories" in CLASSIFY_TICKET.output.model_json_schema()["properties"]


def test_given_a_ticket_with_a_thread_when_classifying_then_the_turns_are_in_the_session_layer_and_the_email_is_not():
    provider = Scripted('{"category": "billing", "confidence": 0.9, "summary": "s", "reasoning": "r"}')
    run, _ = runner(provider)

    triage.classify(triage.TicketInput(run_id=RUN_ID, ticket=TICKET), run, 0.75)

    prompt = "\n".join(m["content"] for m in provider.calls[0].messages)
    assert "customer: First message about the invoice" in prompt
    assert prompt.index("First message") < prompt.index("We are looking into it") < prompt.index("# The request")
    assert "ada@example.com" not in prompt  # no decision needs the customer's address


def test_given_every_tier_failing_when_classifying_then_category_other_at_zero_confidence_decided_by_a_human():
    run, _ = runner(Scripted(failing(), failing(), failing(), failing()))

    result = triage.classify(triage.TicketInput(run_id=RUN_ID, ticket=TICKET), run, 0.75)

    assert (result.category, result.confidence, result.decided_by) == ("other", 0.0, "human")
    assert result.decision is not None and result.decision["escalation"] == "all_tiers_failed"
    assert result.decision["attempts"] == 4  # two tiers, two tries each


def test_given_the_guardrail_threshold_when_classifying_then_it_is_the_decisions_threshold():
    answer = '{"category": "billing", "confidence": 0.8, "summary": "s", "reasoning": "r"}'

    strict = triage.classify(triage.TicketInput(run_id=RUN_ID, ticket=TICKET), runner(Scripted(answer))[0], 0.85)
    lenient = triage.classify(triage.TicketInput(run_id=RUN_ID, ticket=TICKET), runner(Scripted(answer))[0], 0.75)

    assert strict.decision is not None and strict.decision["escalation"] == "low_confidence"
    assert lenient.decision is not None and lenient.decision["escalation"] is None


# -- draft ------------------------------------------------------------------------------------------------------


def test_given_a_model_draft_when_drafting_then_code_adds_the_greeting_and_sign_off_around_the_models_text():
    provider = Scripted('{"text": "Your invoice is on its way.", "confidence": 0.88, "reasoning": "r"}')
    run, _ = runner(provider)

    result = triage.draft_reply(draft_input(classification()), run)

    assert result.body == "Hi Ada,\n\nYour invoice is on its way.\n\nBest regards,\nSupport"
    assert (result.decided_by, result.confidence, result.template) == ("openai:gpt-4.1-mini", 0.88, None)
    request = provider.calls[0].request
    assert request["account"] == {"name": "Ada L", "plan": "Pro", "tier": None, "open_tickets": None,
                                  "lifetime_value": None}
    assert request["classification"] == {"category": "billing", "summary": "s"}


def test_given_a_classification_a_human_must_make_when_drafting_then_no_model_is_called_and_the_template_is_used():
    provider = Scripted()
    run, store = runner(provider)
    cls = classification(category="other", confidence=0.0, decided_by="human",
                         decision={"decision": "classify_ticket", "escalation": "all_tiers_failed"})

    result = triage.draft_reply(draft_input(cls), run)

    assert provider.calls == [] and store.entries == []
    assert result.template == "other.v1" and result.decided_by == "template"
    assert "We've received your message" in result.body


def test_given_no_model_could_draft_when_drafting_then_the_template_draft_carries_the_escalation():
    run, _ = runner(Scripted(failing(), failing(), failing(), failing()))

    result = triage.draft_reply(draft_input(classification()), run)

    assert result.template == "billing.v1" and "on the Pro plan" in result.body
    assert result.decision is not None and result.decision["escalation"] == "all_tiers_failed"


def test_given_the_offline_provider_when_drafting_then_the_template_text_is_the_decision_labelled_offline():
    result = triage.draft_reply(draft_input(classification()), offline_runner())

    assert (result.decided_by, result.template, result.confidence) == ("offline", "billing.v1", 0.9)
    assert "on the Pro plan" in result.body


# -- guardrail and the approver's words ----------------------------------------------------------------------


def test_given_a_drafting_escalation_when_guarded_then_a_person_must_approve_and_the_reason_names_it():
    result = evaluate(classification(), 0.75, {"decision": "draft_reply", "escalation": "low_confidence"})

    assert result.requires_approval is True
    assert result.reasons == ["ai_escalated:draft_reply:low_confidence"]


def test_given_a_failed_classification_when_guarded_then_both_low_confidence_and_the_escalation_are_reasons():
    cls = classification(category="other", confidence=0.0, decided_by="human",
                         decision={"decision": "classify_ticket", "escalation": "budget_exceeded"})

    result = evaluate(cls, 0.75, None)

    assert result.reasons == ["low_confidence:0.00<0.75", "ai_escalated:classify_ticket:budget_exceeded"]


def test_given_a_low_confidence_classification_when_guarded_then_it_is_said_once():
    cls = classification(confidence=0.5, decision={"decision": "classify_ticket", "escalation": "low_confidence"})

    assert evaluate(cls, 0.75).reasons == ["low_confidence:0.50<0.75"]


def test_given_a_confident_decision_and_a_safe_category_when_guarded_then_no_person_is_needed():
    assert evaluate(classification(decision={"decision": "classify_ticket", "escalation": None}), 0.75,
                    {"decision": "draft_reply", "escalation": None}).requires_approval is False


@pytest.mark.parametrize(("code", "words"), [
    ("ai_escalated:classify_ticket:all_tiers_failed", "the ticket's category was not decided by the AI: every "
                                                      "model tier failed"),
    ("ai_escalated:draft_reply:budget_exceeded", "the reply was not decided by the AI: the run's token or cost"),
    ("ai_escalated:draft_reply:no_time_left", "the step ran out of time"),
])
def test_given_an_escalation_reason_when_shown_to_the_approver_then_it_is_in_words(code, words):
    assert reason_text(code).startswith(words) or words in reason_text(code)


# -- the offline decision points ---------------------------------------------------------------------------------


def test_given_the_offline_provider_when_classifying_then_the_keyword_rules_are_the_answer_and_say_so():
    answer = CLASSIFY_TICKET.offline({"ticket": {"subject": "I was hacked", "body": "phishing email"}})

    assert (answer.category, answer.reasoning.split(":")[0]) == ("security", "keywords.v1")


def test_given_an_unknown_category_when_drafting_offline_then_the_generic_template_answers():
    answer = DRAFT_REPLY.offline({"classification": {"category": "nonsense"}})

    assert answer.text.startswith("Thanks for getting in touch")


def test_given_a_decision_that_has_no_offline_answer_when_the_offline_provider_is_asked_then_it_fails_cleanly():
    point = dataclasses.replace(CLASSIFY_TICKET, offline=None)  # type: ignore[arg-type]
    run, store = runner(OfflineProvider())

    decision = run.decide(point, RUN_ID, {"ticket": {"subject": "s", "body": "b"}})

    assert decision.escalation is not None and decision.escalation.value == "all_tiers_failed"
    assert [e.details.get("outcome") for _, e, _ in store.entries if e.details["kind"] == "decision_attempt"] == \
        ["error"]


# -- settings, locally and deployed ---------------------------------------------------------------------------


def test_given_the_deployment_defaults_then_they_are_the_ai_settings_defaults():
    deployed, defaults = DeploymentSettings(), AiSettings()

    for name in ("ai_provider", "ai_model_tiers", "ai_retries_per_tier", "ai_call_timeout_seconds",
                 "ai_run_max_tokens", "ai_run_max_cost_usd", "ai_prices"):
        assert str(getattr(defaults, name)) == deployed.get(name) or \
            float(getattr(defaults, name)) == float(deployed.get(name)), name


def test_given_openai_base_url_in_a_laptops_environment_then_it_is_the_setting_and_unset_when_empty():
    from interlock.local.env import Deployed

    deployed = Deployed(table_name="t", api_url="http://127.0.0.1:8000", secret_prefix="p/",
                        workflow_tables={t.name: f"t-{t.name}" for t in TOPOLOGY.workflow_tables})
    classify = TOPOLOGY.function("job_decide")

    with_url = function_environment(classify, deployed, {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    without = function_environment(classify, deployed, {})

    assert setting("openai_base_url", "", {"OPENAI_BASE_URL": "http://x/v1"}) == "http://x/v1"
    assert with_url["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
    assert "OPENAI_BASE_URL" not in without  # the SDK takes an empty one for a URL
    assert without["INTERLOCK_AI_API_KEY_SECRET"] == ""  # a laptop's key is OPENAI_API_KEY


def test_given_the_local_banner_then_it_says_who_decides_and_never_shows_the_key():
    assert ai_line({}).startswith("offline provider (no OPENAI_API_KEY)")
    assert ai_line({"INTERLOCK_AI_PROVIDER": "offline", "OPENAI_API_KEY": "sk-x"}).startswith("offline provider")
    line = ai_line({"OPENAI_API_KEY": "sk-secret-value", "OPENAI_BASE_URL": "http://user:pw@127.0.0.1:4000/v1?k=1"})
    assert line == "OpenAI-compatible endpoint http://127.0.0.1:4000/v1, model tiers gpt-4.1-mini,gpt-4.1-nano"
    assert "not configured" in ai_line({"INTERLOCK_AI_PROVIDER": "openai"})


def test_given_an_escalated_decision_when_the_approval_page_shows_it_then_who_tried_and_why_is_on_it():
    from interlock.approval_pages import pending
    from interlock.approvals import ApprovalRecord
    from interlock.workflows.support_triage.approval import view

    ctx = {"ticket": {"subject": "Invoice", "body": "b", "customer_email": "ada@example.com"},
           "classification": {"category": "billing", "confidence": 0.9, "decided_by": "openai:gpt-4.1-mini"},
           "draft": {"body": "Hi", "decided_by": "template",
                     "decision": {"decision": "draft_reply", "escalation": "all_tiers_failed", "attempts": 4,
                                  "last_errors": ["the endpoint answered 500"]}},
           "guardrail": {"reasons": ["ai_escalated:draft_reply:all_tiers_failed"]}, "account": {}}
    record = ApprovalRecord.model_validate({"token_hash": "h", "run_id": RUN_ID, "task_token": "t",
                                            "status": "pending", "created_at": 0, "deadline": 4e9,
                                            "context": {"view": view(ctx).model_dump(mode="json")}})

    page = pending(record)

    assert "openai:gpt-4.1-mini" in page
    assert "template (every model tier failed (the attempts are on the run&#x27;s timeline); 4 attempt(s); " \
           "last: the endpoint answered 500)" in page
    assert "the reply was not decided by the AI" in page


def test_given_a_request_that_cannot_fit_its_budget_when_deciding_then_a_person_decides_and_nothing_is_called():
    from interlock.ai.context import Budgets, ContextBuilder

    provider = Scripted()
    store = RecordingTimeline()
    run = DecisionRunner(provider, store, AiSettings(), builder=ContextBuilder(Budgets(request=5)))

    decision = run.decide(CLASSIFY_TICKET, RUN_ID, {"ticket": {"a": "x", "b": "y", "c": "z"}})

    assert decision.output is None and decision.escalation is not None
    assert decision.escalation.value == "context_too_large"
    assert decision.last_errors and "request layer" in decision.last_errors[0]
    assert provider.calls == []
    assert [e.details["kind"] for _, e, _ in store.entries] == ["decision"]


def test_given_a_retry_after_longer_than_a_call_when_rate_limited_then_no_wait_and_the_next_tier_answers():
    waits: list[float] = []
    provider = Scripted(ProviderFailure(Outcome.RATE_LIMITED, "rate limited (429)", retry_after=3600.0),
                        '{"category": "billing", "confidence": 0.9, "summary": "s", "reasoning": "r"}')
    run = DecisionRunner(provider, RecordingTimeline(), AiSettings(), sleep=waits.append)

    decision = run.decide(CLASSIFY_TICKET, RUN_ID, {"ticket": {"subject": "s", "body": "b"}})

    assert waits == [] and decision.tier == 2


def test_given_a_runs_history_when_it_becomes_the_session_layer_then_only_codes_and_outcomes_ride_along():
    from datetime import UTC, datetime

    from interlock.ai.runner import run_history
    from interlock.models import EntryState, RunStatus, RunView, TimelineEntry

    at = datetime(2026, 1, 1, tzinfo=UTC)
    view = RunView(run_id=RUN_ID, workflow="support_triage", status=RunStatus.PROCESSING, created_at=at,
                   updated_at=at, timeline=[
                       TimelineEntry(state=EntryState.RECEIVED, step="ingest", at=at,
                                     details={"event_source": "form", "event_type": "support.ticket"}),
                       TimelineEntry(state=EntryState.PROCESSING, step="validate", at=at,
                                     details={**TICKET.model_dump(), "customer_email": "ada@example.com"}),
                       TimelineEntry(state=EntryState.PROCESSING, step="classify", at=at,
                                     details={"category": "billing", "confidence": 0.9, "summary": "Charged twice"}),
                   ])

    lines = [item.render() for item in run_history(view)]

    assert lines == ["[2026-01-01T00:00:00+00:00] run: ingest received (event_source=form, event_type=support.ticket)",
                     "[2026-01-01T00:00:00+00:00] run: validate processing",
                     "[2026-01-01T00:00:00+00:00] run: classify processing (category=billing, confidence=0.9)"]


def test_given_an_endpoint_ignoring_the_output_limit_when_recorded_then_the_stored_answer_is_capped():
    from interlock.ai.runner import MAX_STORED_OUTPUT_CHARS

    huge = '{"category": "billing", "summary": "' + "x" * 100_000 + '"}'
    run, store = runner(Scripted(huge, '{"category": "billing", "confidence": 0.9, "summary": "s", "reasoning": "r"}'))

    decision = run.decide(CLASSIFY_TICKET, RUN_ID, {"ticket": {"subject": "s", "body": "b"}})

    first = next(e.details for _, e, _ in store.entries if e.details["kind"] == "decision_attempt")
    assert first["outcome"] == "invalid_output"
    assert len(first["output"]) < MAX_STORED_OUTPUT_CHARS + 100
    assert first["output"].endswith("more characters not stored]")
    assert decision.output is not None


def test_given_a_503_naming_a_retry_after_when_deciding_then_the_runner_waits_that_long_before_the_next_try():
    waits: list[float] = []
    provider = Scripted(ProviderFailure(Outcome.ERROR, "the endpoint answered 503", status=503, retry_after=2.0),
                        '{"category": "billing", "confidence": 0.9, "summary": "s", "reasoning": "r"}')
    run = DecisionRunner(provider, RecordingTimeline(), AiSettings(), sleep=waits.append)

    decision = run.decide(CLASSIFY_TICKET, RUN_ID, {"ticket": {"subject": "s", "body": "b"}})

    assert waits == [2.0] and decision.tier == 1


def test_given_a_key_stored_as_a_json_string_then_the_quotes_are_not_part_of_it():
    from interlock.ai.choice import parse_key

    assert parse_key('"sk-abc"') == "sk-abc"
    assert parse_key('"  "') is None
    assert parse_key('"sk-abc') is None


# -- what a model-written reply may not say without a person ---------------------------------------------------


@pytest.mark.parametrize(("text", "findings"), [
    ("The duplicate will be returned to your card within five business days.", ["outsider_text:reply:commitment"]),
    ("We will refund the charge.", ["outsider_text:reply:commitment"]),
    ("You get $20 off next month.", ["outsider_text:reply:amount"]),
    ("We credited 10 EUR to your account.", ["outsider_text:reply:amount", "outsider_text:reply:commitment"]),
    ("Reset it at https://example.com/reset or write to help@example.com.", ["outsider_text:reply:link"]),
    ("We'll be back to you by Monday.", ["outsider_text:reply:commitment"]),
    ("We have logged the problem and our engineers are looking into it.", []),
    ("Please use the 'Forgot password' link on the sign-in page.", []),
])
def test_given_a_model_written_reply_when_guarded_then_amounts_links_and_commitments_need_a_person(text, findings):
    result = evaluate(classification(), 0.75, {"decision": "draft_reply", "escalation": None},
                      [OutsiderPart(part="reply", source="model", text=text)])

    assert result.reasons == findings
    assert result.requires_approval is bool(findings)


def test_given_a_template_draft_with_a_timeframe_when_guarded_then_the_vetted_template_is_not_checked():
    billing = triage.Draft(subject="Re: x", body="Hi", template="billing.v1", decided_by="offline")
    data = triage.GuardrailInput(run_id=RUN_ID, classification=classification(),
                                 account=triage.AccountContext(found=False), draft=billing)

    assert "within one business day" in TEMPLATE_BILLING
    assert triage.guardrail(data, 0.75).requires_approval is False


def test_given_a_model_draft_when_drafting_then_its_own_text_is_kept_for_the_guardrail():
    provider = Scripted('{"text": "We will refund you.", "confidence": 0.9, "reasoning": "r"}')

    result = triage.draft_reply(draft_input(classification()), runner(provider)[0])
    data = triage.GuardrailInput(run_id=RUN_ID, classification=classification(),
                                 account=triage.AccountContext(found=False), draft=result)

    assert OutsiderPart(part="reply", source="model", text="We will refund you.") in result.outsider
    assert triage.guardrail(data, 0.75).reasons == ["outsider_text:reply:commitment"]


# -- the runner's edges ---------------------------------------------------------------------------------------------


class Broken:
    name = "openai"

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, call: ModelCall) -> ModelReply:
        self.calls += 1
        if self.calls == 1:
            raise TypeError("an SDK bug")
        return ModelReply(text='{"category": "billing", "confidence": 0.9, "summary": "s", "reasoning": "r"}',
                          refusal=None, tokens_in=10, tokens_out=5, model=call.model)


def test_given_a_provider_that_raises_unexpectedly_when_deciding_then_it_is_an_error_and_the_next_tier_answers():
    run, store = runner(Broken())

    decision = run.decide(CLASSIFY_TICKET, RUN_ID, {"ticket": {"subject": "s", "body": "b"}})

    attempts = [e.details for _, e, _ in store.entries if e.details["kind"] == "decision_attempt"]
    assert [(a["tier"], a["outcome"], a["validation_errors"]) for a in attempts] == [
        (1, "error", ["the provider failed: TypeError"]), (2, "ok", [])]
    assert decision.tier == 2


def test_given_a_validation_error_quoting_a_huge_answer_when_recorded_then_each_error_is_capped():
    huge_tag = "x" * 50_000
    provider = Scripted(f'{{"category": "{huge_tag}", "confidence": 0.9, "summary": "s", "reasoning": "r"}}',
                        '{"category": "billing", "confidence": 0.9, "summary": "s", "reasoning": "r"}')
    run, store = runner(provider)

    run.decide(CLASSIFY_TICKET, RUN_ID, {"ticket": {"subject": "s", "body": "b"}})

    first = next(e.details for _, e, _ in store.entries if e.details["kind"] == "decision_attempt")
    assert first["outcome"] == "invalid_output"
    assert all(len(err) <= 300 for err in first["validation_errors"])


def test_given_a_next_step_decision_without_an_allowlist_then_it_cannot_be_declared():
    from interlock.ai.actions import Action
    from interlock.ai.decision import DecisionOutput, DecisionPoint

    class NextStep(DecisionOutput):
        action: Action

    with pytest.raises(ValueError, match="allows none"):
        DecisionPoint(name="next_step", prompt="classify_ticket", policy="support_triage", output=NextStep,
                      min_confidence=0.5, offline=lambda request: None,  # type: ignore[arg-type,return-value]
                      folder=CLASSIFY_TICKET.folder)


def test_given_earlier_turns_and_the_runs_history_when_the_session_is_over_budget_then_the_oldest_turns_go_first():
    from datetime import UTC, datetime

    from interlock.ai.context import Budgets, ContextBuilder
    from interlock.models import EntryState, RunStatus, RunView, TimelineEntry

    at = datetime(2026, 1, 2, tzinfo=UTC)
    view = RunView(run_id=RUN_ID, workflow="support_triage", status=RunStatus.PROCESSING, created_at=at,
                   updated_at=at, timeline=[TimelineEntry(state=EntryState.RECEIVED, step="ingest", at=at,
                                                          details={"event_source": "form"})])

    class History(RecordingTimeline):
        def get(self, run_id: str) -> RunView | None:
            return view

    provider = Scripted('{"category": "billing", "confidence": 0.9, "summary": "s", "reasoning": "r"}')
    run = DecisionRunner(provider, History(), AiSettings(), builder=ContextBuilder(Budgets(session=60)))
    long_first = TICKET.model_copy(update={"thread": [
        triage.Turn(author="customer", text="First message about the invoice. " + "More detail. " * 15, at="t1"),
        TICKET.thread[1]]})

    triage.classify(triage.TicketInput(run_id=RUN_ID, ticket=long_first), run, 0.75)

    prompt = provider.calls[0].messages[1]["content"]
    assert "First message about the invoice" not in prompt  # the oldest turn was trimmed
    assert prompt.index("We are looking into it") < prompt.index("ingest received")  # turns came before the run


def test_given_a_model_with_no_price_when_deciding_twice_then_it_is_said_once(caplog):
    from interlock.ai import runner as runner_module

    runner_module._UNPRICED.discard("my-deployment")
    answer = '{"category": "billing", "confidence": 0.9, "summary": "s", "reasoning": "r"}'
    run, _ = runner(Scripted(answer, answer), ai_model_tiers="my-deployment")

    first = run.decide(CLASSIFY_TICKET, RUN_ID, {"ticket": {"subject": "s", "body": "b"}})
    run.decide(CLASSIFY_TICKET, RUN_ID, {"ticket": {"subject": "s", "body": "b"}})

    assert first.cost_usd == 0
    assert [r.getMessage() for r in caplog.records].count(
        "no price for this model: its cost is not estimated and only the token ceiling applies "
        "(INTERLOCK_AI_PRICES adds one)") == 1


def test_given_a_thread_that_is_not_a_list_of_turns_when_validated_then_missing_data_names_it():
    from datetime import UTC, datetime

    from interlock.errors import MissingData
    from interlock.models import Envelope

    data = {"subject": "s", "body": "b", "customer_email": "ada@example.com", "thread": [{"text": "no author"}]}
    envelope = Envelope(event_id="m", source="form", type="support.ticket", payload_version="v1",
                        received_at=datetime(2026, 1, 1, tzinfo=UTC), dedupe_key="form:m", run_id=RUN_ID,
                        payload={"type": "support.ticket", "data": data})

    with pytest.raises(MissingData) as info:
        triage.validate(triage.ValidateInput(run_id=RUN_ID, envelope=envelope))

    assert info.value.details["fields"] == ["thread"]
