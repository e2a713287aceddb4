"""The four context layers a model sees (system, domain, session, request), each within its budget."""

from __future__ import annotations

import json

import pytest
from interlock.ai.context import (
    Budgets,
    ContextBuilder,
    ContextTooLarge,
    SessionItem,
    estimate_tokens,
)
from interlock.ai.decision import DecisionPoint
from interlock.ai.prompts import load_policy, load_prompt
from interlock.ai.runner import policy_dir, prompt_dir
from interlock.settings import AiSettings
from interlock.workflows.support_triage import decisions as triage_decisions
from interlock.workflows.support_triage.decisions import CLASSIFY_TICKET, DRAFT_REPLY

SYSTEM = "You classify support tickets."
DOMAIN = "Refunds are decided by a person."
REQUEST = {"ticket": {"subject": "Invoice question", "body": "Where is my invoice?"}}


def item(n: int, text: str = "validate processing (fields=4)") -> SessionItem:
    return SessionItem(at=f"2024-01-01T10:{n:02d}:00", kind="run", text=f"{text} #{n}")


def test_given_four_layers_when_built_then_the_messages_hold_each_layer_in_order():
    session = [item(1), SessionItem(at="2024-01-01T10:02:00", kind="turn", text="customer: it is still missing")]

    context = ContextBuilder().build(SYSTEM, DOMAIN, session, REQUEST)

    system, user = context.messages
    assert system == {"role": "system", "content": f"{SYSTEM}\n\n# Policies of this workflow\n\n{DOMAIN}"}
    assert user["role"] == "user"
    run_so_far, request = user["content"].split("\n\n# The request\n\n")
    assert run_so_far == ("# This run so far\n\n[2024-01-01T10:01:00] run: validate processing (fields=4) #1\n"
                          "[2024-01-01T10:02:00] turn: customer: it is still missing")
    assert json.loads(request) == REQUEST
    assert context.tokens == {"system": estimate_tokens(SYSTEM), "domain": estimate_tokens(DOMAIN),
                              "session": estimate_tokens(run_so_far.removeprefix("# This run so far\n\n")),
                              "request": estimate_tokens(request)}
    assert context.budgets == {"system": 1500, "domain": 2500, "session": 2000, "request": 3000}
    assert context.total_tokens == sum(context.tokens.values())
    assert context.trimmed == []


def test_given_no_session_when_built_then_the_session_layer_says_so():
    context = ContextBuilder().build(SYSTEM, DOMAIN, [], REQUEST)

    assert "# This run so far\n\n(nothing before this request)" in context.messages[1]["content"]


def test_given_personal_data_in_the_request_when_built_then_it_is_kept_as_is_for_the_model():
    request = {"ticket": {"subject": "Café crème", "body": "Écrivez à zoë@example.com"}}

    context = ContextBuilder().build(SYSTEM, DOMAIN, [], request)

    assert "Café crème" in context.messages[1]["content"]  # not \\u-escaped: the budget counts characters
    assert "zoë@example.com" in context.messages[1]["content"]


def test_given_a_session_over_budget_when_built_then_the_oldest_items_go_first_and_are_recorded():
    session = [item(n, "x" * 150) for n in range(1, 11)]  # about 45 tokens each
    budget = 100

    context = ContextBuilder(Budgets(session=budget)).build(SYSTEM, DOMAIN, session, REQUEST)

    kept = [s for s in session if s.render() in context.messages[1]["content"]]
    assert kept == session[-1:]  # the newest that fit, with the note saying what was left out
    assert [t["at"] for t in context.trimmed] == [s.at for s in session[:-1]]  # oldest first
    assert all(t["layer"] == "session" and t["kind"] == "run" for t in context.trimmed)
    assert [t["tokens"] for t in context.trimmed] == [estimate_tokens(s.render()) for s in session[:-1]]
    assert "(9 earlier item(s) of the conversation and this run's history were left out to fit the budget)" in \
        context.messages[1]["content"]
    assert context.tokens["session"] <= budget  # the note included


def test_given_a_session_within_budget_when_built_then_nothing_is_trimmed():
    session = [item(n) for n in range(5)]

    context = ContextBuilder(Budgets(session=100)).build(SYSTEM, DOMAIN, session, REQUEST)

    assert context.trimmed == []
    assert all(s.render() in context.messages[1]["content"] for s in session)
    assert "left out" not in context.messages[1]["content"]


def test_given_a_request_over_budget_when_built_then_its_longest_string_is_shortened_and_recorded():
    request = {"ticket": {"subject": "Invoice question", "body": "b" * 4000, "note": "n" * 600},
               "tags": ["vip", "eu"]}

    context = ContextBuilder(Budgets(request=300)).build(SYSTEM, DOMAIN, [], request)

    assert context.tokens["request"] <= 300
    sent = json.loads(context.messages[1]["content"].split("# The request\n\n")[1])
    assert sent["ticket"]["body"].endswith(" [shortened]")
    assert sent["ticket"]["body"].startswith("bbbb")
    assert sent["ticket"]["note"] == "n" * 600  # the shorter field is left alone while cutting one suffices
    assert sent["ticket"]["subject"] == "Invoice question"
    assert sent["tags"] == ["vip", "eu"]
    assert context.trimmed == [{"layer": "request", "field": "ticket.body",
                                "chars_removed": 4000 - len(sent["ticket"]["body"].removesuffix(" [shortened]"))}]
    assert request["ticket"]["body"] == "b" * 4000  # the caller's request is not modified


def test_given_a_request_with_long_strings_in_lists_when_over_budget_then_the_list_index_is_recorded():
    request = {"thread": [{"text": "short turn"}, {"text": "t" * 3000}]}

    context = ContextBuilder(Budgets(request=200)).build(SYSTEM, DOMAIN, [], request)

    assert [t["field"] for t in context.trimmed] == ["thread.1.text"]
    assert context.tokens["request"] <= 200


def test_given_a_request_over_budget_with_no_long_text_when_built_then_it_is_too_large():
    request = {f"field_{n}": f"value {n}" for n in range(400)}

    too_large = r"the request layer needs \d+ tokens \(budget 100\) and has no text left to shorten"
    with pytest.raises(ContextTooLarge, match=too_large):
        ContextBuilder(Budgets(request=100)).build(SYSTEM, DOMAIN, [], request)


@pytest.mark.parametrize(("layer", "budgets", "system", "domain"), [
    ("system", Budgets(system=10), "s" * 41, DOMAIN),
    ("domain", Budgets(domain=10), SYSTEM, "d" * 41),
])
def test_given_a_system_or_domain_layer_over_budget_when_built_then_it_is_a_configuration_error(
        layer, budgets, system, domain):
    with pytest.raises(ContextTooLarge, match=f"the {layer} layer needs 11 tokens, over its budget of 10"):
        ContextBuilder(budgets).build(system, domain, [], REQUEST)


def test_given_a_layer_exactly_at_budget_when_built_then_it_fits():
    context = ContextBuilder(Budgets(system=10)).build("s" * 40, DOMAIN, [], REQUEST)

    assert context.tokens["system"] == 10


def test_estimated_tokens_are_four_characters_each_rounded_up():
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def declared_points() -> list[DecisionPoint]:  # type: ignore[type-arg]
    return [value for value in vars(triage_decisions).values() if isinstance(value, DecisionPoint)]


def test_the_declared_decision_points_are_the_triage_ones():
    assert {p.name for p in declared_points()} == {CLASSIFY_TICKET.name, DRAFT_REPLY.name}


@pytest.mark.parametrize("point", declared_points(), ids=lambda p: p.name)
def test_given_each_declared_decision_point_when_built_with_default_budgets_then_its_prompt_and_policy_fit(point):
    prompt = load_prompt(point.prompt, point.prompt_version, directory=prompt_dir(point))
    policy = load_policy(point.policy, policy_dir(point, AiSettings()))
    # A long but ordinary request and a full session, as a real run would bring.
    request = {"ticket": {"subject": "Invoice question", "body": "Where is my invoice? " * 200},
               "classification": {"category": "billing", "confidence": 0.9},
               "account": {"plan": "pro", "tier": "gold"}}
    session = [item(n) for n in range(40)]

    context = ContextBuilder().build(prompt.text, policy, session, request)

    assert all(context.tokens[layer] <= context.budgets[layer] for layer in context.budgets)
    assert [t["layer"] for t in context.trimmed] == []  # 40 history lines and a long body fit as they are
    assert context.messages[0]["content"].startswith(prompt.text)
    assert policy in context.messages[0]["content"]
    assert context.total_tokens + point.max_output_tokens < 20_000  # the default per-run token budget
