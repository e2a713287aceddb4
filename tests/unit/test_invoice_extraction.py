"""The invoice intake's extraction through a model: the real openai SDK pointed at the fake OpenAI endpoint
(``tests/fake_openai.py``) by base URL, each field's confidence carried into the rules. Connections to the fake on
the loopback address are allowed; any other still fails the test."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from fake_openai import FakeOpenAI, Reply
from interlock.ai.openai_provider import OpenAIProvider
from interlock.ai.runner import DecisionRunner
from interlock.settings import AiSettings
from interlock.workflows.invoice_intake import steps
from interlock.workflows.invoice_intake.decisions import offline_extract
from interlock.workflows.invoice_intake.models import ExtractInput, TakeInput

from unit.fakes import RecordingTimeline
from unit.test_invoice_steps import World, envelope, sample_document


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaces the unit suite's fixture of the same name: the loopback address only."""
    real_connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1"):
            raise AssertionError(f"unit tests must not open network connections: {address!r}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def runner(fake: FakeOpenAI, store: RecordingTimeline) -> DecisionRunner:
    client = openai.OpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0,
                           http_client=openai.DefaultHttpxClient(trust_env=False))
    return DecisionRunner(OpenAIProvider(client=client), store, AiSettings(), sleep=lambda _: None)


def model_answer(**changes: Any) -> dict[str, Any]:
    fields = offline_extract({"document": sample_document("clean")["text"]}).model_dump(mode="json")
    fields.update(confidence=0.93, reasoning="a clear invoice")
    fields.update(changes)
    return fields


def test_through_the_openai_endpoint_the_answer_is_the_extraction_with_each_fields_confidence(
    fake_server: FakeOpenAI,
) -> None:
    fake_server.requests.clear()
    world = World()
    world.runner = runner(fake_server, world.timeline)
    answer = model_answer(total={"value": "476.00", "confidence": 0.55})
    fake_server.script(Reply.answer(answer))

    state = world.through_review(sample_document("clean"))

    (seen,) = fake_server.requests
    assert seen.schema_name and "ACME-2025-1001" in json.dumps(seen.messages)
    schema = json.dumps(seen.body["response_format"])
    assert '"confidence"' in schema and '"iban"' in schema and '"lines"' in schema
    extraction = state["extraction"]
    assert extraction.decided_by.startswith("openai:") and extraction.confidence == 0.93
    assert extraction.invoice is not None and extraction.invoice.total.confidence == 0.55
    assert [(f.code, f.field) for f in state["checked"].flags] == [("low_confidence", "total")]
    assert state["review"].approvers == 1  # a field the model was unsure of needs a person


def test_an_invalid_answer_is_fed_back_and_the_valid_retry_is_the_extraction(fake_server: FakeOpenAI) -> None:
    fake_server.requests.clear()
    world = World()
    world.runner = runner(fake_server, world.timeline)
    fake_server.script(Reply.answer({"vendor": "Acme"}), Reply.answer(model_answer()))

    state = world.through_review(sample_document("clean"))

    assert len(fake_server.requests) == 2
    assert "Your answer was not accepted" in json.dumps(fake_server.requests[1].messages)
    assert state["extraction"].found and state["review"].action == "record"


def test_when_no_model_answers_a_person_takes_the_invoice(fake_server: FakeOpenAI) -> None:
    fake_server.requests.clear()
    world = World()
    world.runner = runner(fake_server, world.timeline)
    fake_server.script(*[Reply.error(401)] * 2)  # a bad key: each tier ends at once

    doc = steps.take_document(TakeInput(run_id="run-1", envelope=envelope(sample_document("clean"))),
                              world.ctx("take_document"))
    found = steps.extract(ExtractInput(run_id="run-1", document=doc), world.ctx("extract"))

    assert (found.found, found.reason, found.escalation) == (False, "extraction_failed", "all_tiers_failed")
