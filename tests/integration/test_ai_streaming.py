"""A decision's answer streamed: the provider over the real ``openai`` SDK against the fake endpoint's streaming
protocol (on the loopback address)."""

from __future__ import annotations

import json

import openai
from fake_openai import FakeOpenAI, Reply
from interlock.ai.decision import DecisionOutput
from interlock.ai.openai_provider import OpenAIProvider
from interlock.ai.providers import ModelCall
from pydantic import BaseModel


class Answer(DecisionOutput):
    text: str


def _call(output: type[BaseModel], pieces: list[str] | None) -> ModelCall:
    return ModelCall(decision="answer", model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}],
                     output=output, timeout_seconds=5, max_output_tokens=100,
                     on_delta=pieces.append if pieces is not None else None)


def test_a_streamed_answer_arrives_in_pieces_and_whole_with_its_usage() -> None:
    content = {"confidence": 0.9, "reasoning": "r", "text": "Your order shipped yesterday with DHL."}
    with FakeOpenAI(default=lambda body: Reply.answer(content, tokens_in=77, tokens_out=21, model="gpt-4.1-mini-x")
                    ) as fake:
        provider = OpenAIProvider(client=openai.OpenAI(api_key="k", base_url=fake.base_url, max_retries=0))
        pieces: list[str] = []
        reply = provider.complete(_call(Answer, pieces))
        (seen,) = fake.requests
    assert reply.text == json.dumps(content) == "".join(pieces)
    assert len(pieces) > 3 and fake.streamed == 1
    assert (reply.tokens_in, reply.tokens_out, reply.model, reply.finish_reason) == (77, 21, "gpt-4.1-mini-x", "stop")
    # the same strict schema as an unstreamed call sends
    assert seen.body["stream"] is True and seen.schema_name == "Answer"
    assert seen.body["response_format"]["json_schema"]["strict"] is True
    assert seen.body["stream_options"] == {"include_usage": True}


def test_without_a_delta_sink_the_call_is_not_streamed_and_a_refusal_streams_as_one() -> None:
    with FakeOpenAI(default=lambda body: Reply.refusal("No.")) as fake:
        provider = OpenAIProvider(client=openai.OpenAI(api_key="k", base_url=fake.base_url, max_retries=0))
        whole = provider.complete(_call(Answer, None))
        pieces: list[str] = []
        streamed = provider.complete(_call(Answer, pieces))
    assert fake.requests[0].body.get("stream") is False and fake.streamed == 1
    assert (whole.text, whole.refusal) == (streamed.text, streamed.refusal) == (None, "No.")
    assert pieces == []
