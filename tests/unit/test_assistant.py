"""The assistant's deterministic side: the offline decision, the guardrail over the model's words, the vetted order
answers, the support channel's escaping, its settings, and its automatic path's time budget."""

from __future__ import annotations

import json

import pytest
from interlock.kit import registry
from interlock.kit.budget import EXPRESS_CAP_SECONDS, worst_case_seconds
from interlock.topology import TOPOLOGY
from interlock.workflows.assistant import limits, rules
from interlock.workflows.assistant.decisions import ACTIONS, ASSISTANT_TURN, TurnOutput, offline_turn
from interlock.workflows.assistant.models import OrderFacts
from openai.lib._pydantic import to_strict_json_schema


def request(*texts: str, reply_id: str | None = None, expecting: str | None = None) -> dict[str, object]:
    messages = [{"kind": "text", "text": t, "reply_id": None} for t in texts]
    if reply_id:
        messages.append({"kind": "interactive_reply", "text": "a button", "reply_id": reply_id})
    return {"channel": "whatsapp", "expecting": expecting, "messages": messages}


@pytest.mark.parametrize(("req", "action"), [
    (request("where is so-10042 please"), "look_up_order"),
    (request("I want to speak to a human"), "hand_off_to_human"),
    (request("hi"), "ask_clarification"),
    (request("ok"), "ask_clarification"),
    (request("broken"), "ask_clarification"),  # one word is no report: ask
    (request("the lamp I got is broken"), "create_task"),
    (request("It crashes on every start", expecting="problem_description"), "create_task"),
    (request(reply_id="talk_to_person"), "hand_off_to_human"),
    (request(reply_id="order_status"), "reply"),
])
def test_the_offline_decision_takes_the_clear_cases_and_asks_about_the_rest(req: dict[str, object],
                                                                              action: str) -> None:
    assert offline_turn(req).action.action == action


def test_offline_a_billing_problem_goes_to_billing_and_an_unreadable_message_gets_the_vetted_answer() -> None:
    assert rules.offline_turn(request("My invoice has a wrong VAT charge")) == {
        "action": "create_task", "title": "My invoice has a wrong VAT charge", "team": "billing"}
    assert rules.offline_turn({"messages": [{"kind": "unsupported", "text": ""}]}) == {
        "action": "reply", "text": rules.UNSUPPORTED_REPLY}


@pytest.mark.parametrize(("text", "rule"), [("We will refund you within 2 days.", "commitment"),
                                            ("It costs $40 to reship.", "amount"),
                                            ("See https://evil.example/reset", "link")])
def test_model_words_that_trip_the_guardrail_are_never_sent(text: str, rule: str) -> None:
    reply = rules.vet({"action": "reply", "text": text}, vetted=False)
    assert (reply.action, reply.text, reply.guardrail) == ("hand_off_to_human", rules.HOLDING_REPLY, [rule])
    assert reply.handoff_reason == f"guardrail:{rule}"


def test_a_buttons_title_is_checked_too_and_clean_words_go_out_unvetted() -> None:
    tripped = rules.vet({"action": "ask_clarification", "question": "Which one?",
                         "options": [{"id": "a", "title": "Get $5 off"}]}, vetted=False)
    assert tripped.action == "hand_off_to_human"
    clean = rules.vet({"action": "reply", "text": "You can change it in the app."}, vetted=False)
    assert (clean.action, clean.text, clean.vetted, clean.expects) == ("reply", "You can change it in the app.",
                                                                       False, None)
    asked = rules.vet({"action": "reply", "text": rules.ASK_PROBLEM}, vetted=True)
    assert asked.expects == "problem_description"


def test_the_vetted_order_answers() -> None:
    shipped = OrderFacts(number="SO-1", found=True, status="shipped", shipped_on="2026-11-28", carrier="DHL",
                         tracking_number="JD1", items=2)
    assert rules.order_text(shipped) == "Order SO-1 shipped on 2026-11-28 with DHL, tracking number JD1."
    assert rules.order_text(OrderFacts(number="SO-9", found=False)).startswith("I could not find order SO-9")
    assert rules.order_text(OrderFacts(number="SO-9", found=False, partial=True)) == rules.ORDER_UNAVAILABLE
    assert "customer_phone" not in rules.order_facts_for_model(shipped)


def test_a_system_of_records_odd_values_never_stand_in_a_vetted_text() -> None:
    odd = OrderFacts(number="SO-1", found=True, status="shipped", shipped_on="2026-11-28",
                     carrier="see evil.example/claim", tracking_number="JD1\nhttps://x.example")
    assert rules.order_text(odd) == "Order SO-1 shipped on 2026-11-28 with the carrier, tracking number not known yet."
    assert rules.order_text(OrderFacts(number="SO-1", found=True, status="lost at sea")) == \
        "Order SO-1 is being handled."
    assert rules.placeable("task_0a1b2c") == "task_0a1b2c" and rules.placeable("<script>") is None
    assert rules.placeable("Royal Mail", "name") == "Royal Mail" and rules.placeable("$5 off", "name") is None


def test_the_support_channel_sees_the_customers_words_escaped_and_the_newest_when_long() -> None:
    assert rules.transcript([("customer", "<!channel> <https://x.example|click> & more")]) == \
        "customer: &lt;!channel&gt; &lt;https://x.example|click&gt; &amp; more"
    long = rules.transcript([("customer", f"{i} " + "x" * 400) for i in range(20)], max_chars=1000)
    assert len(long) <= 1000 and long.splitlines()[-1].startswith("customer: 19 ")


@pytest.mark.parametrize(("values", "problem"), [
    ({"assistant_debounce_seconds": "21"}, "assistant_debounce_seconds must be between 0 and 20, not 21"),
    ({"assistant_history_turns": "lots"}, "assistant_history_turns must be a whole number, not 'lots'"),
    ({"assistant_reengagement_template": "Hello World"}, "assistant_reengagement_template must be a template"),
    ({"assistant_support_channel": "support"}, "assistant_support_channel must be a Slack channel id"),
])
def test_a_bad_setting_is_refused_with_its_name(values: dict[str, str], problem: str) -> None:
    (found,) = limits.check_settings(values)
    assert found.startswith(problem)


def test_the_settings_defaults_and_forms() -> None:
    assert limits.check_settings({}) == []
    assert limits.template("hello_world") == ("hello_world", "en_US")
    assert limits.template("order_update:pt_BR") == ("order_update", "pt_BR")
    assert limits.template("") is None and limits.support_channel("") is None
    assert limits.support_channel("#support") == "#support"


def test_the_turn_schema_is_one_strict_union_of_the_allowlists_shapes() -> None:
    schema = to_strict_json_schema(TurnOutput)
    variants = schema["properties"]["action"]["anyOf"]
    names = sorted(schema["$defs"][v["$ref"].split("/")[-1]]["properties"]["action"]["const"] for v in variants)
    assert names == sorted(ACTIONS) == sorted(ASSISTANT_TURN.allowed_actions)
    assert "oneOf" not in json.dumps(schema)  # strict structured outputs take anyOf only


def test_the_automatic_path_with_the_longest_debounce_fits_expresss_five_minutes() -> None:
    """The budget counts a Wait's fixed Seconds only; the debounce is a SecondsPath, so its maximum is added here."""
    workflow = registry.workflow("assistant")
    machine = next(m for m in TOPOLOGY.state_machines if m.name == "assistant")
    timeouts = {f"${{{name}}}": next(f.timeout_seconds for f in TOPOLOGY.functions if f.name == function)
                for name, function in machine.function_substitutions.items()}
    definition = json.loads(workflow.definition_path("automatic").read_text())
    longest_debounce = limits.WHOLE_SETTINGS["assistant_debounce_seconds"][2]
    assert worst_case_seconds(definition, timeouts) + longest_debounce <= EXPRESS_CAP_SECONDS
