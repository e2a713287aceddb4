"""The triage workflow's AI decisions (classify, draft_reply) end to end, through the local runtime over real HTTP.

Two runtimes: the session's default one (no API key: the offline provider decides), and one of this module's
whose model is the real ``openai`` SDK pointed by ``OPENAI_BASE_URL`` at :class:`fake_openai.FakeOpenAI`, a
Chat Completions endpoint on a local socket. The fake answers by the request's structured-output schema; a
ticket whose subject carries :data:`FAILING` gets a failure from every model tier instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fake_openai import FakeOpenAI, Reply, Seen
from interlock.workflows.support_triage.rules import template_text

from tests.e2e.conftest import LOW_RISK, Runtime, _start, ticket

TIER_1, TIER_2 = "gpt-4.1-mini", "gpt-4.1-nano"
API_KEY = "test-key"
# In a ticket's subject: the fake fails every call about it (tier 1 answers 500, tier 2 text that is not JSON).
FAILING = "[fake-model-down]"

CLASSIFICATION = {"category": "billing", "confidence": 0.92, "summary": "Charged twice on the last invoice",
                  "reasoning": "The customer asks about a duplicate charge on an invoice."}
DRAFT_TEXT = ("I can see the two charges on your last invoice. Our billing team is looking at the duplicate "
              "and will confirm the correction to you; no action is needed on your side.")
DRAFT = {"text": DRAFT_TEXT, "confidence": 0.88, "reasoning": "Acknowledge the duplicate charge."}
# In a ticket's subject: the fake's confident draft makes a promise the policies forbid (a refund with a date).
PROMISING = "[fake-vow]"  # a marker the guardrail's rules do not trip in the subject
PROMISE_TEXT = "The duplicate will be returned to your card within five business days."
# In a ticket's subject: the fake classifies it billing, and reports a refund as a secondary category.
ALSO_REFUND = "[fake-secondary-risk]"
TOKENS = {"TicketClassificationOutput": (321, 45), "DraftReplyOutput": (654, 87)}


def _answer(body: dict[str, Any]) -> Reply:
    """The fake model: a failure for a FAILING ticket, else the canned answer for the requested schema."""
    seen = Seen(path="", headers={}, body=body)
    model = str(body.get("model", ""))
    if FAILING in json.dumps(seen.messages):
        if model == TIER_1:
            return Reply.error(500, message="the fake model is down")
        return Reply.answer("Sorry, I can only answer in prose today.", tokens_in=50, tokens_out=9, model=model)
    draft = {**DRAFT, "text": PROMISE_TEXT} if PROMISING in json.dumps(seen.messages) else DRAFT
    classification = ({**CLASSIFICATION, "confidence": 0.95, "secondary_categories": ["refund"]}
                      if ALSO_REFUND in json.dumps(seen.messages) else CLASSIFICATION)
    content = {"TicketClassificationOutput": classification, "DraftReplyOutput": draft}.get(seen.schema_name)
    if content is None:
        return Reply.error(400, message=f"the fake has no answer for schema {seen.schema_name!r}")
    tokens_in, tokens_out = TOKENS[seen.schema_name]
    # A provider reports the dated snapshot it ran, not the alias that was asked for.
    return Reply.answer(content, tokens_in=tokens_in, tokens_out=tokens_out, model=f"{model}-2025-04-14")


@dataclass
class WithModel:
    runtime: Runtime
    fake: FakeOpenAI

    def requests_about(self, subject: str) -> list[Seen]:
        return [r for r in self.fake.requests if subject in json.dumps(r.messages)]


@pytest.fixture(scope="module")
def with_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WithModel]:
    """A runtime with an API key whose model endpoint is the fake (one try per tier, so failures are quick)."""
    with FakeOpenAI(default=_answer) as fake:
        for runtime in _start(tmp_path_factory.mktemp("openai"), OPENAI_BASE_URL=fake.base_url,
                              OPENAI_API_KEY=API_KEY, INTERLOCK_AI_RETRIES_PER_TIER="0"):
            yield WithModel(runtime, fake)


def _kind(run: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in run["timeline"] if e["details"].get("kind") == kind]


def _output(run: dict[str, Any], step: str) -> dict[str, Any]:
    """What the step returned (its own timeline entry, after the decision layer's entries)."""
    entries = [e["details"] for e in run["timeline"] if e["step"] == step and "kind" not in e["details"]]
    assert len(entries) == 1, entries
    return dict(entries[0])


def _letter(text: str, name: str = "Ada Lovelace") -> str:
    """The greeting and sign-off are the code's; the paragraphs in between are the decision's."""
    return f"Hi {name},\n\n{text}\n\nBest regards,\nSupport"


def _unique(subject: str) -> str:
    return f"{subject} {uuid.uuid4().hex[:8]}"


def test_given_a_model_endpoint_when_a_billing_ticket_arrives_then_the_model_decides_and_its_reply_is_sent(
    with_model: WithModel,
) -> None:
    subject = _unique("Invoice question")
    run_id = with_model.runtime.send(
        ticket(subject, "I was charged twice on my last invoice, can you check the payment?")).json()["run_id"]

    run = with_model.runtime.wait_status(run_id, "completed")

    contexts = [e["details"] for e in _kind(run, "decision_context")]
    assert [(c["decision"], c["provider"], c["tiers"]) for c in contexts] == [
        ("classify_ticket", "openai", [TIER_1, TIER_2]), ("draft_reply", "openai", [TIER_1, TIER_2])]
    attempts = _kind(run, "decision_attempt")
    assert [(e["step"], e["state"]) for e in attempts] == [("classify", "processing"), ("draft_reply", "processing")]
    details = [e["details"] for e in attempts]
    assert [(a["decision"], a["provider"], a["model"], a["tier"], a["try_in_tier"], a["outcome"])
            for a in details] == [("classify_ticket", "openai", TIER_1, 1, 1, "ok"),
                                  ("draft_reply", "openai", TIER_1, 1, 1, "ok")]
    assert [(a["tokens_in"], a["tokens_out"]) for a in details] == [TOKENS["TicketClassificationOutput"],
                                                                    TOKENS["DraftReplyOutput"]]
    for attempt in details:
        assert attempt["cost_usd"] > 0, attempt  # priced as its family: the fake reports a dated snapshot
        assert attempt["prompt_version"] and len(attempt["prompt_hash"]) == 64
        assert attempt["latency_ms"] >= 0 and attempt["validation_errors"] == []
    decisions = [e["details"] for e in _kind(run, "decision")]
    assert [(d["decision"], d["decided_by"], d["tier"], d["attempts"], d["escalation"]) for d in decisions] == [
        ("classify_ticket", f"openai:{TIER_1}", 1, 1, None), ("draft_reply", f"openai:{TIER_1}", 1, 1, None)]

    classification = _output(run, "classify")
    assert (classification["category"], classification["confidence"], classification["decided_by"]) == (
        "billing", 0.92, f"openai:{TIER_1}")
    draft = _output(run, "draft_reply")
    assert (draft["decided_by"], draft["template"], draft["body"]) == (f"openai:{TIER_1}", None, _letter(DRAFT_TEXT))
    assert _output(run, "guardrail")["requires_approval"] is False
    assert "approval" not in [e["step"] for e in run["timeline"]]
    assert [r["body"] for r in with_model.runtime.replies(run_id)] == [_letter(DRAFT_TEXT)]

    requests = with_model.requests_about(subject)
    assert [r.schema_name for r in requests] == ["TicketClassificationOutput", "DraftReplyOutput"]
    for request in requests:
        assert request.path == "/v1/chat/completions"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.body["model"] == TIER_1
        response_format = request.body["response_format"]
        assert response_format["type"] == "json_schema"
        assert response_format["json_schema"]["strict"] is True
        assert {"confidence", "reasoning"} <= set(response_format["json_schema"]["schema"]["properties"])


def test_given_a_model_endpoint_then_the_customer_email_address_never_reaches_it(with_model: WithModel) -> None:
    subject = _unique("Invoice copy")
    run_id = with_model.runtime.send(
        ticket(subject, "Could you send me a copy of my last invoice?", "grace@example.com")).json()["run_id"]
    with_model.runtime.wait_status(run_id, "completed")

    requests = with_model.requests_about(subject)
    assert len(requests) == 2
    leaked = [line for r in requests for m in r.messages for line in m["content"].splitlines()
              if "grace@example.com" in line]
    assert not leaked, leaked


def test_given_every_model_tier_failing_then_the_run_waits_for_a_person_who_approves_the_template_draft(
    with_model: WithModel,
) -> None:
    subject = _unique(f"Where is my order {FAILING}")
    runtime = with_model.runtime
    run_id = runtime.send(ticket(subject, "My order has not arrived yet.")).json()["run_id"]

    run = runtime.wait_status(run_id, "pending_approval")

    attempts = _kind(run, "decision_attempt")
    assert [(e["step"], e["state"]) for e in attempts] == [("classify", "retried"), ("classify", "retried")]
    assert [(a["details"]["tier"], a["details"]["model"], a["details"]["provider"], a["details"]["outcome"])
            for a in attempts] == [(1, TIER_1, "openai", "error"), (2, TIER_2, "openai", "invalid_output")]
    assert attempts[0]["details"]["validation_errors"] == ["the endpoint answered 500"]
    assert attempts[1]["details"]["validation_errors"]  # why the prose was not accepted
    (decision,) = [e["details"] for e in _kind(run, "decision")]  # no model is asked to draft for nobody's category
    assert (decision["decision"], decision["decided_by"], decision["escalation"], decision["attempts"]) == (
        "classify_ticket", "human", "all_tiers_failed", 2)
    assert decision["output"] is None and decision["last_errors"]
    classification = _output(run, "classify")
    assert (classification["category"], classification["confidence"], classification["decided_by"]) == (
        "other", 0.0, "human")
    draft = _output(run, "draft_reply")
    assert (draft["decided_by"], draft["template"]) == ("template", "other.v1")
    assert "ai_escalated:classify_ticket:all_tiers_failed" in _output(run, "guardrail")["reasons"]
    assert [r.body["model"] for r in with_model.requests_about(subject)] == [TIER_1, TIER_2]

    mail = runtime.approval_email(run_id)
    assert "the ticket's category was not decided by the AI: every model tier failed" in " ".join(mail.split())
    link = runtime.approval_link(run_id)
    assert "every model tier failed" in httpx.get(link).text
    assert httpx.post(link, data={"decision": "approve"}).status_code == 200

    done = runtime.wait_status(run_id, "completed")
    states = [e["state"] for e in done["timeline"]]
    assert states.index("pending_approval") < states.index("approved") < states.index("completed")
    assert [r["body"] for r in runtime.replies(run_id)] == [_letter(template_text("other", "enterprise"))]


def test_given_a_confident_model_draft_that_makes_a_promise_then_a_person_reads_it_before_it_is_sent(
    with_model: WithModel,
) -> None:
    subject = _unique(f"Charged twice {PROMISING}")
    runtime = with_model.runtime
    run_id = runtime.send(ticket(subject, "I was charged twice on my last invoice.")).json()["run_id"]

    run = runtime.wait_status(run_id, "pending_approval")

    draft = _output(run, "draft_reply")
    assert (draft["decided_by"], draft["confidence"], draft["body"]) == (f"openai:{TIER_1}", 0.88,
                                                                         _letter(PROMISE_TEXT))
    assert _output(run, "guardrail")["reasons"] == ["outsider_text:reply:commitment"]
    assert runtime.replies(run_id) == []  # nothing reached the customer
    mail = " ".join(runtime.approval_email(run_id).split())
    assert "the AI-written reply makes a commitment (a refund, a credit, a timeframe)" in mail
    assert httpx.post(runtime.approval_link(run_id), data={"decision": "reject"}).status_code == 200
    runtime.wait_status(run_id, "rejected")
    assert runtime.replies(run_id) == []


def test_given_no_api_key_then_the_offline_provider_decides_and_the_run_completes(runtime: Runtime) -> None:
    run_id = runtime.send(LOW_RISK).json()["run_id"]

    run = runtime.wait_status(run_id, "completed")

    contexts = [e["details"] for e in _kind(run, "decision_context")]
    assert [(c["decision"], c["provider"], c["tiers"]) for c in contexts] == [
        ("classify_ticket", "offline", ["offline"]), ("draft_reply", "offline", ["offline"])]
    attempts = [e["details"] for e in _kind(run, "decision_attempt")]
    assert [(a["decision"], a["provider"], a["model"], a["outcome"]) for a in attempts] == [
        ("classify_ticket", "offline", "offline", "ok"), ("draft_reply", "offline", "offline", "ok")]
    assert all(a["tokens_in"] == a["tokens_out"] == 0 and not a["cost_usd"] for a in attempts)
    assert [d["details"]["decided_by"] for d in _kind(run, "decision")] == ["offline", "offline"]
    classification = _output(run, "classify")
    assert (classification["category"], classification["decided_by"]) == ("billing", "offline")
    draft = _output(run, "draft_reply")
    assert (draft["decided_by"], draft["template"]) == ("offline", "billing.v1")
    expected = _letter(template_text("billing", "enterprise"))
    assert draft["body"] == expected
    assert [r["body"] for r in runtime.replies(run_id)] == [expected]


def test_given_a_model_that_reports_a_refund_besides_billing_then_a_person_decides_and_nothing_is_sent(
    with_model: WithModel,
) -> None:
    # No refund keyword in the ticket: only the model's secondary category says it.
    subject = _unique(f"Charged twice {ALSO_REFUND}")
    runtime = with_model.runtime
    body = "I was charged twice on my last invoice and I want the second payment returned to me."
    run_id = runtime.send(ticket(subject, body)).json()["run_id"]

    run = runtime.wait_status(run_id, "pending_approval")

    classification = _output(run, "classify")
    assert (classification["category"], classification["confidence"]) == ("billing", 0.95)
    assert classification["secondary_categories"] == ["refund"]
    assert _output(run, "guardrail")["reasons"] == ["risk_signal:refund"]
    assert runtime.replies(run_id) == []
    mail = " ".join(runtime.approval_email(run_id).split())
    assert "the ticket may also be a refund request" in mail
