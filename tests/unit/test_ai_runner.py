"""The AI decision runner through the real ``openai`` SDK, against a fake OpenAI endpoint on a loopback socket.

Every scenario asserts what an operator would look at afterwards: the run's timeline (context, one entry per
attempt, the decision) and the Powertools metrics. Nothing here reaches the network: the SDK is pointed at
``fake_openai.FakeOpenAI`` by base URL, and the only connections allowed are to the loopback address.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from fake_openai import FakeOpenAI, Reply, completion
from interlock.ai.actions import Action, CreateTask
from interlock.ai.decision import Decision, DecisionOutput, DecisionPoint, Escalation
from interlock.ai.openai_provider import OpenAIProvider
from interlock.ai.prompts import load_policy, load_prompt
from interlock.ai.runner import DEFAULT_RATE_LIMIT_PAUSE, DecisionRunner, policy_dir, prompt_dir
from interlock.models import EntryState, RunStatus, RunView, TimelineEntry, run_id_for
from interlock.observability import logger, metrics
from interlock.settings import AiSettings
from interlock.workflows.support_triage.decisions import CLASSIFY_TICKET, TicketClassificationOutput

from unit.fakes import RecordingTimeline

RUN_ID = run_id_for("form:msg_ai_runner")
KEY = "sk-test-SECRET-0123456789abcdef"
MINI, NANO = "gpt-4.1-mini", "gpt-4.1-nano"
REQUEST = {"ticket": {"subject": "Invoice question", "body": "Where is my invoice for March?"}}
GOOD = {"category": "billing", "confidence": 0.92, "summary": "Customer asks where the March invoice is.",
        "reasoning": "The ticket is about an invoice."}
# Reply.answer's default usage (120 in, 30 out) at the list prices of the two default tiers.
MINI_COST = (120 * 0.40 + 30 * 1.60) / 1_000_000
NANO_COST = (120 * 0.10 + 30 * 0.40) / 1_000_000


# -- the network: loopback only -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaces the unit suite's fixture of the same name: connections to the fake endpoint on the loopback
    address are allowed, anything else still fails the test."""
    real_connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1"):
            raise AssertionError(f"unit tests must not open network connections: {address!r}")
        real_connect(self, address)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"unit tests must not open network connections: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAI]:
    # One server for the module: stopping one waits out its 0.5 s poll interval.
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The module's fake endpoint, with no requests seen; a test must use every reply it scripted."""
    fake_server.requests.clear()
    yield fake_server
    with fake_server._lock:
        unused, fake_server._script[:] = list(fake_server._script), []
    assert unused == [], "the test scripted replies that no request used"


# -- harness ------------------------------------------------------------------------------------------------------


class HistoryTimeline(RecordingTimeline):
    """A RecordingTimeline that also reads the run back, so the runner sees earlier entries (the budget)."""

    def get(self, run_id: str) -> RunView | None:
        entries = [entry for rid, entry, _ in self.entries if rid == run_id]
        if not entries:
            return None
        return RunView(run_id=run_id, workflow="support_triage", status=RunStatus.PROCESSING,
                       created_at=entries[0].at, updated_at=entries[-1].at, timeline=entries)


@dataclass
class Harness:
    runner: DecisionRunner
    store: RecordingTimeline
    slept: list[float]

    def decide(self, point: DecisionPoint[Any] = CLASSIFY_TICKET, request: dict[str, Any] | None = None,
               **kwargs: Any) -> Decision[Any]:
        return self.runner.decide(point, RUN_ID, REQUEST if request is None else request, **kwargs)

    def details(self, kind: str) -> list[dict[str, Any]]:
        return [entry.details for _, entry, _ in self.entries() if entry.details.get("kind") == kind]

    def entries(self) -> list[tuple[str, TimelineEntry, str | None]]:
        return self.store.entries

    @property
    def kinds(self) -> list[tuple[str, str]]:
        return [(entry.details.get("kind", ""), entry.state.value) for _, entry, _ in self.store.entries]

    @property
    def attempts(self) -> list[dict[str, Any]]:
        return self.details("decision_attempt")

    @property
    def context(self) -> dict[str, Any]:
        (only,) = self.details("decision_context")
        return only

    @property
    def decision(self) -> dict[str, Any]:
        (only,) = self.details("decision")
        return only

    def outcomes(self) -> list[tuple[int, str, int, str]]:
        """(tier, model, try in tier, outcome) of every attempt, in order."""
        return [(a["tier"], a["model"], a["try_in_tier"], a["outcome"]) for a in self.attempts]


def build(fake: FakeOpenAI, store: RecordingTimeline | None = None, key: str = KEY, **settings: Any) -> Harness:
    client = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0,
                           http_client=openai.DefaultHttpxClient(trust_env=False))  # no proxy from the environment
    store = store if store is not None else RecordingTimeline()
    slept: list[float] = []  # what the runner asked to wait (nothing waits)
    runner = DecisionRunner(OpenAIProvider(client=client), store, AiSettings(**settings), sleep=slept.append)
    return Harness(runner=runner, store=store, slept=slept)


def totals() -> dict[str, float]:
    """Every metric emitted so far, summed per name (Powertools keeps ``{"Unit", "Value": [...]}`` per name)."""
    return {name: sum(entry["Value"]) for name, entry in metrics.metric_set.items()}


def attempt_metrics(attempts: int, failed: int = 0, tokens_in: int = 0, tokens_out: int = 0,
                    cost: float = 0.0, **others: float) -> dict[str, Any]:
    expected: dict[str, Any] = {"AiAttempts": attempts, "AiDecisions": 1, **others}
    if failed:
        expected["AiAttemptsFailed"] = failed
    if tokens_in:
        expected["AiTokensIn"] = tokens_in
    if tokens_out:
        expected["AiTokensOut"] = tokens_out
    if cost:
        expected["AiCostUsd"] = pytest.approx(cost)
    return expected


def answer(**changes: Any) -> Reply:
    return Reply.answer({**GOOD, **changes})


# -- a valid answer -----------------------------------------------------------------------------------------------


def test_given_a_valid_structured_answer_when_deciding_then_it_is_the_decision_with_one_attempt_recorded(fake):
    fake.script(answer())
    h = build(fake)

    decision = h.decide()

    assert decision.output == TicketClassificationOutput(**GOOD)
    assert (decision.provider, decision.model, decision.tier, decision.escalation) == ("openai", MINI, 1, None)
    assert decision.decided_by == f"openai:{MINI}"
    assert (decision.attempts, decision.tokens_in, decision.tokens_out) == (1, 120, 30)
    assert decision.cost_usd == pytest.approx(MINI_COST)
    assert h.kinds == [("decision_context", "processing"), ("decision_attempt", "processing"),
                       ("decision", "processing")]
    assert all(rid == RUN_ID and entry.step == "classify_ticket" for rid, entry, _ in h.entries())
    (attempt,) = h.attempts
    assert attempt["latency_ms"] >= 0
    assert {k: v for k, v in attempt.items() if k != "latency_ms"} == {
        "kind": "decision_attempt", "decision": "classify_ticket", "tier": 1, "provider": "openai", "model": MINI,
        "reported_model": MINI, "usage_estimated": False, "try_in_tier": 1, "prompt_version": "v2",
        "prompt_hash": load_prompt("classify_ticket", directory=prompt_dir(CLASSIFY_TICKET)).sha256,
        "tokens_in": 120, "tokens_out": 30, "cost_usd": pytest.approx(MINI_COST), "outcome": "ok",
        "validation_errors": [], "output": json.dumps(GOOD), "retry_after_seconds": None}
    assert h.decision["decided_by"] == f"openai:{MINI}"
    assert h.decision["output"] == {**GOOD, "secondary_categories": []}
    assert h.decision["escalation"] is None
    assert h.context["tiers"] == [MINI, NANO]
    assert totals() == attempt_metrics(1, tokens_in=120, tokens_out=30, cost=MINI_COST)
    assert metrics.metric_set["AiAttempts"]["Unit"] == "Count"
    assert metrics.metric_set["AiCostUsd"]["Unit"] == "None"


def test_given_a_decision_when_sent_then_the_request_carries_the_key_the_schema_and_the_output_ceiling(fake):
    fake.script(answer())
    h = build(fake)

    h.decide()

    (sent,) = fake.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == MINI
    assert sent.body["max_completion_tokens"] == CLASSIFY_TICKET.max_output_tokens == 300
    assert sent.body["response_format"]["type"] == "json_schema"
    assert sent.schema_name == "TicketClassificationOutput"
    json_schema = sent.body["response_format"]["json_schema"]
    assert json_schema["strict"] is True
    assert json_schema["schema"]["additionalProperties"] is False
    assert set(json_schema["schema"]["required"]) == {"category", "summary", "secondary_categories", "confidence",
                                                       "reasoning"}
    assert json_schema["schema"]["properties"]["category"]["enum"] == [
        "billing", "refund", "technical", "account", "legal", "security", "other"]
    # what was sent is on the timeline: the system message (the prompt and policies) kept once, by its hash
    system, *rest = h.context["messages"]
    assert set(system) == {"role", "content_sha256", "chars"}
    assert sent.messages == [{"role": "system", "content": h.store.prompts[system["content_sha256"]]}, *rest]
    assert system["chars"] == len(sent.messages[0]["content"])


def test_given_a_decision_when_recorded_then_prompt_version_and_hash_match_the_prompt_file(fake):
    fake.script(answer())
    h = build(fake)
    prompt = load_prompt(CLASSIFY_TICKET.prompt, CLASSIFY_TICKET.prompt_version, directory=prompt_dir(CLASSIFY_TICKET))

    decision = h.decide()

    assert (decision.prompt_version, decision.prompt_hash) == (prompt.version, prompt.sha256)
    for details in (h.context, *h.attempts, h.decision):
        assert (details["prompt_version"], details["prompt_hash"]) == (prompt.version, prompt.sha256)
    system = fake.requests[0].messages[0]
    assert system["role"] == "system"
    assert system["content"].startswith(prompt.text)
    assert load_policy(CLASSIFY_TICKET.policy, policy_dir(CLASSIFY_TICKET, AiSettings())) in system["content"]


def test_given_the_endpoint_reports_a_dated_snapshot_when_priced_then_it_costs_as_its_model_family(fake):
    fake.script(Reply.answer(GOOD, model="gpt-4.1-mini-2025-04-14"))
    h = build(fake)

    decision = h.decide()

    assert h.attempts[0]["model"] == MINI  # the tier's model name, as configured
    assert h.attempts[0]["cost_usd"] == pytest.approx(MINI_COST)
    assert decision.cost_usd == pytest.approx(MINI_COST)


def test_given_a_model_with_no_price_when_deciding_then_cost_is_unknown_and_only_tokens_count(fake):
    fake.script(answer())
    h = build(fake, ai_model_tiers="local-llama")

    decision = h.decide()

    assert decision.output is not None
    assert h.attempts[0]["cost_usd"] is None
    assert decision.cost_usd == 0.0
    assert totals() == attempt_metrics(1, tokens_in=120, tokens_out=30)


# -- invalid answers: fed back, then the next tier ------------------------------------------------------------


def test_given_invalid_json_then_a_valid_answer_when_deciding_then_the_error_is_fed_back_and_the_retry_wins(fake):
    fake.script(Reply.answer("Sure! The category is billing."), answer())
    h = build(fake)

    decision = h.decide()

    assert decision.output == TicketClassificationOutput(**GOOD)
    assert (decision.tier, decision.attempts) == (1, 2)
    assert h.outcomes() == [(1, MINI, 1, "invalid_output"), (1, MINI, 2, "ok")]
    assert [state for kind, state in h.kinds if kind == "decision_attempt"] == ["retried", "processing"]
    first = h.attempts[0]
    assert len(first["validation_errors"]) == 1
    assert first["validation_errors"][0].startswith("answer: Invalid JSON")
    assert first["output"] == "Sure! The category is billing."
    assert (first["tokens_in"], first["tokens_out"], first["cost_usd"]) == (120, 30, pytest.approx(MINI_COST))
    retry = fake.requests[1].messages
    assert retry[:2] == fake.requests[0].messages
    assert retry[2] == {"role": "assistant", "content": "Sure! The category is billing."}
    assert retry[3]["role"] == "user"
    assert first["validation_errors"][0] in retry[3]["content"]
    assert "Answer again with one JSON object that matches the schema exactly." in retry[3]["content"]
    assert totals() == attempt_metrics(2, failed=1, tokens_in=240, tokens_out=60, cost=2 * MINI_COST)


def test_given_a_schema_violation_on_every_try_of_tier_one_when_deciding_then_the_fallback_model_decides(fake):
    fake.script(answer(category="shipping"), answer(category="shipping", confidence=1.7), answer())
    h = build(fake)

    decision = h.decide()

    assert decision.output == TicketClassificationOutput(**GOOD)
    assert (decision.tier, decision.model, decision.attempts) == (2, NANO, 3)
    assert decision.decided_by == f"openai:{NANO}"
    assert h.outcomes() == [(1, MINI, 1, "invalid_output"), (1, MINI, 2, "invalid_output"), (2, NANO, 1, "ok")]
    assert h.attempts[0]["validation_errors"] == [
        "category: Input should be 'billing', 'refund', 'technical', 'account', 'legal', 'security' or 'other'"]
    assert sorted(h.attempts[1]["validation_errors"]) == [
        "category: Input should be 'billing', 'refund', 'technical', 'account', 'legal', 'security' or 'other'",
        "confidence: Input should be less than or equal to 1"]
    assert [r.body["model"] for r in fake.requests] == [MINI, MINI, NANO]
    assert len(fake.requests[1].messages) == 4  # the first tier's retry carries the feedback
    assert fake.requests[2].messages == fake.requests[0].messages  # the next tier starts afresh
    assert decision.cost_usd == pytest.approx(2 * MINI_COST + NANO_COST)
    assert totals() == attempt_metrics(3, failed=2, tokens_in=360, tokens_out=90, cost=2 * MINI_COST + NANO_COST,
                                       AiFallbacks=1)


def test_given_an_answer_cut_off_at_the_token_ceiling_when_judged_then_the_feedback_says_so(fake):
    fake.script(Reply.answer('{"category": "billing", "confidence": 0.9, "summ', finish_reason="length"), answer())
    h = build(fake)

    h.decide()

    errors = h.attempts[0]["validation_errors"]
    assert errors[0] == "the answer was cut off at 300 tokens"
    assert errors[1].startswith("answer: Invalid JSON")
    assert "the answer was cut off at 300 tokens" in fake.requests[1].messages[3]["content"]


# -- refusals -----------------------------------------------------------------------------------------------------


def test_given_a_refusal_then_a_valid_answer_when_deciding_then_the_refusal_is_fed_back(fake):
    fake.script(Reply.refusal("I can't help with that."), answer())
    h = build(fake)

    decision = h.decide()

    assert decision.output == TicketClassificationOutput(**GOOD)
    assert h.outcomes() == [(1, MINI, 1, "refusal"), (1, MINI, 2, "ok")]
    refused = h.attempts[0]
    assert refused["validation_errors"] == ["the model refused to answer"]
    assert refused["output"] == "I can't help with that."
    assert (refused["tokens_in"], refused["tokens_out"]) == (120, 12)
    retry = fake.requests[1].messages
    assert retry[2] == {"role": "assistant", "content": "I can't help with that."}
    assert "give your best answer with a low confidence" in retry[3]["content"]
    assert totals() == attempt_metrics(2, failed=1, tokens_in=240, tokens_out=42,
                                       cost=(240 * 0.4 + 42 * 1.6) / 1e6)


def test_given_every_tier_refuses_when_deciding_then_a_human_decides_with_the_refusal_as_last_error(fake):
    fake.script(*[Reply.refusal() for _ in range(4)])
    h = build(fake)

    decision = h.decide()

    assert decision.output is None
    assert decision.escalation is Escalation.ALL_TIERS_FAILED
    assert decision.decided_by == "human"
    assert (decision.tier, decision.model, decision.attempts) == (None, None, 4)
    assert decision.last_errors == ("the model refused to answer",)
    assert h.outcomes() == [(1, MINI, 1, "refusal"), (1, MINI, 2, "refusal"), (2, NANO, 1, "refusal"),
                            (2, NANO, 2, "refusal")]
    assert h.kinds[-1] == ("decision", "processing")
    assert h.decision["escalation"] == "all_tiers_failed"
    assert h.decision["output"] is None
    cost = 2 * (120 * 0.4 + 12 * 1.6) / 1e6 + 2 * (120 * 0.1 + 12 * 0.4) / 1e6
    assert totals() == attempt_metrics(4, failed=4, tokens_in=480, tokens_out=48, cost=cost, AiFallbacks=1,
                                       AiEscalations=1)


def test_given_the_content_filter_stops_an_answer_when_judged_then_it_counts_as_a_refusal(fake):
    filtered = completion({"role": "assistant", "content": None}, 100, 0, "", "content_filter")
    fake.script(Reply(body=filtered), answer())
    h = build(fake)

    h.decide()

    assert h.outcomes()[0] == (1, MINI, 1, "refusal")
    assert h.attempts[0]["output"] == "the endpoint's content filter stopped the answer"


# -- actions: the allowlist and the parameters --------------------------------------------------------------------


class NextStep(DecisionOutput):
    action: Action


def _offline_next_step(request: Any) -> NextStep:
    return NextStep.model_validate({"confidence": 1.0, "reasoning": "offline", "action": CREATE_TASK})


NEXT_STEP: DecisionPoint[NextStep] = DecisionPoint(
    name="next_step", prompt="classify_ticket", policy="support_triage", output=NextStep, min_confidence=0.5,
    offline=_offline_next_step, allowed_actions=("create_task",), max_output_tokens=200,
    folder=CLASSIFY_TICKET.folder)
CREATE_TASK = {"action": "create_task", "reasoning": "needs follow-up",
               "parameters": {"title": "Send the March invoice", "assignee_team": "billing", "due_in_hours": 24}}


def step(action: dict[str, Any]) -> Reply:
    return Reply.answer({"confidence": 0.9, "reasoning": "next step", "action": action})


@pytest.mark.parametrize(("bad", "outcome", "errors"), [
    pytest.param({"action": "tag_record", "parameters": {"tag": "vip"}, "reasoning": "r"}, "disallowed_action",
                 ["action 'tag_record' is not allowed here; choose one of: create_task"], id="not-allowed-here"),
    pytest.param({**CREATE_TASK, "parameters": {"title": "t", "assignee_team": "marketing", "due_in_hours": 0}},
                 "invalid_output",
                 ["action.create_task.parameters.assignee_team: Input should be 'support', 'billing', "
                  "'engineering', 'legal' or 'security'",
                  "action.create_task.parameters.due_in_hours: Input should be greater than or equal to 1"],
                 id="bad-parameters"),
    pytest.param({**CREATE_TASK, "parameters": {**CREATE_TASK["parameters"], "priority": "p1"}}, "invalid_output",
                 ["action.create_task.parameters.priority: Extra inputs are not permitted"], id="extra-parameter"),
    pytest.param({"action": "delete_account", "parameters": {}, "reasoning": "r"}, "invalid_output",
                 ["action: Input tag 'delete_account' found using 'action' does not match any of the expected "
                  "tags: 'create_task', 'send_reply', 'escalate_to_human', 'tag_record'"], id="unknown-action"),
])
def test_given_a_bad_action_then_an_allowed_one_when_deciding_then_the_bad_one_is_refused_and_fed_back(
        fake, bad, outcome, errors):
    fake.script(step(bad), step(CREATE_TASK))
    h = build(fake)

    decision = h.decide(NEXT_STEP)

    assert h.outcomes() == [(1, MINI, 1, outcome), (1, MINI, 2, "ok")]
    assert h.attempts[0]["validation_errors"] == errors
    feedback = fake.requests[1].messages[3]["content"]
    assert all(error in feedback for error in errors)
    assert isinstance(decision.output, NextStep)
    assert isinstance(decision.output.action, CreateTask)
    assert decision.output.action.parameters.assignee_team == "billing"
    assert h.decision["output"]["action"] == CREATE_TASK
    assert totals() == attempt_metrics(2, failed=1, tokens_in=240, tokens_out=60, cost=2 * MINI_COST)


def test_given_an_action_union_when_sent_then_its_schema_is_anyof_which_strict_mode_accepts(fake):
    fake.script(step(CREATE_TASK))
    h = build(fake)

    h.decide(NEXT_STEP)

    schema = json.dumps(fake.requests[0].body["response_format"]["json_schema"]["schema"])
    assert '"oneOf"' not in schema  # OpenAI's strict structured outputs reject oneOf
    assert '"discriminator"' not in schema
    action = fake.requests[0].body["response_format"]["json_schema"]["schema"]["properties"]["action"]
    assert [v["$ref"] for v in action["anyOf"]] == ["#/$defs/CreateTask", "#/$defs/SendReply",
                                                    "#/$defs/EscalateToHuman", "#/$defs/TagRecord"]


# -- transport failures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "wait"), [
    pytest.param({"retry-after": "7"}, 7.0, id="retry-after-seconds"),
    pytest.param({"retry-after-ms": "250", "retry-after": "1"}, 0.25, id="retry-after-ms-first"),
    pytest.param({}, DEFAULT_RATE_LIMIT_PAUSE, id="none-named"),
    pytest.param({"retry-after": "soon"}, DEFAULT_RATE_LIMIT_PAUSE, id="unparseable"),
])
def test_given_a_429_when_the_wait_fits_the_time_left_then_the_runner_waits_and_retries_the_same_model(
        fake, headers, wait):
    fake.script(Reply.error(429, headers=headers), answer())
    h = build(fake)

    decision = h.decide(deadline=time.monotonic() + 60)

    assert h.slept == [wait]
    assert decision.output == TicketClassificationOutput(**GOOD)
    assert h.outcomes() == [(1, MINI, 1, "rate_limited"), (1, MINI, 2, "ok")]
    limited = h.attempts[0]
    assert limited["validation_errors"] == ["rate limited (429)"]
    assert limited["retry_after_seconds"] == (None if wait == DEFAULT_RATE_LIMIT_PAUSE else wait)
    assert (limited["tokens_in"], limited["tokens_out"], limited["cost_usd"], limited["output"]) == (0, 0, None, None)
    assert [state for kind, state in h.kinds if kind == "decision_attempt"] == ["retried", "processing"]
    assert totals() == attempt_metrics(2, failed=1, tokens_in=120, tokens_out=30, cost=MINI_COST)


def test_given_a_429_whose_retry_after_does_not_fit_the_deadline_when_deciding_then_the_next_tier_answers(fake):
    fake.script(Reply.error(429, headers={"retry-after": "120"}), answer())
    h = build(fake)

    decision = h.decide(deadline=time.monotonic() + 30)

    assert h.slept == []
    assert [r.body["model"] for r in fake.requests] == [MINI, NANO]
    assert h.outcomes() == [(1, MINI, 1, "rate_limited"), (2, NANO, 1, "ok")]
    assert h.attempts[0]["retry_after_seconds"] == 120.0
    assert (decision.tier, decision.model) == (2, NANO)
    assert totals() == attempt_metrics(2, failed=1, tokens_in=120, tokens_out=30, cost=NANO_COST, AiFallbacks=1)


def test_given_a_500_then_a_valid_answer_when_deciding_then_the_same_model_is_tried_again_at_once(fake):
    fake.script(Reply.error(500), answer())
    h = build(fake)

    decision = h.decide()

    assert decision.output == TicketClassificationOutput(**GOOD)
    assert h.slept == []
    assert h.outcomes() == [(1, MINI, 1, "error"), (1, MINI, 2, "ok")]
    assert h.attempts[0]["validation_errors"] == ["the endpoint answered 500"]
    assert totals() == attempt_metrics(2, failed=1, tokens_in=120, tokens_out=30, cost=MINI_COST)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_given_an_error_another_try_cannot_fix_when_deciding_then_the_tier_ends_at_once(fake, status):
    fake.script(Reply.error(status), answer())
    h = build(fake)

    decision = h.decide()

    assert [r.body["model"] for r in fake.requests] == [MINI, NANO]  # no second try at the first model
    assert h.outcomes() == [(1, MINI, 1, "error"), (2, NANO, 1, "ok")]
    assert h.attempts[0]["validation_errors"] == [f"the endpoint answered {status}"]
    assert (decision.tier, decision.model) == (2, NANO)
    assert totals() == attempt_metrics(2, failed=1, tokens_in=120, tokens_out=30, cost=NANO_COST, AiFallbacks=1)


def test_given_a_model_that_does_not_answer_in_time_when_deciding_then_the_attempt_times_out_and_is_retried(fake):
    fake.script(Reply.hang(1.0), answer())
    h = build(fake, ai_call_timeout_seconds=0.3)

    decision = h.decide()

    assert decision.output == TicketClassificationOutput(**GOOD)
    assert h.outcomes() == [(1, MINI, 1, "timeout"), (1, MINI, 2, "ok")]
    timed_out = h.attempts[0]
    assert timed_out["validation_errors"] == ["no answer within 0.3 s"]
    assert 250 <= timed_out["latency_ms"] < 1000
    # A timed-out call was sent and may be billed: its prompt counts, as estimated, against the run's budget.
    from interlock.ai.context import estimate_tokens

    sent = sum(estimate_tokens(m["content"]) for m in fake.requests[0].messages)
    assert (timed_out["tokens_in"], timed_out["tokens_out"], timed_out["usage_estimated"]) == (sent, 0, True)
    assert timed_out["cost_usd"] == pytest.approx(sent * 0.40 / 1e6)
    assert h.attempts[1]["usage_estimated"] is False
    assert totals() == attempt_metrics(2, failed=1, tokens_in=120 + sent, tokens_out=30,
                                       cost=MINI_COST + sent * 0.40 / 1e6)


@pytest.mark.parametrize(("reply", "error"), [
    pytest.param(Reply(body=b"<html>gateway</html>"), "the endpoint's answer is not JSON", id="not-json"),
    pytest.param(Reply(body={"object": "chat.completion", "choices": []}), "the endpoint's answer has no choices",
                 id="no-choices"),
])
def test_given_a_2xx_that_is_not_a_completion_when_deciding_then_it_is_a_failed_attempt(fake, reply, error):
    fake.script(reply, answer())
    h = build(fake)

    h.decide()

    assert h.outcomes() == [(1, MINI, 1, "error"), (1, MINI, 2, "ok")]
    assert h.attempts[0]["validation_errors"] == [error]


# -- escalations --------------------------------------------------------------------------------------------------


def test_given_a_valid_answer_below_the_confidence_threshold_when_deciding_then_it_is_kept_and_escalated(fake):
    fake.script(answer(confidence=0.4))
    h = build(fake)

    decision = h.decide()

    assert decision.escalation is Escalation.LOW_CONFIDENCE
    assert decision.output == TicketClassificationOutput(**{**GOOD, "confidence": 0.4})
    assert decision.decided_by == f"openai:{MINI}"
    assert decision.last_errors == ()
    assert h.outcomes() == [(1, MINI, 1, "ok")]
    assert h.decision["escalation"] == "low_confidence"
    assert h.decision["output"] == {**GOOD, "confidence": 0.4, "secondary_categories": []}
    assert totals() == attempt_metrics(1, tokens_in=120, tokens_out=30, cost=MINI_COST, AiEscalations=1)


def earlier_attempt(tokens_in: int, tokens_out: int, cost: float | None) -> TimelineEntry:
    return TimelineEntry(state=EntryState.PROCESSING, step="classify_ticket", details={
        "kind": "decision_attempt", "decision": "classify_ticket", "tier": 1, "model": MINI, "outcome": "ok",
        "tokens_in": tokens_in, "tokens_out": tokens_out, "cost_usd": cost})


@pytest.mark.parametrize(("tokens_in", "tokens_out", "cost"), [
    pytest.param(19_500, 400, 0.001, id="tokens-spent"),
    pytest.param(100, 20, 0.05, id="cost-spent"),
])
def test_given_a_run_whose_earlier_attempts_spent_the_budget_when_deciding_then_a_human_decides_uncalled(
        fake, tokens_in, tokens_out, cost):
    store = HistoryTimeline()
    store.record(RUN_ID, TimelineEntry(state=EntryState.PROCESSING, step="validate", details={"fields": 4}))
    store.record(RUN_ID, earlier_attempt(tokens_in, tokens_out, cost))
    h = build(fake, store=store)

    decision = h.decide()

    assert fake.requests == []
    assert decision.output is None
    assert decision.escalation is Escalation.BUDGET_EXCEEDED
    assert (decision.attempts, decision.last_errors) == (0, ())
    assert h.kinds[2:] == [("decision_context", "processing"), ("decision", "processing")]
    assert h.context["run_spent"] == {"tokens": tokens_in + tokens_out, "cost_usd": cost}
    assert h.decision["escalation"] == "budget_exceeded"
    assert totals() == {"AiDecisions": 1, "AiEscalations": 1}


def test_given_a_token_ceiling_the_first_call_would_exceed_when_deciding_then_no_call_is_made(fake):
    h = build(fake, ai_run_max_tokens=500)

    decision = h.decide()

    assert fake.requests == []
    assert decision.escalation is Escalation.BUDGET_EXCEEDED
    assert h.kinds == [("decision_context", "processing"), ("decision", "processing")]
    assert h.context["tokens"]["system"] + CLASSIFY_TICKET.max_output_tokens > 500  # the estimate is over
    assert totals() == {"AiDecisions": 1, "AiEscalations": 1}


def test_given_a_budget_spent_by_the_first_try_when_it_failed_then_no_retry_is_made(fake):
    fake.script(Reply.answer("not json", tokens_in=5_000))
    h = build(fake, ai_run_max_tokens=6_000)

    decision = h.decide()

    assert len(fake.requests) == 1
    assert decision.escalation is Escalation.BUDGET_EXCEEDED
    assert decision.attempts == 1
    assert decision.last_errors == tuple(h.attempts[0]["validation_errors"])
    assert totals() == attempt_metrics(1, failed=1, tokens_in=5_000, tokens_out=30,
                                       cost=(5_000 * 0.4 + 30 * 1.6) / 1e6, AiEscalations=1)


def test_given_a_second_decision_in_a_run_when_the_first_spent_the_budget_then_it_escalates_uncalled(fake):
    fake.script(Reply.answer(GOOD, tokens_in=5_000))
    store = HistoryTimeline()
    h = build(fake, store=store, ai_run_max_tokens=6_000)

    first = h.decide()
    second = h.decide()

    assert first.output is not None and first.escalation is None
    assert second.escalation is Escalation.BUDGET_EXCEEDED
    assert len(fake.requests) == 1
    contexts = h.details("decision_context")
    assert contexts[1]["run_spent"]["tokens"] == 5_030
    assert "classify_ticket processing" in contexts[1]["messages"][1]["content"]  # the run's history


def test_given_every_tier_failing_when_deciding_then_a_human_gets_the_full_context_and_the_last_errors(fake):
    fake.script(Reply.error(500), answer(category="shipping"), Reply.error(503), Reply.answer("{}"))
    h = build(fake)
    request = {"ticket": {"subject": "Where is my parcel?", "body": "Order 1042 never arrived, please check."}}

    decision = h.decide(request=request)

    assert decision.output is None
    assert decision.escalation is Escalation.ALL_TIERS_FAILED
    assert h.outcomes() == [(1, MINI, 1, "error"), (1, MINI, 2, "invalid_output"), (2, NANO, 1, "error"),
                            (2, NANO, 2, "invalid_output")]
    assert decision.last_errors == tuple(h.attempts[-1]["validation_errors"])
    assert set(decision.last_errors) == {"confidence: Field required", "reasoning: Field required",
                                         "category: Field required", "summary: Field required"}
    assert h.decision["last_errors"] == list(decision.last_errors)
    assert h.decision["escalation"] == "all_tiers_failed"
    context = h.context
    system, *rest = context["messages"]  # the prompt and policies kept once by hash; what a person reads back
    assert [{"role": "system", "content": h.store.prompts[system["content_sha256"]]}, *rest] == \
        fake.requests[0].messages
    user = context["messages"][1]["content"]
    assert "Where is my parcel?" in user and "Order 1042 never arrived, please check." in user
    assert set(context["tokens"]) == {"system", "domain", "session", "request"}
    assert context["trimmed"] == []
    assert h.kinds == [("decision_context", "processing"), *[("decision_attempt", "retried")] * 4,
                       ("decision", "processing")]
    assert totals() == attempt_metrics(4, failed=4, tokens_in=240, tokens_out=60, cost=MINI_COST + NANO_COST,
                                       AiFallbacks=1, AiEscalations=1)


def test_given_a_deadline_too_close_to_call_when_deciding_then_it_escalates_with_no_time_left(fake):
    h = build(fake)

    decision = h.decide(deadline=time.monotonic() + 2.0)  # 1.5 s margin, a call needs at least 1 s

    assert fake.requests == []
    assert decision.escalation is Escalation.NO_TIME_LEFT
    assert h.kinds == [("decision_context", "processing"), ("decision", "processing")]
    assert h.decision["escalation"] == "no_time_left"
    assert totals() == {"AiDecisions": 1, "AiEscalations": 1}


def test_given_an_explicit_step_and_attempt_when_deciding_then_every_entry_carries_them(fake):
    fake.script(answer())
    h = build(fake)

    h.decide(step="classify", attempt=2)

    assert {(entry.step, entry.attempt) for _, entry, _ in h.entries()} == {("classify", 2)}


# -- privacy: what reaches the logs ---------------------------------------------------------------------------


def test_given_personal_data_and_a_key_when_deciding_then_no_log_line_carries_them(fake, capsys, caplog,
                                                                                   monkeypatch):
    # The Powertools handler holds the stdout of the moment the logger was created: point it at capsys's.
    monkeypatch.setattr(logger.registered_handler, "stream", sys.stdout)
    caplog.set_level(logging.INFO)
    email, phone, key = "ada.lovelace@example.com", "+44 20 7946 0958", "sk-test-SECRET-privacy-0123456789"
    request = {"ticket": {"subject": "Invoice question",
                          "body": f"Please email me at {email} or call {phone} about my March invoice."}}
    echoed = f"Sure, I will email {email} and call {phone}."  # an invalid answer echoing the personal data
    marker = "UNIQUE-MODEL-OUTPUT-7f3a"
    fake.script(Reply.answer(echoed), Reply.error(429, headers={"retry-after": "1"}),
                Reply.refusal(f"I refuse to contact {email}."),
                answer(summary=f"{marker} asks about an invoice", reasoning=f"{marker} reasoning", confidence=0.3))
    h = build(fake, key=key, ai_model_tiers=f"{MINI},{NANO}", ai_retries_per_tier=1)
    prompt = load_prompt("classify_ticket", directory=prompt_dir(CLASSIFY_TICKET)).text

    decision = h.decide(request=request)

    assert decision.escalation is Escalation.LOW_CONFIDENCE
    assert email in h.context["messages"][1]["content"]  # the timeline keeps the data; the logs must not
    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert logs.count('"message":"decision attempt"') == 4  # the log lines were captured
    assert "decision falls back to a simpler tier" in logs
    assert "decision escalated to a human" in logs
    policy = load_policy("support_triage", policy_dir(CLASSIFY_TICKET, AiSettings()))
    forbidden = [email, phone, key, "SECRET", marker, echoed, "I refuse to contact",
                 "Please email me", prompt[:80], prompt[-80:], policy[-80:]]
    leaked = [text for text in forbidden if text in logs]
    assert leaked == []
