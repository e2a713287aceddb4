"""The workflow kit in the synthesised template: each workflow an EXPRESS machine for its automatic path and a
STANDARD one for its wait, one worker per job type whatever the number of workflows, each with its job's grants,
and the Express machines' endings delivered to the watchdog; a throwaway package becomes the same shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from infra_synthesis import Synthesis, synthesize
from interlock.kit import Job
from interlock.topology import TOPOLOGY
from test_stack import STACK_NAME, function_lid, functions_by_name, state_machines_by_name, statements_of_role
from throwaway_workflow import PACKAGE, importable

from infra.constructs.watchdog import EXPRESS_ENDED_PATTERN

pytestmark = pytest.mark.infra


def _env(s: Synthesis, function: str) -> dict[str, Any]:
    return dict(functions_by_name(s)[function][1]["Properties"]["Environment"]["Variables"])


def test_given_support_triage_then_its_automatic_path_is_express_and_its_wait_standard(synthesis: Synthesis) -> None:
    machines = state_machines_by_name(synthesis)
    assert machines["support_triage"][1]["Properties"]["StateMachineType"] == "EXPRESS"
    assert machines["support_triage-wait"][1]["Properties"]["StateMachineType"] == "STANDARD"
    for name in ("support_triage", "support_triage-wait"):
        logging = machines[name][1]["Properties"]["LoggingConfiguration"]
        assert (logging["Level"], logging["IncludeExecutionData"]) == ("ERROR", False), name


def test_given_the_express_machines_then_their_endings_reach_the_watchdog_by_a_subscription_filter(
    synthesis: Synthesis,
) -> None:
    filters = list(synthesis.of_type("AWS::Logs::SubscriptionFilter").values())
    express = [sm.name for sm in TOPOLOGY.state_machines if sm.type.value == "EXPRESS"]
    assert len(filters) == len(express) >= 1
    groups = synthesis.of_type("AWS::Logs::LogGroup")
    watched = set()
    for f in filters:
        props = f["Properties"]
        assert props["FilterPattern"] == EXPRESS_ENDED_PATTERN
        assert props["DestinationArn"] == {"Fn::GetAtt": [function_lid(synthesis, "run_watchdog"), "Arn"]}
        watched.add(groups[props["LogGroupName"]["Ref"]]["Properties"]["LogGroupName"])
    assert watched == {f"/aws/vendedlogs/states/{STACK_NAME}-{name}" for name in express}
    permissions = [p["Properties"] for p in synthesis.of_type("AWS::Lambda::Permission").values()
                   if p["Properties"].get("Principal") == "logs.amazonaws.com"]
    assert permissions, "CloudWatch Logs may invoke the watchdog"


def test_given_the_workers_then_each_job_has_one_function_with_its_own_grants(synthesis: Synthesis) -> None:
    names = set(functions_by_name(synthesis))
    assert {f"job_{job.value}" for job in Job} <= names
    crm = {name for name in names if "INTERLOCK_CRM_BASE_URL" in _env(synthesis, name)}
    helpdesk = {name for name in names if "INTERLOCK_HELPDESK_BASE_URL" in _env(synthesis, name)}
    ai = {name for name in names if "INTERLOCK_AI_API_KEY_SECRET" in _env(synthesis, name)}
    assert crm == {"job_query", "job_act"}  # reads, and writes to the system of record
    assert helpdesk == {"job_act"}  # only act writes (a reply sent through the helpdesk)
    assert ai == {"job_decide"}


def test_given_the_wait_then_its_role_starts_the_automatic_path_and_the_automatic_path_the_wait(
    synthesis: Synthesis,
) -> None:
    machines = state_machines_by_name(synthesis)
    for name, other in (("support_triage", "support_triage-wait"), ("support_triage-wait", "support_triage")):
        role = machines[name][1]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        starts = [st for st in statements_of_role(synthesis, role) if st["Action"] == "states:StartExecution"]
        assert len(starts) == 1, name
        assert f":stateMachine:{STACK_NAME}-{other}" in json.dumps(starts[0]["Resource"])


def test_given_a_throwaway_workflow_package_then_the_template_has_its_machine_and_no_new_function(
    tmp_path: Path, synthesis: Synthesis,
) -> None:
    with importable(tmp_path / "packages") as package:
        assert package == PACKAGE
        extra = synthesize(tmp_path / "out", {"interlock:extra_workflows": PACKAGE})
    assert extra.error is None, extra.error
    machines = state_machines_by_name(extra)
    props = machines["throwaway_ping"][1]["Properties"]
    assert props["StateMachineType"] == "EXPRESS"
    assert set(props["DefinitionSubstitutions"]) == {"Worker_validate", "Worker_act", "Worker_record"}
    assert props["DefinitionSubstitutions"]["Worker_act"] == {"Fn::GetAtt": [function_lid(extra, "job_act"), "Arn"]}
    assert "throwaway_ping-wait" not in machines  # it never waits
    assert set(functions_by_name(extra)) == set(functions_by_name(synthesis))  # the workers run it
    router = json.dumps(_env(extra, "ingest_router")["INTERLOCK_STATE_MACHINE_ARNS"])
    assert "throwaway_ping" in router and json.dumps({"Ref": machines["throwaway_ping"][0]}) in router
    assert _env(extra, "job_act")["INTERLOCK_EXTRA_WORKFLOWS"] == PACKAGE
    assert len(extra.of_type("AWS::Logs::SubscriptionFilter")) == len(synthesis.of_type(
        "AWS::Logs::SubscriptionFilter")) + 1


def test_given_the_functions_then_they_log_json_without_lambdas_own_info_lines(synthesis: Synthesis) -> None:
    """Lambda's START/END/REPORT lines are INFO system logs: most of a run's log bytes (docs/cost.md)."""
    for name, (_, fn) in functions_by_name(synthesis).items():
        assert fn["Properties"]["LoggingConfig"] == {
            "LogFormat": "JSON", "SystemLogLevel": "WARN", "ApplicationLogLevel": "INFO",
            "LogGroup": fn["Properties"]["LoggingConfig"]["LogGroup"]}, name


def test_given_a_connector_secret_named_then_only_the_workers_granted_that_connector_may_read_it(
    tmp_path: Path, synthesis: Synthesis,
) -> None:
    named = synthesize(tmp_path / "out", {"interlock:slack_token_secret": "interlock/slack/bot-token"})
    assert named.error is None, named.error
    readers = set()
    for name in functions_by_name(named):
        role = functions_by_name(named)[name][1]["Properties"]["Role"]["Fn::GetAtt"][0]
        for st in statements_of_role(named, role):
            if "secretsmanager:GetSecretValue" in json.dumps(st["Action"]) and \
                    "interlock/slack/bot-token" in json.dumps(st["Resource"]):
                readers.add(name)
    assert readers == {"job_notify"}
    assert _env(named, "job_notify")["INTERLOCK_SLACK_TOKEN_SECRET"] == "interlock/slack/bot-token"
    assert "INTERLOCK_SLACK_TOKEN_SECRET" not in _env(named, "job_act")


def test_given_a_slack_token_in_the_context_then_the_synthesis_is_refused(tmp_path: Path) -> None:
    from infra.context import LaptopSettingError

    with pytest.raises(LaptopSettingError, match="slack_token_secret"):
        synthesize(tmp_path / "out", {"interlock:slack_token": "xoxb-123"})


def test_given_a_whatsapp_token_in_the_context_then_the_synthesis_is_refused(tmp_path: Path) -> None:
    """A Graph API token in the template would be readable by anyone who can read the stack."""
    from infra.context import LaptopSettingError

    with pytest.raises(LaptopSettingError, match="whatsapp_token_secret"):
        synthesize(tmp_path / "out", {"interlock:whatsapp_token": "EAAG-123"})
