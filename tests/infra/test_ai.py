"""The AI decision layer in the synthesised template: the API key's secret and who may read it, the settings
of the functions that call a model, the settings synthesis refuses, the dashboard's AI widgets and the alarm
on each AI function's escalations.

The shared synthesis (conftest.py) is the default deployment: no key stored, no OpenAI-compatible endpoint.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match
from infra_synthesis import Synthesis, synthesize
from interlock.ai.choice import parse_key
from interlock.topology import AI_KEY_SECRET_NAME, METRICS_NAMESPACE, TOPOLOGY, Access, DeploymentSettings
from test_stack import (
    _listify,
    _refs_in,
    functions_by_name,
    role_lid_of_function,
    statements_of_role,
    webhook_secret_lids,
)

from infra.app import STACK_NAME, build_app
from infra.constructs.ai import PLACEHOLDER
from infra.context import InvalidSettingError, check_settings, deployment_setting

pytestmark = pytest.mark.infra

AI_FUNCTIONS = {"job_decide"}  # the decide worker: every workflow's AI decision points
# DeploymentSettings name -> the variable the AI functions read it from
AI_SETTINGS = {
    "ai_provider": "INTERLOCK_AI_PROVIDER",
    "ai_model_tiers": "INTERLOCK_AI_MODEL_TIERS",
    "ai_retries_per_tier": "INTERLOCK_AI_RETRIES_PER_TIER",
    "ai_call_timeout_seconds": "INTERLOCK_AI_CALL_TIMEOUT_SECONDS",
    "ai_run_max_tokens": "INTERLOCK_AI_RUN_MAX_TOKENS",
    "ai_run_max_cost_usd": "INTERLOCK_AI_RUN_MAX_COST_USD",
    "ai_prices": "INTERLOCK_AI_PRICES",
    "openai_base_url": "OPENAI_BASE_URL",
}
AI_METRICS = ("AiDecisions", "AiEscalations", "AiFallbacks", "AiAttemptsFailed", "AiTokensIn", "AiTokensOut",
              "AiCostUsd")


def ai_secret_lid(s: Synthesis) -> str:
    (lid,) = [lid for lid, r in s.of_type("AWS::SecretsManager::Secret").items()
              if r["Properties"]["Name"] == AI_KEY_SECRET_NAME]
    return lid


def env_of(s: Synthesis, name: str) -> dict[str, Any]:
    variables: dict[str, Any] = functions_by_name(s)[name][1]["Properties"]["Environment"]["Variables"]
    return variables


def secret_statements(s: Synthesis, function: str) -> list[tuple[set[str], set[str]]]:
    """(actions, logical ids of the resources) of each statement of the function's role on Secrets Manager."""
    return [
        (set(_listify(st["Action"])), {lid for r in _listify(st["Resource"]) for lid in _refs_in(r)})
        for st in statements_of_role(s, role_lid_of_function(s, function))
        if st["Effect"] == "Allow" and any(a.startswith("secretsmanager:") for a in _listify(st["Action"]))
    ]


def dashboard_metrics(s: Synthesis) -> list[list[Any]]:
    """Every metric of the dashboard, as CloudWatch reads it: [namespace, name, dimension, value, ..., {options}].

    The body is a Fn::Join of text and tokens (region, alarm ARNs); the tokens sit inside JSON strings, so a
    stand-in string for each gives the JSON CloudWatch will parse."""
    (dashboard,) = s.of_type("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    found: list[list[Any]] = []
    for widget in json.loads(text)["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            # a line may repeat the previous one's fields as "..."; CDK always writes them in full
            found.append(line)
    return found


# -- the topology --------------------------------------------------------------------------------------------


def test_given_the_topology_then_the_two_triage_decisions_alone_may_read_the_key_with_time_and_memory_to_call() -> None:
    assert set(TOPOLOGY.granted(Access.AI_KEY_READ)) == AI_FUNCTIONS
    for name in AI_FUNCTIONS:
        fn = TOPOLOGY.function(name)
        assert (fn.timeout_seconds, fn.memory_mb) == (30, 1024), name


# -- the secret ----------------------------------------------------------------------------------------------


def test_given_a_fresh_deployment_when_synthesised_then_the_ai_key_secret_holds_no_key_and_is_retained(
    synthesis: Synthesis,
) -> None:
    synthesis.template.has_resource("AWS::SecretsManager::Secret", {
        "Properties": Match.object_like({
            "Name": AI_KEY_SECRET_NAME,
            "SecretString": PLACEHOLDER,
            "Description": Match.string_like_regexp(r"API key.*offline provider"),
        }),
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
    })
    # Secrets Manager refuses an empty value: the placeholder is one the functions read as "no key", so offline
    assert PLACEHOLDER
    assert parse_key(PLACEHOLDER) is None
    output = synthesis.raw["Outputs"]["AiApiKeySecretName"]
    assert set(_refs_in(output["Value"])) == {ai_secret_lid(synthesis)}
    assert "docs/deploy.md" in output["Description"]


def test_given_the_ai_key_when_synthesised_then_only_the_ai_functions_read_it_and_only_its_value(
    synthesis: Synthesis,
) -> None:
    ai_key = ai_secret_lid(synthesis)
    readers = {f.name for f in TOPOLOGY.functions
               if any(ai_key in targets for _, targets in secret_statements(synthesis, f.name))}
    assert readers == AI_FUNCTIONS
    for name in AI_FUNCTIONS:
        # Given no grant to the webhook secrets before, none now: the AI functions read their key and nothing else
        assert not any(g.access is Access.SECRETS_READ for g in TOPOLOGY.function(name).grants)
        assert secret_statements(synthesis, name) == [({"secretsmanager:GetSecretValue"}, {ai_key})], name
        for _, targets in secret_statements(synthesis, name):
            assert not targets & webhook_secret_lids(synthesis)


# -- the functions' settings ---------------------------------------------------------------------------------


def test_given_ai_functions_when_synthesised_then_they_run_30_seconds_with_1024_mb(synthesis: Synthesis) -> None:
    for name in AI_FUNCTIONS:
        props = functions_by_name(synthesis)[name][1]["Properties"]
        assert (props["Timeout"], props["MemorySize"]) == (30, 1024), name


def test_given_default_settings_when_synthesised_then_ai_functions_name_the_secret_and_leave_the_base_url_unset(
    synthesis: Synthesis,
) -> None:
    defaults = DeploymentSettings()
    for name in AI_FUNCTIONS:
        env = env_of(synthesis, name)
        assert env["INTERLOCK_AI_API_KEY_SECRET"] == AI_KEY_SECRET_NAME
        # the openai SDK reads OPENAI_BASE_URL itself, and an empty one is a URL to it: unset means OpenAI's own
        assert "OPENAI_BASE_URL" not in env
        for setting, variable in AI_SETTINGS.items():
            if variable != "OPENAI_BASE_URL":
                assert env[variable] == defaults.get(setting), (name, variable)
    for fn in TOPOLOGY.functions:
        if fn.name not in AI_FUNCTIONS:
            env = env_of(synthesis, fn.name)
            assert not [k for k in env if k.startswith(("INTERLOCK_AI_", "OPENAI_"))], fn.name


def test_given_ai_settings_in_context_when_synthesised_then_they_reach_the_ai_functions_and_nag_stays_clean(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Given an OpenAI-compatible endpoint and every AI setting of the deployment set in context
    context = {
        "ai_provider": "openai",
        "ai_model_tiers": "gpt-4.1,gpt-4.1-mini,gpt-4.1-nano",
        "ai_retries_per_tier": "2",
        "ai_call_timeout_seconds": "15",
        "ai_run_max_tokens": "50000",
        "ai_run_max_cost_usd": "0.25",
        "ai_prices": '{"gpt-4.1": {"input": 1.5, "output": 6}}',
        "openai_base_url": "https://my-resource.openai.azure.com/openai/v1/",
    }
    assert set(context) == set(AI_SETTINGS)
    s = synthesize(tmp_path_factory.mktemp("cdk.ai"), context={f"interlock:{k}": v for k, v in context.items()})

    # Then the synthesis passes cdk-nag
    assert s.error is None, s.error
    # and the AI functions read each setting from its variable, the key from the same secret
    for name in AI_FUNCTIONS:
        env = env_of(s, name)
        for setting, variable in AI_SETTINGS.items():
            assert env[variable] == context[setting], (name, variable)
        assert env["INTERLOCK_AI_API_KEY_SECRET"] == AI_KEY_SECRET_NAME
    # and no other function gets the endpoint
    holders = {fn.name for fn in TOPOLOGY.functions if "OPENAI_BASE_URL" in env_of(s, fn.name)}
    assert holders == AI_FUNCTIONS


# -- settings synthesis refuses --------------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "value"), [
    ("ai_provider", "gpt"),
    ("ai_provider", "OpenAI"),
    ("ai_model_tiers", " , "),
    ("ai_retries_per_tier", "-1"),
    ("ai_retries_per_tier", "many"),
    ("ai_call_timeout_seconds", "0"),
    ("ai_run_max_tokens", "0"),
    ("ai_run_max_cost_usd", "free"),
    ("ai_prices", "{not json"),
    ("ai_prices", '{"gpt-4.1": {"input": -1, "output": 1}}'),
    ("openai_base_url", "my-resource.openai.azure.com/openai/v1"),
    ("openai_base_url", "ftp://models.example.com/v1"),
    ("openai_base_url", "https://models.example.com/v1?api-version=1"),
    ("openai_base_url", " https://models.example.com/v1"),
], ids=lambda v: v if isinstance(v, str) and v.startswith(("ai_", "openai")) else None)
def test_given_a_bad_ai_setting_when_checked_then_synthesis_refuses_it_naming_the_context_key(
    setting: str, value: str,
) -> None:
    stack = Stack(App(context={f"interlock:{setting}": value}), "BadAi")
    with pytest.raises(InvalidSettingError, match=re.escape(f"interlock:{setting}")):
        check_settings(stack)


@pytest.mark.parametrize("context", [
    {},
    {"interlock:ai_provider": "offline"},
    {"interlock:ai_provider": "openai", "interlock:ai_model_tiers": "llama3.1", "interlock:ai_retries_per_tier": "0",
     "interlock:ai_prices": '{"llama3.1": {"input": 0, "output": 0}}'},
    {"interlock:openai_base_url": "https://my-resource.openai.azure.com/openai/v1/"},
    {"interlock:openai_base_url": "http://10.0.0.12:8000/v1"},  # vLLM
    {"interlock:openai_base_url": "https://litellm.example.com"},
], ids=lambda c: ",".join(f"{k.removeprefix('interlock:')}={v}" for k, v in c.items()) or "defaults")
def test_given_good_ai_settings_when_checked_then_they_pass(context: dict[str, str]) -> None:
    check_settings(Stack(App(context=context), "GoodAi"))


def test_given_prices_as_an_object_in_cdk_json_when_resolved_then_the_functions_get_json_text() -> None:
    prices = {"llama3.1": {"input": 0, "output": 0}, "gpt-4.1": {"input": 1.5, "output": 6}}
    stack = Stack(App(context={"interlock:ai_prices": prices}), "PricesObject")
    assert json.loads(deployment_setting(stack, "ai_prices")) == prices
    check_settings(stack)


def test_given_a_bad_ai_provider_when_the_app_is_built_then_it_stops_before_anything_is_created() -> None:
    with pytest.raises(InvalidSettingError, match=r"interlock:ai_provider: .*'auto', 'openai' or 'offline'"):
        build_app(context={"interlock:ai_provider": "gpt"})


# -- the dashboard -------------------------------------------------------------------------------------------


def test_given_dashboard_when_synthesised_then_it_shows_every_ai_metric_of_every_ai_function(
    synthesis: Synthesis,
) -> None:
    lines = dashboard_metrics(synthesis)
    shown = {(line[0], line[1], line[2], line[3]) for line in lines if line and line[0] == METRICS_NAMESPACE}
    for metric in AI_METRICS:
        for name in AI_FUNCTIONS:
            # the dimension Powertools Metrics adds: service = POWERTOOLS_SERVICE_NAME, the function's name
            assert (METRICS_NAMESPACE, metric, "service", name) in shown, (metric, name)
    assert not {line[3] for line in shown if line[1].startswith("Ai")} - AI_FUNCTIONS
    # summed, as counts are; and an escalation rate per function
    ai_lines = [line for line in lines if line and line[0] == METRICS_NAMESPACE and line[1].startswith("Ai")]
    assert all(line[-1].get("stat") == "Sum" for line in ai_lines if isinstance(line[-1], dict))
    expressions = [line[0]["expression"] for line in lines if line and isinstance(line[0], dict)
                   and "expression" in line[0]]
    assert len([e for e in expressions if e.startswith("100 * e")]) == len(AI_FUNCTIONS)


def ai_escalation_alarms(s: Synthesis) -> dict[str, dict[str, Any]]:
    """The AI escalation alarms' properties, by the function whose decisions they watch."""
    found: dict[str, dict[str, Any]] = {}
    for alarm in s.of_type("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        name = str(props.get("AlarmName", ""))
        if name.endswith("-ai-escalations"):
            found[name.removeprefix(f"{STACK_NAME}-").removesuffix("-ai-escalations")] = props
    return found


def test_given_ai_functions_when_synthesised_then_each_alarms_on_most_of_its_decisions_escalating(
    synthesis: Synthesis,
) -> None:
    """A revoked key (401 on every call) or an unknown model escalates every run to a person: that pages."""
    alarms = ai_escalation_alarms(synthesis)
    assert set(alarms) == AI_FUNCTIONS
    topic_lid = next(iter(synthesis.of_type("AWS::SNS::Topic")))
    for name, props in alarms.items():
        # Then it fires at >= 50% escalated, 3 five-minute periods in a row, like the other alarms to the topic
        assert props["Threshold"] == 50, name
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
        assert props["EvaluationPeriods"] == 3, name
        assert props.get("DatapointsToAlarm", 3) == 3, name
        assert props["TreatMissingData"] == "notBreaching", name
        assert props["AlarmActions"] == [{"Ref": topic_lid}], name
        assert props["OKActions"] == [{"Ref": topic_lid}], name
        assert "MetricName" not in props, name  # a metric-math alarm
        # and on the rate over periods of at least 5 decisions (one escalated ticket at night is 0%, not 100%)
        # with a failed model call (offline decisions, which escalate most tickets by design, never fail)
        (expression,) = [m for m in props["Metrics"] if "Expression" in m]
        assert expression["Expression"] == "IF((d >= 5) AND (FILL(f, 0) > 0), 100 * FILL(e, 0) / d, 0)", name
        assert expression["ReturnData"] is True, name
        inputs = {m["Id"]: m for m in props["Metrics"] if "MetricStat" in m}
        assert set(inputs) == {"e", "d", "f"}, name
        for mid, metric in (("e", "AiEscalations"), ("d", "AiDecisions"), ("f", "AiAttemptsFailed")):
            stat = inputs[mid]["MetricStat"]
            assert inputs[mid]["ReturnData"] is False, (name, mid)
            assert stat["Metric"] == {"Namespace": METRICS_NAMESPACE, "MetricName": metric,
                                      "Dimensions": [{"Name": "service", "Value": name}]}, (name, mid)
            assert (stat["Period"], stat["Stat"]) == (300, "Sum"), (name, mid)
        assert "docs/deploy.md" in props["AlarmDescription"], name


def test_given_ai_escalation_alarms_when_synthesised_then_the_dashboard_shows_their_state(
    synthesis: Synthesis,
) -> None:
    (dashboard,) = synthesis.of_type("AWS::CloudWatch::Dashboard").values()
    shown = {lid for part in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1] if not isinstance(part, str)
             for lid in _refs_in(part)}
    alarm_lids = {lid for lid, alarm in synthesis.of_type("AWS::CloudWatch::Alarm").items()
                  if str(alarm["Properties"].get("AlarmName", "")).endswith("-ai-escalations")}
    assert len(alarm_lids) == len(AI_FUNCTIONS)
    assert alarm_lids <= shown
