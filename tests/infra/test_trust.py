"""What the AWS stack tells someone, and what it refuses: alarm subscribers, the front door's alarms and
throttles, concurrency, deploying safely, least privilege, and no approval token in a trace.

Most tests read the session's synthesis (the default settings: no alarm_email, no WAF). The settings that
change the template are synthesised once more, together (``configured``): each synthesis costs seconds.
"""

from __future__ import annotations

import ast
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match
from infra_synthesis import Synthesis, synthesize
from interlock.topology import (
    FUNCTIONS_DIR,
    METRICS_NAMESPACE,
    REPO_ROOT,
    TOPOLOGY,
    Access,
    DeploymentSettings,
    Queue,
)
from packaging.requirements import Requirement
from test_stack import (
    GRANT_ACTIONS,
    _listify,
    actions_of_function,
    function_lid,
    functions_by_name,
    queue_lids,
)

from infra import build_layer
from infra.app import build_app
from infra.app import main as app_main
from infra.constructs.queues import WorkQueue
from infra.context import (
    InvalidSettingError,
    PlaceholderEmailError,
    check_deployable,
    is_placeholder_email,
    setting_names,
)

pytestmark = pytest.mark.infra

ALARM_EMAIL = "oncall@corp.example.io"
CONFIGURED = {
    "interlock:alarm_email": ALARM_EMAIL,
    "interlock:waf_rate_limit": "1000",
    "interlock:reserved_concurrency": "false",
    "interlock:api_rate_webhooks": "40",
}


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    s = synthesize(tmp_path_factory.mktemp("cdk.trust"), context=CONFIGURED)
    assert s.error is None, s.error
    return s


def topic_lid(s: Synthesis) -> str:
    return next(iter(s.of_type("AWS::SNS::Topic")))


def alarms(s: Synthesis) -> list[dict[str, Any]]:
    return [r["Properties"] for r in s.of_type("AWS::CloudWatch::Alarm").values()]


# -- 9. alarms reach someone ---------------------------------------------------------------------------------


def test_given_an_alarm_email_when_synthesised_then_the_alarm_topic_emails_it(configured: Synthesis) -> None:
    configured.template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": ALARM_EMAIL, "TopicArn": {"Ref": topic_lid(configured)},
    })


def test_given_no_alarm_email_when_synthesised_then_nobody_is_subscribed_and_the_synthesis_warns(
    synthesis: Synthesis,
) -> None:
    synthesis.template.resource_count_is("AWS::SNS::Subscription", 0)
    Annotations.from_stack(synthesis.stack).has_warning(
        "/Interlock", Match.string_like_regexp("no interlock:alarm_email: the alarms reach nobody"))


def test_given_no_alarm_email_when_checked_then_stderr_says_the_alarms_reach_nobody(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack = Stack(App(context={"interlock:sender_email": "interlock@corp.io",
                               "interlock:approver_email": "ops@corp.io"}), "Check")
    check_deployable(stack)
    assert "WARNING: no interlock:alarm_email: the alarms reach nobody" in capsys.readouterr().err

    stack = Stack(App(context={"interlock:sender_email": "interlock@corp.io", "interlock:approver_email": "ops@corp.io",
                               "interlock:alarm_email": "oncall@corp.io"}), "Subscribed")
    check_deployable(stack)
    assert capsys.readouterr().err == ""


# -- 10. the front door is watched -------------------------------------------------------------------------


def test_given_api_when_synthesised_then_its_5xx_alarm_the_alarm_topic(synthesis: Synthesis) -> None:
    synthesis.template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AWS/ApiGateway", "MetricName": "5XXError", "Statistic": "Sum", "Period": 300,
        "Threshold": 5, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "AlarmActions": [{"Ref": topic_lid(synthesis)}],
    })


@pytest.mark.parametrize("name", sorted({r.function for r in TOPOLOGY.routes} | {q.consumer for q in TOPOLOGY.queues}))
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_given_a_front_door_function_when_synthesised_then_its_errors_and_throttles_alarm(
    synthesis: Synthesis, name: str, metric: str
) -> None:
    synthesis.template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AWS/Lambda", "MetricName": metric, "Statistic": "Sum", "Threshold": 1,
        "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function_lid(synthesis, name)}}],
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "AlarmActions": [{"Ref": topic_lid(synthesis)}],
    })


def test_given_the_ingests_503s_when_synthesised_then_the_metric_it_counts_them_in_alarms(
    synthesis: Synthesis,
) -> None:
    # Given the metric interlock/ingest/service.py counts at each 503 (tests/unit/test_ingest_unavailable_metric.py)
    source = (REPO_ROOT / "layers/interlock/interlock/ingest/service.py").read_text()
    assert source.count('count("WebhookUnavailable")') == source.count("_error(503") > 0  # one count per 503
    # Then it alarms, for the function that answers them
    synthesis.template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": METRICS_NAMESPACE, "MetricName": "WebhookUnavailable", "Statistic": "Sum", "Threshold": 1,
        "Dimensions": [{"Name": "service", "Value": "webhook_ingest"}],
        "AlarmActions": [{"Ref": topic_lid(synthesis)}],
    })


def method_settings(s: Synthesis) -> dict[tuple[str, str], dict[str, Any]]:
    stage = next(iter(s.of_type("AWS::ApiGateway::Stage").values()))["Properties"]
    return {(ms["HttpMethod"], ms["ResourcePath"].replace("~1", "/")): ms for ms in stage["MethodSettings"]}


@pytest.mark.parametrize("route", TOPOLOGY.routes, ids=lambda r: f"{r.method} {r.path}")
def test_given_a_route_when_synthesised_then_its_method_has_its_groups_own_throttle(
    synthesis: Synthesis, route: Any
) -> None:
    group = route.path.strip("/").split("/")[0]
    assert f"api_rate_{group}" in setting_names(), f"no throttle setting for the /{group} routes"
    rate = int(DeploymentSettings().get(f"api_rate_{group}"))
    ms = method_settings(synthesis)[(route.method, "/" + route.path)]
    assert (ms["ThrottlingRateLimit"], ms["ThrottlingBurstLimit"]) == (rate, 2 * rate)


def test_given_the_default_rates_then_approvals_have_their_own_smaller_bucket_than_webhooks() -> None:
    defaults = DeploymentSettings()
    assert (int(defaults.api_rate_webhooks), int(defaults.api_rate_approvals), int(defaults.api_rate_runs)) == (
        50, 10, 10)


def test_given_a_rate_setting_when_synthesised_then_only_its_groups_methods_follow_it(configured: Synthesis) -> None:
    settings = method_settings(configured)
    assert settings[("POST", "//webhooks/{source}")]["ThrottlingRateLimit"] == 40
    assert settings[("POST", "//approvals/{token}")]["ThrottlingRateLimit"] == 10


def test_given_no_waf_setting_when_synthesised_then_there_is_no_web_acl(synthesis: Synthesis) -> None:
    synthesis.template.resource_count_is("AWS::WAFv2::WebACL", 0)


def test_given_a_waf_rate_limit_when_synthesised_then_a_web_acl_blocks_an_ip_over_it_on_the_stage(
    configured: Synthesis,
) -> None:
    acls = configured.of_type("AWS::WAFv2::WebACL")
    assert len(acls) == 1
    acl_lid, acl = next(iter(acls.items()))
    assert acl["Properties"]["Scope"] == "REGIONAL"
    (rule,) = acl["Properties"]["Rules"]
    assert rule["Action"] == {"Block": {}}
    assert rule["Statement"]["RateBasedStatement"] == {"Limit": 1000, "AggregateKeyType": "IP",
                                                       "EvaluationWindowSec": 300}
    stage_lid = next(iter(configured.of_type("AWS::ApiGateway::Stage")))
    (association,) = configured.of_type("AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_lid, "Arn"]}
    assert {"Ref": stage_lid} in association["Properties"]["ResourceArn"]["Fn::Join"][1]


def test_given_a_bad_waf_rate_limit_when_synthesised_then_it_is_refused() -> None:
    with pytest.raises(InvalidSettingError, match="interlock:waf_rate_limit"):
        build_app(context={"interlock:allow_placeholder_emails": "true", "interlock:waf_rate_limit": "lots"})


# -- 11. concurrency -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("queue", TOPOLOGY.queues, ids=lambda q: q.name)
def test_given_a_queue_when_synthesised_then_its_event_source_caps_concurrency_below_the_consumers_reservation(
    synthesis: Synthesis, queue: Queue
) -> None:
    assert queue.maximum_concurrency is not None
    synthesis.template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "EventSourceArn": {"Fn::GetAtt": [queue_lids(synthesis)[queue.name], "Arn"]},
        "ScalingConfig": {"MaximumConcurrency": queue.maximum_concurrency},
    })
    reserved = TOPOLOGY.function(queue.consumer).reserved_concurrency
    assert reserved is not None and reserved >= queue.maximum_concurrency


@pytest.mark.parametrize("fn", TOPOLOGY.functions, ids=lambda f: f.name)
def test_given_a_function_when_synthesised_then_its_reserved_concurrency_is_the_topologys(
    synthesis: Synthesis, configured: Synthesis, fn: Any
) -> None:
    props = functions_by_name(synthesis)[fn.name][1]["Properties"]
    assert props.get("ReservedConcurrentExecutions") == fn.reserved_concurrency
    # an account too small for reservations turns them off
    assert "ReservedConcurrentExecutions" not in functions_by_name(configured)[fn.name][1]["Properties"]


def test_given_the_topology_then_the_router_ingest_and_approvals_have_reservations() -> None:
    reserved = {f.name: f.reserved_concurrency for f in TOPOLOGY.functions if f.reserved_concurrency}
    assert set(reserved) == {"ingest_router", "webhook_ingest", "approvals_api"}
    # AWS keeps 100 of an account's default 1,000 unreserved
    assert sum(reserved.values()) <= 900


def test_given_a_reservation_below_the_queues_maximum_concurrency_when_connected_then_it_is_refused() -> None:
    stack = Stack(App(), "Concurrency")
    queue = WorkQueue(stack, "Q", spec=Queue(name="q", consumer="c", maximum_concurrency=10))
    fn = lambda_.Function(stack, "C", runtime=lambda_.Runtime.PYTHON_3_13, handler="x.handler",
                          code=lambda_.Code.from_inline("def handler(e, c): pass"))
    with pytest.raises(ValueError, match="reserved concurrency 5 is below the queue's maximum_concurrency 10"):
        queue.connect_consumer(fn, 10, 5)


# -- 12. deploying ----------------------------------------------------------------------------------------------


def test_given_the_api_when_synthesised_then_the_accounts_api_gateway_logging_role_is_set_and_kept(
    synthesis: Synthesis,
) -> None:
    (account_lid, account), = synthesis.of_type("AWS::ApiGateway::Account").items()
    role_lid = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = synthesis.resources[role_lid]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"}
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in str(role["Properties"]["ManagedPolicyArns"])
    # kept when the stack goes: other APIs of the account log through the same role
    assert role["DeletionPolicy"] == account["DeletionPolicy"] == "Retain"
    # the stage, whose access logs need it, is created after it
    stage = next(iter(synthesis.of_type("AWS::ApiGateway::Stage").values()))
    assert account_lid in _listify(stage.get("DependsOn", []))


@pytest.mark.parametrize("address,placeholder", [
    ("approver@example.com", True), ("a@mail.example.org", True), ("x@example.net", True), ("x@host.test", True),
    ("ops@corp.io", False), ("ops@example.company.com", False), ("ops@notexample.com", False),
])
def test_given_an_address_then_placeholder_domains_are_recognised(address: str, placeholder: bool) -> None:
    assert is_placeholder_email(address) is placeholder


def test_given_the_placeholder_addresses_when_the_app_is_built_then_it_refuses_to_synthesise_a_deployable_stack(
) -> None:
    with pytest.raises(PlaceholderEmailError, match=re.escape("interlock:sender_email=interlock@example.com")):
        build_app()
    with pytest.raises(PlaceholderEmailError, match=re.escape("interlock:approver_email=approver@example.com")):
        build_app(context={"interlock:sender_email": "interlock@corp.io"})


def test_given_the_placeholder_addresses_when_the_cdk_runs_the_app_then_it_exits_1_saying_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        app_main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "[interlock] error: refusing to synthesise a deployable stack" in err
    assert "Traceback" not in err


def test_given_the_placeholder_addresses_allowed_when_synthesised_then_it_warns_that_it_must_not_be_deployed(
    synthesis: Synthesis,
) -> None:
    Annotations.from_stack(synthesis.stack).has_warning(
        "/Interlock", Match.string_like_regexp("This template must not be deployed"))


def test_given_the_makefile_then_synth_allows_placeholders_and_deploy_does_not() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = dict(re.findall(r"^(synth|deploy):.*\n\t(.*)$", makefile, flags=re.M))
    assert "interlock:allow_placeholder_emails=true" in targets["synth"]
    assert "allow_placeholder_emails" not in targets["deploy"]


def test_given_the_table_when_synthesised_then_deletion_protection_is_on(synthesis: Synthesis) -> None:
    synthesis.template.has_resource_properties("AWS::DynamoDB::Table", {"DeletionProtectionEnabled": True})


def test_given_the_lock_then_it_pins_every_runtime_dependency_within_pyproject_with_a_hash() -> None:
    lock = build_layer.LOCK.read_text()
    pins = build_layer.read_pins()
    for requirement in map(Requirement, build_layer.requirements()):
        name = build_layer._canonical(requirement.name)
        assert name in pins, f"{name} is not pinned in {build_layer.LOCK.name}: python -m infra.build_layer --lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    # every pin has its wheel's hash, and nothing the Lambda runtime provides is locked (the layer leaves it out)
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", lock)) == len(pins)
    assert not {build_layer._canonical(n) for n in build_layer.RUNTIME_PROVIDED} & set(pins)
    # the venv's constraints are the same pins
    assert build_layer.read_pins(build_layer.CONSTRAINTS) == pins


def test_given_the_venv_the_tests_run_in_then_it_holds_the_locked_versions() -> None:
    pins = build_layer.read_pins()
    with build_layer.PYPROJECT.open("rb") as fh:
        direct = {build_layer._canonical(Requirement(d).name)
                  for d in tomllib.load(fh)["project"]["dependencies"]} & set(pins)
    assert direct
    installed = {name: metadata.version(name) for name in direct}
    assert installed == {name: pins[name] for name in direct}, "make setup installs under layers/constraints.txt"


def test_given_the_layer_build_then_it_installs_the_lock_with_hashes_and_nothing_else() -> None:
    source = Path(build_layer.__file__).read_text()
    assert '"--require-hashes", "--no-deps"' in source and '"-r", str(LOCK)' in source
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "-c layers/constraints.txt" in makefile


# -- 13. least privilege ---------------------------------------------------------------------------------------

DYNAMODB_CALL = re.compile(r"\.(get_item|put_item|update_item|delete_item|query|scan|batch_\w+|transact_\w+)\(")


def test_given_the_shipped_code_then_it_makes_no_batch_call_and_deletes_only_in_the_timeline() -> None:
    package = REPO_ROOT / "layers/interlock/interlock"
    calls: dict[str, set[str]] = {}
    for path in [*package.rglob("*.py"), *FUNCTIONS_DIR.glob("*.py")]:
        if package / "local" in path.parents:
            continue  # the embedded local cloud never runs on AWS
        for op in DYNAMODB_CALL.findall(path.read_text()):
            calls.setdefault(op, set()).add(path.name)
    assert not [op for op in calls if op.startswith("batch_") or op == "scan"], calls
    assert calls.get("delete_item") == {"timeline.py"}


def test_given_functions_when_synthesised_then_no_role_may_batch_and_only_the_ingest_may_delete(
    synthesis: Synthesis,
) -> None:
    # in the timeline: what undoes an acceptance; in a workflow table that declares it deletes (the conversations'
    # inbox), its workers
    deleters = {*TOPOLOGY.granted(Access.TABLE_DELETE), *TOPOLOGY.granted(Access.WORKFLOW_TABLE_DELETE)}
    for fn in TOPOLOGY.functions:
        actions = actions_of_function(synthesis, fn.name)
        assert not {a for a in actions if a.startswith("dynamodb:Batch")}, fn.name
        assert ("dynamodb:DeleteItem" in actions) is (fn.name in deleters), fn.name
        assert not actions & {"states:SendTaskFailure", "states:SendTaskHeartbeat"}, fn.name
    assert TOPOLOGY.granted(Access.TABLE_DELETE) == ["runs_replay", "webhook_ingest"]
    assert {g.target for fn in TOPOLOGY.functions for g in fn.grants
            if g.access is Access.WORKFLOW_TABLE_DELETE} == {t.name for t in TOPOLOGY.workflow_tables if t.deletes}
    assert GRANT_ACTIONS[Access.STATES_CALLBACK] == {"states:SendTaskSuccess"}


def test_given_the_alarm_key_when_synthesised_then_cloudwatch_may_use_it_only_for_this_accounts_alarms(
    synthesis: Synthesis,
) -> None:
    (key,) = synthesis.of_type("AWS::KMS::Key").values()
    statements = [st for st in key["Properties"]["KeyPolicy"]["Statement"]
                  if st.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"]
    assert statements
    for st in statements:
        assert st["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        arn = st["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1]
        assert ":cloudwatch:" in arn and arn[-1] == ":alarm:Interlock-*"


# -- item 5: no approval token in a trace ---------------------------------------------------------------------


def test_given_the_api_stage_when_synthesised_then_api_gateway_does_not_trace_but_lambda_does(
    synthesis: Synthesis,
) -> None:
    stage = next(iter(synthesis.of_type("AWS::ApiGateway::Stage").values()))["Properties"]
    assert stage.get("TracingEnabled") is False
    for _, res in functions_by_name(synthesis).values():
        assert res["Properties"]["TracingConfig"] == {"Mode": "Active"}


def _tracer_options(path: Path) -> dict[str, Any]:
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "capture_lambda_handler"):
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    return {}


TRACED = sorted(f.module for f in TOPOLOGY.functions if _tracer_options(FUNCTIONS_DIR / f"{f.module}.py"))


def test_given_the_handlers_that_see_a_token_then_they_use_the_tracer_decorator_checked_below() -> None:
    assert {"http_approvals", "http_webhook"} <= set(TRACED)


def test_given_the_workers_then_their_shared_handler_records_neither_responses_nor_errors() -> None:
    """Every job's worker is built by interlock.kit.worker.handler; the approve worker's events carry the wait's
    task token, and an error's trace would record the event."""
    import interlock.kit.worker

    workers = [f.module for f in TOPOLOGY.functions if f.module.startswith("job_")]
    assert "job_approve" in workers
    for module in workers:
        assert "from interlock.kit.worker import handler" in (FUNCTIONS_DIR / f"{module}.py").read_text(), module
    options = _tracer_options(Path(interlock.kit.worker.__file__))
    assert options == {"capture_response": False, "capture_error": False}


@pytest.mark.parametrize("module", TRACED)
def test_given_a_handler_then_the_tracer_never_records_its_response_and_token_handlers_not_their_errors(
    module: str,
) -> None:
    options = _tracer_options(FUNCTIONS_DIR / f"{module}.py")
    assert options.get("capture_response") is False, module
    if module == "http_approvals":  # the link's token
        assert options.get("capture_error") is False, module
