"""The assistant with a model: the real ``openai`` SDK pointed at :class:`fake_openai.FakeOpenAI`, through
``interlock run`` over real HTTP. The fake answers as a model would, by what the customer wrote in the turn's request
(its messages but the system's): a valid reply, an answer that never validates, a promise, an unsure answer, a slow one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Reply, Seen

from tests.assistant_messages import new_customer, whatsapp
from tests.e2e.conftest import ASSISTANT_DEBOUNCE, Runtime, _start
from tests.e2e.test_assistant import SUPPORT_CHANNEL, message, output, sent_to, slack_posts, steps
from tests.e2e.test_run_events import parse, read

TIER_1, TIER_2 = "gpt-4.1-mini", "gpt-4.1-nano"
ADDRESS_ANSWER = "You can change the delivery address in the app, under Settings, until the order ships."
SLOW_SECONDS = 4.0


def _turn(action: dict[str, Any], confidence: float = 0.92) -> dict[str, Any]:
    return {"confidence": confidence, "reasoning": "fake model", "action": action}


def _answer(body: dict[str, Any]) -> Reply:
    seen = Seen(path="", headers={}, body=body)
    request = " ".join(str(m.get("content", "")) for m in seen.messages if m.get("role") == "user")
    model = str(body.get("model", ""))
    if seen.schema_name != "TurnOutput":
        return Reply.error(400, message=f"the fake model has no answer for {seen.schema_name}")
    if "never valid" in request:
        return Reply.answer({"action": {"action": "reply"}}, model=model)  # no text, no confidence: invalid
    if "refund" in request:
        return Reply.answer(_turn({"action": "reply", "text": "We will refund you within 2 days."}), model=model)
    if "maybe" in request:
        return Reply.answer(_turn({"action": "reply", "text": "Perhaps you mean your order?"}, 0.3), model=model)
    if "person" in request:
        return Reply.answer(_turn({"action": "hand_off_to_human", "reason": "asked for a person"}), model=model)
    if "very slowly" in request:
        return Reply(body=Reply.answer(_turn({"action": "reply", "text": ADDRESS_ANSWER}), model=model).body,
                     delay=2 * SLOW_SECONDS)
    if "slowly" in request:
        return Reply(body=Reply.answer(_turn({"action": "reply", "text": ADDRESS_ANSWER}), model=model).body,
                     delay=SLOW_SECONDS)
    return Reply.answer(_turn({"action": "reply", "text": ADDRESS_ANSWER}), model=model)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, FakeOpenAI]]:
    """A runtime whose model endpoint is the fake: two tiers, one retry each (an invalid answer is tried again with
    its errors, then the smaller model)."""
    with FakeOpenAI(default=_answer) as fake:
        for runtime in _start(tmp_path_factory.mktemp("assistant-model"), OPENAI_BASE_URL=fake.base_url,
                              OPENAI_API_KEY="test-key", INTERLOCK_AI_RETRIES_PER_TIER="1",
                              INTERLOCK_ASSISTANT_DEBOUNCE_SECONDS=ASSISTANT_DEBOUNCE):
            yield runtime, fake


def attempts(run: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(e["details"]["tier"], e["details"]["model"], e["details"]["outcome"]) for e in run["timeline"]
            if e["details"].get("kind") == "decision_attempt"]


def test_given_a_model_then_its_checked_words_go_out_as_the_reply(model: tuple[Runtime, FakeOpenAI]) -> None:
    rt, _ = model
    wa_id = new_customer()
    run = rt.wait_status(message(rt, whatsapp("How do I change my delivery address?", wa_id=wa_id)), "completed")
    decided = output(run, "decide")
    assert (decided["action"], decided["vetted"], decided["decided_by"]) == ("reply", False, f"openai:{TIER_1}")
    assert sent_to(rt, wa_id, 1)[-1]["text"]["body"] == ADDRESS_ANSWER


def test_given_answers_that_never_validate_then_retry_fallback_and_a_hand_off_with_the_holding_reply(
        model: tuple[Runtime, FakeOpenAI]) -> None:
    rt, fake = model
    wa_id = new_customer()
    run = rt.wait_status(message(rt, whatsapp("this answer is never valid", wa_id=wa_id)), "completed")

    assert attempts(run) == [(1, TIER_1, "invalid_output"), (1, TIER_1, "invalid_output"),
                             (2, TIER_2, "invalid_output"), (2, TIER_2, "invalid_output")]
    # The retry told the model what was wrong with its answer
    retried = [r for r in fake.requests if "never valid" in json.dumps(r.messages)][1]
    assert "confidence" in json.dumps(retried.messages[-1]) or "confidence" in json.dumps(retried.messages)
    assert steps(run)[-5:] == ["decide", "hand_off", "send", "store", "release"]
    assert output(run, "hand_off")["handoff_reason"] == "ai_escalated:all_tiers_failed"
    (holding,) = sent_to(rt, wa_id, 1)
    assert holding["text"]["body"].startswith("Thanks for your message. A person from our team will pick this up")
    assert [p for p in slack_posts(rt, SUPPORT_CHANNEL) if run["run_id"] in p["text"]]


def test_given_a_model_reply_with_a_promise_then_the_guardrail_sends_the_holding_reply_instead(
        model: tuple[Runtime, FakeOpenAI]) -> None:
    rt, _ = model
    wa_id = new_customer()
    run = rt.wait_status(message(rt, whatsapp("I want a refund for my broken lamp", wa_id=wa_id)), "completed")
    decided = output(run, "decide")
    assert decided["action"] == "hand_off_to_human" and decided["guardrail"] == ["commitment"]
    assert output(run, "hand_off")["handoff_reason"] == "guardrail:commitment"
    bodies = sent_to(rt, wa_id, 1)
    assert [b["text"]["body"] for b in bodies] == [
        "Thanks for your message. A person from our team will pick this up shortly and reply here."]


def test_given_an_unsure_answer_then_a_clarification_instead_of_a_guess(model: tuple[Runtime, FakeOpenAI]) -> None:
    rt, _ = model
    wa_id = new_customer()
    run = rt.wait_status(message(rt, whatsapp("maybe the thing", wa_id=wa_id)), "completed")
    decided = output(run, "decide")
    assert (decided["action"], decided["vetted"], decided["guardrail"]) == ("ask_clarification", True,
                                                                             ["low_confidence"])
    assert sent_to(rt, wa_id, 1)[-1]["type"] == "interactive"


def test_given_a_message_while_a_turn_runs_then_it_joins_and_the_next_turn_answers_it(
        model: tuple[Runtime, FakeOpenAI]) -> None:
    rt, _ = model
    wa_id = new_customer()
    first = message(rt, whatsapp("please answer slowly", wa_id=wa_id))
    rt.wait_for(first, lambda r: "decide" in steps(r), what="its decide step")  # past the burst's window
    second = message(rt, whatsapp("Can I talk to a person?", wa_id=wa_id))

    joined = rt.wait_status(second, "completed")
    assert output(joined, "receive") == {**output(joined, "receive"), "outcome": "joined", "turn_run": first}
    done = rt.wait_status(first, "completed")
    assert output(done, "collect")["messages"] == 1  # collected before the second message came
    released = output(done, "release")
    assert released["waiting"] == 1 and released["next_turn_run"]
    follow_up = rt.wait_status(released["next_turn_run"], "completed")
    assert follow_up["workflow"] == "assistant" and output(follow_up, "collect")["messages"] == 1
    assert output(follow_up, "decide")["action"] == "hand_off_to_human"
    assert [b["text"]["body"][:20] for b in sent_to(rt, wa_id, 2)] == [ADDRESS_ANSWER[:20],
                                                                       "Thanks for your mess"]


def test_given_a_streamed_answer_then_its_pieces_are_delta_events_before_the_checked_reply_and_the_stream_ends(
        model: tuple[Runtime, FakeOpenAI]) -> None:
    rt, fake = model
    wa_id = new_customer()
    streamed_before = fake.streamed
    run_id = message(rt, whatsapp("How do I change my delivery address, please?", wa_id=wa_id))

    events: list[dict[str, str]] = []
    last = None
    for _ in range(15):  # reconnecting after the last id, as EventSource does, until the stream ends
        response = read(rt, run_id, last)
        assert response.status_code == 200, response.text
        got = parse(response.text)
        events += [e for e in got if e.get("event") in ("entry", "delta", "end")]
        last = next((e["id"] for e in reversed(got) if "id" in e), last)
        if any(e.get("event") == "end" for e in got):
            break
    assert events[-1]["event"] == "end" and json.loads(events[-1]["data"])["status"] == "completed"
    ids = [e["id"] for e in events if "id" in e]
    assert len(ids) == len(set(ids))  # each once

    deltas = [json.loads(e["data"]) for e in events if e["event"] == "delta"]
    assert len(deltas) >= 2 and {d["step"] for d in deltas} == {"decide"}
    assert [d["details"]["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    streamed = json.loads("".join(d["details"]["text"] for d in deltas))
    assert streamed["action"] == {"action": "reply", "text": ADDRESS_ANSWER}
    assert fake.streamed > streamed_before
    # The checked reply is the step's own entry, after its pieces; it is what the customer got
    entries = [json.loads(e["data"]) for e in events if e["event"] == "entry"]
    position = {e["id"]: i for i, e in enumerate(events) if "id" in e}
    reply_event = next(e for e in events if e["event"] == "entry" and json.loads(e["data"])["step"] == "decide"
                       and "kind" not in json.loads(e["data"])["details"])
    assert all(position[e["id"]] < position[reply_event["id"]] for e in events if e["event"] == "delta")
    assert any(e["step"] == "send" for e in entries)
    assert sent_to(rt, wa_id, 1)[-1]["text"]["body"] == ADDRESS_ANSWER


def test_given_a_restart_mid_turn_then_the_turn_resumes_and_the_customer_gets_one_reply(
        model: tuple[Runtime, FakeOpenAI]) -> None:
    """Ctrl-C while the model is still answering, then ``interlock run`` again: the execution resumes where it was,
    the reply goes out once, and the conversation's claim is released for its next message. (Last in this module:
    the local fakes start empty again after a restart.)"""
    rt, _ = model
    wa_id = new_customer()
    run_id = message(rt, whatsapp("please answer very slowly", wa_id=wa_id))
    rt.wait_for(run_id, lambda r: "decide" in steps(r), what="its decide step")
    assert sent_to(rt, wa_id, 1, timeout=0) == []  # the model has not answered yet

    rt.restart()

    done = rt.wait_status(run_id, "completed", timeout=90)
    assert steps(done)[-3:] == ["send", "store", "release"]
    assert [b["text"]["body"] for b in sent_to(rt, wa_id, 2, timeout=3)] == [ADDRESS_ANSWER]
    after = rt.wait_status(message(rt, whatsapp("thanks", wa_id=wa_id)), "completed")
    assert output(after, "receive")["outcome"] == "turn" and output(after, "collect")["history_turns"] == 1
