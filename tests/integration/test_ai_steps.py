"""The AI steps' handlers as Step Functions invokes them: the real openai SDK against a fake OpenAI endpoint,
the key from the environment or from Secrets Manager (moto), every attempt read back from DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fake_openai import FakeOpenAI, Reply
from interlock.models import Envelope, run_id_for, utcnow
from interlock.timeline import DynamoTimelineStore

from integration.support import REGION, TABLE_NAME


def task_of(step: str) -> dict[str, str]:
    """What a support_triage task names: its workflow and step (the rest is the step's input)."""
    return {"workflow": "support_triage", "step": step}

TICKET = {"subject": "Invoice is wrong", "body": "I was charged twice on my invoice",
          "customer_email": "ada@example.com", "customer_name": "Ada", "thread": []}
CLASSIFIED = {"category": "billing", "confidence": 0.91, "summary": "Charged twice", "reasoning": "invoice, charged"}
DRAFTED = {"text": "We're sorry about the double charge; billing will correct it.", "confidence": 0.86,
           "reasoning": "policy 4"}


def answers(body: dict[str, Any]) -> Reply:
    name = body["response_format"]["json_schema"]["name"]
    return Reply.answer(CLASSIFIED if name == "TicketClassificationOutput" else DRAFTED, tokens_in=900,
                        tokens_out=60, model="gpt-4.1-mini-2025-04-14")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default=answers) as server:
        yield server


@pytest.fixture
def run(cloud) -> Envelope:
    key = "form:msg_ai_steps"
    envelope = Envelope(event_id="msg_ai_steps", source="form", type="support.ticket", payload_version="v1",
                        received_at=utcnow(), dedupe_key=key, run_id=run_id_for(key),
                        payload={"type": "support.ticket", "data": TICKET})
    DynamoTimelineStore(TABLE_NAME).create_run_once(envelope, 3600)
    return envelope


def attempts(run_id: str) -> list[dict[str, Any]]:
    view = DynamoTimelineStore(TABLE_NAME).get(run_id)
    assert view is not None
    return [e.details for e in view.timeline if e.details.get("kind") == "decision_attempt"]


def classify(run: Envelope, lambda_context: Any) -> dict[str, Any]:
    import job_decide

    return job_decide.handler({**task_of("classify"), "run_id": run.run_id, "attempt": 0, "ticket": TICKET},
                              lambda_context)


def draft(run: Envelope, classification: dict[str, Any], lambda_context: Any) -> dict[str, Any]:
    import job_decide

    return job_decide.handler({**task_of("draft_reply"), "run_id": run.run_id, "attempt": 0, "ticket": TICKET,
                                     "classification": classification, "account": {"found": False}},
                                    lambda_context)


def test_given_a_key_and_a_base_url_in_the_environment_when_classifying_then_the_endpoint_decides(
    run, fake, lambda_context, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)

    result = classify(run, lambda_context)

    assert (result["category"], result["confidence"], result["decided_by"]) == ("billing", 0.91,
                                                                               "openai:gpt-4.1-mini")
    assert fake.requests[0].headers["authorization"] == "Bearer sk-env-key"
    [attempt] = attempts(run.run_id)
    assert (attempt["provider"], attempt["model"], attempt["outcome"]) == ("openai", "gpt-4.1-mini", "ok")
    assert (attempt["tokens_in"], attempt["tokens_out"]) == (900, 60)
    # gpt-4.1-mini's list price, the dated snapshot priced as its family: (900 * 0.40 + 60 * 1.60) / 1e6
    assert attempt["cost_usd"] == pytest.approx(0.000456)


def test_given_the_key_in_secrets_manager_when_classifying_then_that_key_is_used(
    run, fake, lambda_context, monkeypatch
):
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="interlock/ai/api-key", SecretString='{"api_key": "sk-from-secrets-manager"}')
    monkeypatch.setenv("INTERLOCK_AI_API_KEY_SECRET", "interlock/ai/api-key")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)

    result = classify(run, lambda_context)

    assert result["decided_by"] == "openai:gpt-4.1-mini"
    assert fake.requests[0].headers["authorization"] == "Bearer sk-from-secrets-manager"


def test_given_the_stacks_empty_key_secret_when_classifying_then_the_offline_provider_decides(
    run, fake, lambda_context, monkeypatch
):
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name="interlock/ai/api-key",
                                                                     SecretString=" ")
    monkeypatch.setenv("INTERLOCK_AI_API_KEY_SECRET", "interlock/ai/api-key")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)

    result = classify(run, lambda_context)

    assert result["decided_by"] == "offline"
    assert fake.requests == []
    assert [a["provider"] for a in attempts(run.run_id)] == ["offline"]


def test_given_ai_provider_openai_and_no_key_when_classifying_then_the_step_fails_not_configured(
    run, lambda_context, monkeypatch
):
    from interlock.errors import NotConfigured

    monkeypatch.setenv("INTERLOCK_AI_PROVIDER", "openai")

    with pytest.raises(NotConfigured) as info:
        classify(run, lambda_context)

    assert info.value.reason == "ai_not_configured"


def test_given_the_run_budget_spent_by_classify_when_drafting_then_the_draft_escalates_without_a_call(
    run, fake, lambda_context, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    # The classification is estimated at ~1,000 tokens (its prompt and output allowance) and reports 960; the
    # draft's estimate (~1,300) does not fit in what is left of 1,900.
    monkeypatch.setenv("INTERLOCK_AI_RUN_MAX_TOKENS", "1900")

    classification = classify(run, lambda_context)
    result = draft(run, classification, lambda_context)

    assert len(fake.requests) == 1  # the classification's; the draft was never asked for
    assert result["decision"]["escalation"] == "budget_exceeded"
    assert result["template"] == "billing.not_found.v1"  # the CRM found no account

    import job_validate

    guard = job_validate.handler({**task_of("guardrail"), "run_id": run.run_id, "attempt": 0,
                                  "classification": classification,
                                    "account": {"found": False}, "draft": result}, lambda_context)
    assert guard["requires_approval"] is True
    assert guard["reasons"] == ["ai_escalated:draft_reply:budget_exceeded"]
