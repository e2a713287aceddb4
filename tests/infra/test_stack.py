"""The synthesised CloudFormation template against the topology it is built from.

One synthesis per session (see conftest.py). The tests read the template the way CloudFormation will:
every route, function, queue, state machine, secret and execution watch of the topology is there, nothing
else is, and each function's role allows what its grants say and nothing more.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match
from infra_synthesis import Synthesis, synthesize
from interlock.ingest.ports import parse_secret
from interlock.kit import registry
from interlock.topology import (
    AI_KEY_SECRET_NAME,
    FUNCTIONS_DIR,
    METRICS_NAMESPACE,
    TOPOLOGY,
    UNSET_WHEN_EMPTY,
    Access,
    DeploymentSettings,
    Function,
    InvalidPublicBaseUrl,
    InvalidWebhookSource,
    Ref,
    RefKind,
    UnknownWebhookSource,
    WebhookSource,
    public_base_url,
)
from interlock.webhooks.registry import SCHEMES, parse_enabled

from infra import build_layer
from infra.app import STACK_NAME
from infra.constructs.functions import LambdaFunctions, LayerMissingError
from infra.constructs.secrets import PLACEHOLDER, SECRET_FORMATS
from infra.context import UnknownSettingError, check_context, deployment_setting

pytestmark = pytest.mark.infra

# -- what each grant means in IAM: the specification the template is checked against ------------------------

BASE_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
GRANT_ACTIONS = {
    # What interlock/timeline.py calls: no Batch* anywhere, DeleteItem only where an acceptance is undone.
    Access.TABLE_READ: {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"},
    Access.TABLE_WRITE: {"dynamodb:PutItem", "dynamodb:UpdateItem"},
    Access.TABLE_DELETE: {"dynamodb:DeleteItem"},
    Access.QUEUE_SEND: {"sqs:SendMessage"},
    Access.STATES_START: {"states:StartExecution"},
    Access.STATES_CALLBACK: {"states:SendTaskSuccess"},  # a decision, approved or rejected, is a task success
    Access.SES_SEND: {"ses:SendRawEmail", "ses:SendEmail"},
    Access.SECRETS_READ: {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"},
    Access.AI_KEY_READ: {"secretsmanager:GetSecretValue"},  # what Powertools' get_secret calls, nothing more
    # only when the deployment names the connector's secret (none by default; test_kit_stack names one)
    Access.CONNECTOR_SECRET_READ: set(),
    # under the bucket's prefix; ListBucket on the bucket, so that a missing upload is a 404 (constructs/uploads.py)
    Access.BUCKET_PUT: {"s3:PutObject"},
    Access.BUCKET_READ: {"s3:GetObject", "s3:ListBucket"},
    # a workflow's own table, when a workflow declares one (test_triggers_stack.py)
    Access.WORKFLOW_TABLE_READ_WRITE: {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem",
                                       "dynamodb:PutItem", "dynamodb:UpdateItem"},
    # a workflow table that declares it deletes (a conversation's handled inbox messages), that table only
    Access.WORKFLOW_TABLE_DELETE: {"dynamodb:DeleteItem"},
    # a hand-off page's conversation table, read only (the hand-off pages' function)
    Access.WORKFLOW_TABLE_READ: {"dynamodb:GetItem", "dynamodb:Query"},
    # the operator's lists of runs: the timeline table's index, queried (runs_api)
    Access.RUNS_INDEX_READ: {"dynamodb:Query"},
    # the operator's redrive: the DLQ's messages read, made visible again, deleted, and its depth (dlq_api)
    Access.DLQ_REDRIVE: {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                         "sqs:GetQueueAttributes"},
}
QUEUE_CONSUMER_ACTIONS = {
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
}
# A function fed by an execution watch sends its failed asynchronous invocations to the watch's DLQ (Lambda's
# on-failure destination, sent with the function's role).
WATCH_DLQ_ACTIONS = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
ACTIONS_WITHOUT_RESOURCE_SCOPE = {  # AWS supports no resource-level permission for these
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
}
# The warnings a synthesis with the placeholder addresses and no alarm_email raises (infra/context.py).
EXPECTED_WARNINGS = {"Annotation::interlock:placeholderEmails", "Annotation::interlock:noAlarmSubscriber"}
LAMBDA_RETRIED_ERRORS = {"Lambda.ServiceException", "Lambda.TooManyRequestsException"}


# -- reading the template ----------------------------------------------------------------------------------


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _refs_in(value: Any) -> Iterator[str]:
    """Logical ids a template value points at (Ref, Fn::GetAtt, ${Id} in Fn::Sub)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else inner.split(".")[0]
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                yield from (m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(inner, list):
                    yield from _refs_in(inner[1])
            else:
                yield from _refs_in(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _refs_in(inner)


def functions_by_name(s: Synthesis) -> dict[str, tuple[str, dict[str, Any]]]:
    """Topology function name -> (logical id, resource), read from the deployed function names."""
    prefix = f"{STACK_NAME}-"
    found = {}
    for lid, res in s.of_type("AWS::Lambda::Function").items():
        name = res["Properties"]["FunctionName"]
        assert name.startswith(prefix), name
        found[name.removeprefix(prefix)] = (lid, res)
    return found


def function_lid(s: Synthesis, name: str) -> str:
    return functions_by_name(s)[name][0]


def function_name_of_lid(s: Synthesis) -> dict[str, str]:
    return {lid: name for name, (lid, _) in functions_by_name(s).items()}


def role_lid_of_function(s: Synthesis, name: str) -> str:
    role = functions_by_name(s)[name][1]["Properties"]["Role"]
    return str(role["Fn::GetAtt"][0])


def statements_of_role(s: Synthesis, role_lid: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for res in s.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_lid} in res["Properties"]["Roles"]:
            statements += res["Properties"]["PolicyDocument"]["Statement"]
    role = s.resources[role_lid]["Properties"]
    for inline in role.get("Policies", []):
        statements += inline["PolicyDocument"]["Statement"]
    return statements


def actions_of_role(s: Synthesis, role_lid: str) -> set[str]:
    return {a for st in statements_of_role(s, role_lid) if st["Effect"] == "Allow" for a in _listify(st["Action"])}


def actions_of_function(s: Synthesis, name: str) -> set[str]:
    return actions_of_role(s, role_lid_of_function(s, name))


def expected_actions(fn: Function) -> set[str]:
    expected = set(BASE_ACTIONS)
    for grant in fn.grants:
        expected |= GRANT_ACTIONS[grant.access]
    if any(q.consumer == fn.name for q in TOPOLOGY.queues):
        expected |= QUEUE_CONSUMER_ACTIONS
    if any(w.function == fn.name for w in TOPOLOGY.execution_watches):
        expected |= WATCH_DLQ_ACTIONS
    return expected


def queue_lids(s: Synthesis) -> dict[str, str]:
    """Queue name as deployed (without the stack prefix) -> logical id."""
    prefix = f"{STACK_NAME}-"
    return {r["Properties"]["QueueName"].removeprefix(prefix): lid for lid, r in s.of_type("AWS::SQS::Queue").items()}


def rules_by_name(s: Synthesis) -> dict[str, tuple[str, dict[str, Any]]]:
    prefix = f"{STACK_NAME}-"
    return {r["Properties"]["Name"].removeprefix(prefix): (lid, r) for lid, r in s.of_type("AWS::Events::Rule").items()}


def state_machines_by_name(s: Synthesis) -> dict[str, tuple[str, dict[str, Any]]]:
    prefix = f"{STACK_NAME}-"
    return {
        r["Properties"]["StateMachineName"].removeprefix(prefix): (lid, r)
        for lid, r in s.of_type("AWS::StepFunctions::StateMachine").items()
    }


def substituted_definition(s: Synthesis, sm_name: str) -> dict[str, Any]:
    """The ASL as Step Functions will see it, each ``${Placeholder}`` replaced by ``fn:<function name>``."""
    _, res = state_machines_by_name(s)[sm_name]
    text = res["Properties"]["DefinitionString"]
    assert isinstance(text, str)
    names = function_name_of_lid(s)
    others = TOPOLOGY.state_machine(sm_name).state_machine_substitutions
    for placeholder, value in res["Properties"]["DefinitionSubstitutions"].items():
        if placeholder in others:  # the workflow's other machine, by its ARN built from its name: ``sm:<name>``
            text = text.replace("${" + placeholder + "}", f"sm:{others[placeholder]}")
            continue
        text = text.replace("${" + placeholder + "}", f"fn:{names[value['Fn::GetAtt'][0]]}")
    definition: dict[str, Any] = json.loads(text)
    return definition


def task_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from task_states(branch["States"])
        if "Iterator" in state or "ItemProcessor" in state:
            yield from task_states((state.get("ItemProcessor") or state["Iterator"])["States"])


def task_function(state: dict[str, Any]) -> str | None:
    resource = state["Resource"]
    if resource.startswith("fn:"):
        return str(resource.removeprefix("fn:"))
    if resource.startswith("arn:aws:states:::lambda:invoke"):
        target = state["Parameters"]["FunctionName"]
        return str(target.removeprefix("fn:")) if target.startswith("fn:") else None
    return None


def routes_in_template(s: Synthesis) -> set[tuple[str, str, str]]:
    resources = s.of_type("AWS::ApiGateway::Resource")

    def path_of(lid: str) -> str:
        props = resources[lid]["Properties"]
        parent = props["ParentId"]
        prefix = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
        return f"{prefix}/{props['PathPart']}"

    names = function_name_of_lid(s)
    routes = set()
    for method in s.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["HttpMethod"] == "OPTIONS":
            continue
        targets = [names[lid] for lid in _refs_in(props["Integration"]["Uri"]) if lid in names]
        assert len(targets) == 1, props
        routes.add((props["HttpMethod"], path_of(props["ResourceId"]["Ref"]), targets[0]))
    return routes


# -- nothing defined in only one place ---------------------------------------------------------------------


def test_given_topology_when_synthesised_then_functions_queues_routes_machines_and_secrets_match_it_exactly(
    synthesis: Synthesis,
) -> None:
    assert set(functions_by_name(synthesis)) == {f.name for f in TOPOLOGY.functions}
    assert set(queue_lids(synthesis)) == ({q.name for q in TOPOLOGY.queues} | {q.dlq_name for q in TOPOLOGY.queues}
                                          | {w.dlq_name for w in TOPOLOGY.execution_watches})
    assert set(rules_by_name(synthesis)) == {w.name for w in TOPOLOGY.execution_watches}
    assert routes_in_template(synthesis) == {(r.method, r.path, r.function) for r in TOPOLOGY.routes}
    assert set(state_machines_by_name(synthesis)) == {sm.name for sm in TOPOLOGY.state_machines}
    secrets = {r["Properties"]["Name"] for r in synthesis.of_type("AWS::SecretsManager::Secret").values()}
    assert secrets == {TOPOLOGY.secret_name(src.name) for src in TOPOLOGY.webhook_sources} | {AI_KEY_SECRET_NAME}
    # The timeline table, and the workflows' own tables (docs/finance.md, Workflow tables)
    assert len(synthesis.of_type("AWS::DynamoDB::Table")) == 1 + len(TOPOLOGY.workflow_tables)


def timeline_table_lid(synthesis: Synthesis) -> str:
    """The timeline table's logical id (the one keyed as TOPOLOGY.table is; the others are workflow tables)."""
    [lid] = [lid for lid, table in synthesis.of_type("AWS::DynamoDB::Table").items()
             if table["Properties"]["KeySchema"][0]["AttributeName"] == TOPOLOGY.table.partition_key]
    return lid


def workflow_table_lid(synthesis: Synthesis, name: str) -> str:
    """The logical id of the workflow table ``name`` (the one keyed by its declared partition key)."""
    [spec] = [t for t in TOPOLOGY.workflow_tables if t.name == name]
    [lid] = [lid for lid, table in synthesis.of_type("AWS::DynamoDB::Table").items()
             if table["Properties"]["KeySchema"][0]["AttributeName"] == spec.partition_key]
    return lid


@pytest.mark.parametrize("fn", TOPOLOGY.functions, ids=lambda f: f.name)
def test_given_function_when_packaged_then_its_handler_module_defines_handler(fn: Function) -> None:
    """The code asset is functions/: the handler the template names must be there (read, not imported)."""
    module = FUNCTIONS_DIR / f"{fn.module}.py"
    assert module.is_file(), f"{fn.name}: {module} is missing"
    tree = ast.parse(module.read_text(encoding="utf-8"))
    top_level = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} | {
        t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
    }
    assert "handler" in top_level, f"{module} defines no top-level handler"


# -- API Gateway -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", TOPOLOGY.routes, ids=lambda r: f"{r.method} {r.path}")
def test_given_route_when_synthesised_then_it_is_a_lambda_proxy_method(synthesis: Synthesis, route: Any) -> None:
    assert (route.method, route.path, route.function) in routes_in_template(synthesis)
    params = {f"method.request.path.{p}": True for p in re.findall(r"\{(\w+)\}", route.path)}
    synthesis.template.has_resource_properties("AWS::ApiGateway::Method", {
        "HttpMethod": route.method,
        "RequestParameters": params,
        "Integration": {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST",
                        "Uri": Match.object_like({"Fn::Join": Match.any_value()})},
    })


@pytest.mark.parametrize("route", TOPOLOGY.routes, ids=lambda r: f"{r.method} {r.path}")
def test_given_route_auth_when_synthesised_then_the_method_uses_it(synthesis: Synthesis, route: Any) -> None:
    expected = "AWS_IAM" if route.auth == "iam" else "NONE"
    synthesis.template.has_resource_properties("AWS::ApiGateway::Method", {
        "HttpMethod": route.method,
        "RequestParameters": {f"method.request.path.{p}": True for p in re.findall(r"\{(\w+)\}", route.path)},
        "AuthorizationType": expected,
        "Integration": Match.object_like({"Uri": Match.any_value()}),
    })
    if route.path == "/runs/{run_id}":
        assert route.auth == "iam", "run timelines are for operators, not for anyone holding a run id"


def test_given_head_route_when_synthesised_then_head_method_exists(synthesis: Synthesis) -> None:
    heads = {(m, p) for m, p, _ in routes_in_template(synthesis) if m == "HEAD"}
    assert heads == {(r.method, r.path) for r in TOPOLOGY.routes if r.method == "HEAD"}
    assert heads, "the topology has a HEAD route (mail scanners prefetch approval links)"


def test_given_api_when_synthesised_then_prod_stage_is_throttled_untraced_and_access_logged_without_raw_paths(
    synthesis: Synthesis,
) -> None:
    stages = synthesis.of_type("AWS::ApiGateway::Stage")
    assert len(stages) == 1
    props = next(iter(stages.values()))["Properties"]
    assert props["StageName"] == "prod"
    # API Gateway's X-Ray segments record the full URL, so /approvals/{token}'s token: the stage is not traced.
    assert props.get("TracingEnabled") is not True
    throttles = [ms for ms in props["MethodSettings"] if ms.get("ThrottlingRateLimit")]
    assert throttles and all(ms["ThrottlingBurstLimit"] > 0 for ms in throttles)
    log_format = props["AccessLogSetting"]["Format"]
    assert "$context.resourcePath" in log_format
    assert "$context.path" not in log_format, "the raw path carries the approval token"
    assert props["AccessLogSetting"]["DestinationArn"]


def test_given_api_when_synthesised_then_url_is_an_output(synthesis: Synthesis) -> None:
    assert "ApiUrl" in synthesis.raw["Outputs"]


# -- Lambda ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", TOPOLOGY.functions, ids=lambda f: f.name)
def test_given_function_when_synthesised_then_it_runs_python313_on_arm64_with_the_layer(
    synthesis: Synthesis, fn: Function
) -> None:
    _, res = functions_by_name(synthesis)[fn.name]
    props = res["Properties"]
    layer_lids = list(synthesis.of_type("AWS::Lambda::LayerVersion"))
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == fn.handler
    assert props["Layers"] == [{"Ref": layer_lids[0]}]
    assert props["Timeout"] == fn.timeout_seconds
    assert props["MemorySize"] == fn.memory_mb
    assert props["TracingConfig"] == {"Mode": "Active"}
    # Lambda active tracing is on; the X-Ray SDK (Powertools Tracer) is off unless the setting turns it on.
    assert props["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true"
    log_group = synthesis.resources[props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] > 0


def test_given_layer_when_synthesised_then_it_is_one_arm64_python313_layer(synthesis: Synthesis) -> None:
    synthesis.template.resource_count_is("AWS::Lambda::LayerVersion", 1)
    synthesis.template.has_resource_properties("AWS::Lambda::LayerVersion", {
        "CompatibleRuntimes": ["python3.13"], "CompatibleArchitectures": ["arm64"],
    })


@pytest.mark.parametrize("fn", TOPOLOGY.functions, ids=lambda f: f.name)
def test_given_function_env_when_synthesised_then_refs_resolve_to_the_resources_they_name(
    synthesis: Synthesis, fn: Function
) -> None:
    env = functions_by_name(synthesis)[fn.name][1]["Properties"]["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == fn.name
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    table_lid = timeline_table_lid(synthesis)
    queues = queue_lids(synthesis)
    machines = state_machines_by_name(synthesis)
    rest_api_lid = next(iter(synthesis.of_type("AWS::ApiGateway::RestApi")))
    for key, value in fn.env.items():
        if key in UNSET_WHEN_EMPTY and isinstance(value, Ref) and value.kind is RefKind.SETTING \
                and not DeploymentSettings().get(value.name):
            assert key not in env, f"{key} is left unset when empty"
            continue
        got = env[key]
        if not isinstance(value, Ref):
            assert got == value, key
        elif value.kind is RefKind.TABLE_NAME:
            assert got == {"Ref": table_lid}
        elif value.kind is RefKind.QUEUE_URL:
            assert got == {"Ref": queues[value.name]}  # a queue's Ref is its URL
        elif value.kind is RefKind.DLQ_URL:
            assert got == {"Ref": queues[TOPOLOGY.queue(value.name).dlq_name]}
        elif value.kind is RefKind.STATE_MACHINE_ARN:
            assert got == {"Ref": machines[value.name][0]}  # a state machine's Ref is its ARN
        elif value.kind is RefKind.STATE_MACHINE_ARNS:  # {"<workflow>": <its Express machine's ARN>} as JSON
            rendered = json.dumps(got)
            for sm in TOPOLOGY.state_machines:
                inside = json.dumps({"Ref": machines[sm.name][0]}) in rendered
                assert inside is (sm.type.value == "EXPRESS"), sm.name
                if inside:
                    assert f'\\"{sm.workflow}\\"' in rendered, sm.workflow
        elif value.kind is RefKind.API_URL:
            parts = got["Fn::Join"][1]
            assert parts[0] == "https://" and {"Ref": rest_api_lid} in parts
            assert isinstance(parts[-1], str) and parts[-1].endswith("/prod"), "no trailing slash"
        elif value.kind is RefKind.SECRET_PREFIX:
            assert got == TOPOLOGY.secret_prefix
        elif value.kind is RefKind.SETTING:
            assert got == DeploymentSettings().get(value.name)
        elif value.kind is RefKind.WEBHOOK_SOURCES:
            assert got == TOPOLOGY.enabled_sources(DeploymentSettings().enabled_sources)
        elif value.kind is RefKind.AI_KEY_SECRET:
            assert got == AI_KEY_SECRET_NAME
        elif value.kind is RefKind.WORKFLOW_TABLE_NAME:  # a table's Ref is its name
            assert got == {"Ref": workflow_table_lid(synthesis, value.name)}
        elif value.kind is RefKind.BUCKET_NAME:  # a bucket's Ref is its name
            (bucket_lid,) = synthesis.of_type("AWS::S3::Bucket")
            assert got == {"Ref": bucket_lid}
        else:
            pytest.fail(f"{key}: unexpected {value}")


# -- IAM: one role per function, least privilege ------------------------------------------------------------


def test_given_functions_when_synthesised_then_each_has_its_own_role_with_no_managed_policy(
    synthesis: Synthesis,
) -> None:
    roles = [role_lid_of_function(synthesis, f.name) for f in TOPOLOGY.functions]
    assert len(set(roles)) == len(TOPOLOGY.functions)
    for role in roles:
        props = synthesis.resources[role]["Properties"]
        principals = [st["Principal"]["Service"] for st in props["AssumeRolePolicyDocument"]["Statement"]]
        assert principals == ["lambda.amazonaws.com"]
        assert not props.get("ManagedPolicyArns")


@pytest.mark.parametrize("fn", TOPOLOGY.functions, ids=lambda f: f.name)
def test_given_function_grants_when_synthesised_then_its_role_allows_exactly_those_actions(
    synthesis: Synthesis, fn: Function
) -> None:
    assert actions_of_function(synthesis, fn.name) == expected_actions(fn)


@pytest.mark.parametrize("fn", TOPOLOGY.functions, ids=lambda f: f.name)
def test_given_function_role_when_synthesised_then_every_statement_names_its_resources(
    synthesis: Synthesis, fn: Function
) -> None:
    table_lid = timeline_table_lid(synthesis)
    own_logs = functions_by_name(synthesis)[fn.name][1]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    for st in statements_of_role(synthesis, role_lid_of_function(synthesis, fn.name)):
        actions = set(_listify(st["Action"]))
        resources = _listify(st["Resource"])
        if "*" in resources:
            assert actions <= ACTIONS_WITHOUT_RESOURCE_SCOPE, st
            continue
        targets = {lid for r in resources for lid in _refs_in(r)}
        if any(a.startswith("dynamodb:") for a in actions):
            granted = {workflow_table_lid(synthesis, g.target) for g in fn.grants
                       if g.access in (Access.WORKFLOW_TABLE_READ_WRITE, Access.WORKFLOW_TABLE_READ,
                                       Access.WORKFLOW_TABLE_DELETE)}
            assert targets and targets <= {table_lid} | granted, st  # CDK merges statements of the same actions
        if any(a.startswith("logs:") for a in actions):
            assert targets == {own_logs}, st


def test_given_runs_api_when_synthesised_then_it_can_only_read(synthesis: Synthesis) -> None:
    actions = actions_of_function(synthesis, "runs_api")
    assert "dynamodb:PutItem" not in actions
    assert not {a for a in actions if a.startswith(("sqs:", "states:", "ses:", "secretsmanager:"))}
    assert {a for a in actions if a.startswith("dynamodb:")} <= GRANT_ACTIONS[Access.TABLE_READ]


def _holders(synthesis: Synthesis, action: str) -> set[str]:
    return {f.name for f in TOPOLOGY.functions if action in actions_of_function(synthesis, f.name)}


def _granted(access: Access) -> set[str]:
    return {f.name for f in TOPOLOGY.functions if any(g.access is access for g in f.grants)}


def webhook_secret_lids(s: Synthesis) -> set[str]:
    prefix = TOPOLOGY.secret_prefix
    return {lid for lid, r in s.of_type("AWS::SecretsManager::Secret").items()
            if r["Properties"]["Name"].startswith(prefix)}


def test_given_webhook_secrets_when_synthesised_then_only_the_ingest_function_reads_them_all_and_uploads_the_forms(
    synthesis: Synthesis,
) -> None:
    assert _granted(Access.SECRETS_READ) == {"webhook_ingest", "uploads_api"}
    webhook_secrets = webhook_secret_lids(synthesis)
    assert len(webhook_secrets) == len(TOPOLOGY.webhook_sources)
    form_secret = {lid for lid, r in synthesis.of_type("AWS::SecretsManager::Secret").items()
                   if r["Properties"]["Name"] == TOPOLOGY.secret_name("form")}
    readers: dict[str, set[str]] = {}
    for role_lid in synthesis.of_type("AWS::IAM::Role"):
        for st in statements_of_role(synthesis, role_lid):
            targets = {lid for r in _listify(st["Resource"]) for lid in _refs_in(r)}
            if any(a.startswith("secretsmanager:") for a in _listify(st["Action"])) and targets & webhook_secrets:
                readers.setdefault(role_lid, set()).update(targets)
    assert readers == {role_lid_of_function(synthesis, "webhook_ingest"): webhook_secrets,
                       role_lid_of_function(synthesis, "uploads_api"): form_secret}


def test_given_callbacks_when_synthesised_then_only_the_deciders_of_waits_can_send_task_success(
    synthesis: Synthesis,
) -> None:
    """The approvals API ends a wait for a person; the router (the event that ends a wait for it) and the wait worker
    (a wait whose event came first) end a wait for an external event, and only those machines."""
    holders = _holders(synthesis, "states:SendTaskSuccess")
    assert holders == _granted(Access.STATES_CALLBACK) == {"approvals_api", "ingest_router", "job_wait"}
    event_waits = {f"{wf.name}-wait" for wf in registry.workflows().values() if wf.resumers}
    assert event_waits
    for name in ("ingest_router", "job_wait"):
        st = next(st for st in statements_of_role(synthesis, role_lid_of_function(synthesis, name))
                  if "states:SendTaskSuccess" in _listify(st["Action"]))
        rendered = json.dumps(st["Resource"])
        assert all(f"stateMachine:Interlock-{wait}\"" in rendered for wait in event_waits), rendered
        assert rendered.count("stateMachine:") == len(event_waits), rendered


def test_given_workflows_when_synthesised_then_only_the_router_can_start_executions(synthesis: Synthesis) -> None:
    assert _holders(synthesis, "states:StartExecution") == _granted(Access.STATES_START) == {"ingest_router"}


def test_given_queue_send_when_synthesised_then_only_granted_functions_send_to_that_queue(
    synthesis: Synthesis,
) -> None:
    queues = queue_lids(synthesis)
    for fn in TOPOLOGY.functions:
        sends = [st for st in statements_of_role(synthesis, role_lid_of_function(synthesis, fn.name))
                 if "sqs:SendMessage" in _listify(st["Action"])]
        targets = {lid for st in sends for r in _listify(st["Resource"]) for lid in _refs_in(r)}
        granted = {queues[g.target] for g in fn.grants if g.access is Access.QUEUE_SEND}
        dead_letters = {queues[w.dlq_name] for w in TOPOLOGY.execution_watches if w.function == fn.name}
        assert targets == granted | dead_letters, fn.name


def test_given_ses_send_when_synthesised_then_only_the_mailing_functions_may_mail_as_the_sender(
    synthesis: Synthesis,
) -> None:
    # the approval step, the notify step, and an operator's resend of an approval email
    mailers = {"job_approve", "job_notify", "approvals_resend"}
    assert _holders(synthesis, "ses:SendRawEmail") == _granted(Access.SES_SEND) == mailers
    identity_lid = next(iter(synthesis.of_type("AWS::SES::EmailIdentity")))
    for name in mailers:
        st = next(st for st in statements_of_role(synthesis, role_lid_of_function(synthesis, name))
                  if "ses:SendRawEmail" in _listify(st["Action"]))
        rendered = json.dumps(st["Resource"])
        assert identity_lid in rendered and '"*"' not in rendered, name


# -- SQS ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("queue", TOPOLOGY.queues, ids=lambda q: q.name)
def test_given_queue_when_synthesised_then_it_has_a_dlq_with_the_topology_receive_count(
    synthesis: Synthesis, queue: Any
) -> None:
    lids = queue_lids(synthesis)
    props = synthesis.resources[lids[queue.name]]["Properties"]
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [lids[queue.dlq_name], "Arn"]},
        "maxReceiveCount": queue.max_receive_count,
    }
    assert props["VisibilityTimeout"] == queue.visibility_timeout_seconds
    assert props["MessageRetentionPeriod"] == queue.retention_days * 86400
    dlq = synthesis.resources[lids[queue.dlq_name]]["Properties"]
    assert dlq["MessageRetentionPeriod"] == queue.dlq_retention_days * 86400
    for lid in (lids[queue.name], lids[queue.dlq_name]):
        assert synthesis.resources[lid]["Properties"]["SqsManagedSseEnabled"] is True
        policies = [p for p in synthesis.of_type("AWS::SQS::QueuePolicy").values()
                    if {"Ref": lid} in p["Properties"]["Queues"]]
        denies = [st for p in policies for st in p["Properties"]["PolicyDocument"]["Statement"]
                  if st["Effect"] == "Deny" and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}]
        assert denies, f"{lid} does not enforce SSL"


@pytest.mark.parametrize("queue", TOPOLOGY.queues, ids=lambda q: q.name)
def test_given_queue_consumer_when_synthesised_then_event_source_reports_batch_item_failures(
    synthesis: Synthesis, queue: Any
) -> None:
    expected: dict[str, Any] = {
        "EventSourceArn": {"Fn::GetAtt": [queue_lids(synthesis)[queue.name], "Arn"]},
        "FunctionName": {"Ref": function_lid(synthesis, queue.consumer)},
        "BatchSize": queue.batch_size,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    if queue.max_batching_window_seconds:
        expected["MaximumBatchingWindowInSeconds"] = queue.max_batching_window_seconds
    synthesis.template.has_resource_properties("AWS::Lambda::EventSourceMapping", expected)
    consumer = TOPOLOGY.function(queue.consumer)
    assert queue.visibility_timeout_seconds >= consumer.timeout_seconds


@pytest.mark.parametrize("queue", TOPOLOGY.queues, ids=lambda q: q.name)
def test_given_dlq_when_synthesised_then_a_message_in_it_alarms_the_alarm_topic(
    synthesis: Synthesis, queue: Any
) -> None:
    topic_lid = next(iter(synthesis.of_type("AWS::SNS::Topic")))
    synthesis.template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName",
                        "Value": {"Fn::GetAtt": [queue_lids(synthesis)[queue.dlq_name], "QueueName"]}}],
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": 1,
        "AlarmActions": [{"Ref": topic_lid}],
    })


def test_given_alarm_topic_when_synthesised_then_it_is_encrypted_and_a_dashboard_shows_the_flow(
    synthesis: Synthesis,
) -> None:
    topic = next(iter(synthesis.of_type("AWS::SNS::Topic").values()))
    assert topic["Properties"]["KmsMasterKeyId"]
    dashboards = synthesis.of_type("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    body = json.dumps(next(iter(dashboards.values()))["Properties"]["DashboardBody"])
    for metric in ("AWS/ApiGateway", "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage",
                   "ExecutionsFailed", "ExecutionsStarted", "Errors", "Throttles"):
        assert metric in body, metric


# -- Step Functions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sm", TOPOLOGY.state_machines, ids=lambda m: m.name)
def test_given_state_machine_when_synthesised_then_it_has_its_type_is_traced_and_logs_without_execution_data(
    synthesis: Synthesis, sm: Any
) -> None:
    _, res = state_machines_by_name(synthesis)[sm.name]
    props = res["Properties"]
    assert props["StateMachineType"] == sm.type.value
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] in {"ALL", "ERROR"}
    assert logging["IncludeExecutionData"] is False, "approval task tokens must never be logged"


@pytest.mark.parametrize("sm", TOPOLOGY.state_machines, ids=lambda m: m.name)
def test_given_asl_placeholders_when_synthesised_then_each_is_substituted_by_its_function_arn(
    synthesis: Synthesis, sm: Any
) -> None:
    _, res = state_machines_by_name(synthesis)[sm.name]
    subs = res["Properties"]["DefinitionSubstitutions"]
    assert set(subs) == set(sm.function_substitutions) | set(sm.state_machine_substitutions)
    assert {p: subs[p] for p in sm.function_substitutions} == {
        p: {"Fn::GetAtt": [function_lid(synthesis, fn), "Arn"]} for p, fn in sm.function_substitutions.items()}
    for placeholder, other in sm.state_machine_substitutions.items():  # the ARN of the other machine, by its name
        assert f":stateMachine:{STACK_NAME}-{other}" in json.dumps(subs[placeholder]), placeholder
    definition = substituted_definition(synthesis, sm.name)
    assert "${" not in json.dumps(definition)
    used = {task_function(state) for _, state in task_states(definition["States"])} - {None}
    assert used == set(sm.functions())


@pytest.mark.parametrize("sm", TOPOLOGY.state_machines, ids=lambda m: m.name)
def test_given_state_machine_role_when_synthesised_then_it_invokes_exactly_its_step_functions(
    synthesis: Synthesis, sm: Any
) -> None:
    _, res = state_machines_by_name(synthesis)[sm.name]
    role_lid = res["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invokes = [st for st in statements_of_role(synthesis, role_lid)
               if "lambda:InvokeFunction" in _listify(st["Action"])]
    resources = [r for st in invokes for r in _listify(st["Resource"])]
    assert sorted(resources, key=json.dumps) == sorted(
        ({"Fn::GetAtt": [function_lid(synthesis, fn), "Arn"]} for fn in set(sm.functions())), key=json.dumps
    )
    starts = [r for st in statements_of_role(synthesis, role_lid) if "states:StartExecution" in _listify(st["Action"])
              for r in _listify(st["Resource"])]
    assert len(starts) == len(sm.state_machine_substitutions)  # the workflow's other machine, and nothing else
    for other, resource in zip(sorted(sm.state_machine_substitutions.values()), starts, strict=True):
        assert f":stateMachine:{STACK_NAME}-{other}" in json.dumps(resource)
    expected = {"lambda:InvokeFunction"} | ({"states:StartExecution"} if starts else set())
    assert actions_of_role(synthesis, role_lid) - ACTIONS_WITHOUT_RESOURCE_SCOPE == expected


@pytest.mark.parametrize("sm", TOPOLOGY.state_machines, ids=lambda m: m.name)
def test_given_task_states_when_synthesised_then_each_retries_lambda_errors_with_backoff_and_jitter(
    synthesis: Synthesis, sm: Any
) -> None:
    tasks = dict(task_states(substituted_definition(synthesis, sm.name)["States"]))
    assert tasks
    for name, state in tasks.items():
        if state["Resource"].startswith("arn:aws:states:::states:"):  # a start of the other machine: no Lambda
            retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
            assert {"StepFunctions.ThrottlingException", "StepFunctions.AWSStepFunctionsException"} <= retried, name
            continue
        retriers = state.get("Retry", [])
        assert retriers, f"{name} has no Retry"
        for retrier in retriers:
            assert retrier["BackoffRate"] >= 1, name
            assert retrier["JitterStrategy"] == "FULL", name
            assert retrier["MaxAttempts"] >= 1, name
        retried = {e for r in retriers for e in r["ErrorEquals"]}
        assert retried >= LAMBDA_RETRIED_ERRORS, name


@pytest.mark.parametrize("sm", TOPOLOGY.state_machines, ids=lambda m: m.name)
def test_given_task_states_when_synthesised_then_every_working_task_catches_all_errors(
    synthesis: Synthesis, sm: Any
) -> None:
    """Every Task has a Catch that ends in a recorded failure, except the tasks that *are* that recording:
    tasks running a function a Catch hands failures to (the outcome recorder). Their own failure, after
    their retries, fails the execution, which raises the executions-failed alarm."""
    states = substituted_definition(synthesis, sm.name)["States"]
    tasks = dict(task_states(states))
    catch_targets = {c["Next"] for _, st in tasks.items() for c in st.get("Catch", [])}
    assert catch_targets <= set(states)
    recorders = {task_function(states[t]) for t in catch_targets if states[t]["Type"] == "Task"}
    for name, state in tasks.items():
        if task_function(state) in recorders:
            continue
        catchers = state.get("Catch", [])
        assert catchers, f"{name} has no Catch"
        assert "States.ALL" in catchers[-1]["ErrorEquals"], f"{name}: the last catcher must catch States.ALL"
        # ResultPath null keeps the input as it was; absent ("$"), the error would replace the run's state
        assert all("ResultPath" in c and c["ResultPath"] != "$" for c in catchers), \
            f"{name}: a catcher would drop the run's input"


@pytest.mark.parametrize("sm", TOPOLOGY.state_machines, ids=lambda m: m.name)
def test_given_callback_tasks_when_synthesised_then_each_waits_with_a_timeout(synthesis: Synthesis, sm: Any) -> None:
    tasks = dict(task_states(substituted_definition(synthesis, sm.name)["States"]))
    waiting = {n: s for n, s in tasks.items() if s["Resource"].endswith(".waitForTaskToken")}
    for name, state in waiting.items():
        assert "TimeoutSeconds" in state or "TimeoutSecondsPath" in state, name
        assert any("States.Timeout" in c["ErrorEquals"] for c in state["Catch"]), name
        assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token", name


# -- EventBridge: the execution watches (the watchdog under the workflows' Catch blocks) --------------------


@pytest.mark.parametrize("watch", TOPOLOGY.execution_watches, ids=lambda w: w.name)
def test_given_execution_watch_when_synthesised_then_its_rule_matches_those_statuses_of_those_machines(
    synthesis: Synthesis, watch: Any
) -> None:
    _, rule = rules_by_name(synthesis)[watch.name]
    machines = state_machines_by_name(synthesis)
    props = rule["Properties"]
    assert props["State"] == "ENABLED"
    assert "EventBusName" not in props, "Step Functions puts its events on the default bus"
    assert props["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "status": list(watch.statuses),
            "stateMachineArn": [{"Ref": machines[name][0]} for name in watch.state_machines],  # Ref is the ARN
        },
    }
    assert set(watch.statuses) == {"FAILED", "TIMED_OUT", "ABORTED"}


@pytest.mark.parametrize("watch", TOPOLOGY.execution_watches, ids=lambda w: w.name)
def test_given_execution_watch_when_synthesised_then_its_function_is_the_target_and_what_fails_goes_to_its_dlq(
    synthesis: Synthesis, watch: Any
) -> None:
    rule_lid, rule = rules_by_name(synthesis)[watch.name]
    fn_lid = function_lid(synthesis, watch.function)
    dlq_arn = {"Fn::GetAtt": [queue_lids(synthesis)[watch.dlq_name], "Arn"]}
    (target,) = rule["Properties"]["Targets"]
    # EventBridge retries an undeliverable event, then sends it to the DLQ...
    assert target["Arn"] == {"Fn::GetAtt": [fn_lid, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": watch.retry_attempts,
                                     "MaximumEventAgeInSeconds": watch.max_event_age_seconds}
    assert target["DeadLetterConfig"] == {"Arn": dlq_arn}
    synthesis.template.has_resource_properties("AWS::Lambda::Permission", {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": [fn_lid, "Arn"]},
        "Principal": "events.amazonaws.com",
        "SourceArn": {"Fn::GetAtt": [rule_lid, "Arn"]},
    })
    # ...and Lambda retries a delivered event whose invocation failed, then sends its record to the same DLQ.
    synthesis.template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
        "FunctionName": {"Ref": fn_lid},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": watch.async_retry_attempts,
        "DestinationConfig": {"OnFailure": {"Destination": dlq_arn}},
    })


@pytest.mark.parametrize("watch", TOPOLOGY.execution_watches, ids=lambda w: w.name)
def test_given_execution_watch_dlq_when_synthesised_then_it_is_encrypted_ssl_only_and_only_its_senders_send(
    synthesis: Synthesis, watch: Any
) -> None:
    dlq_lid = queue_lids(synthesis)[watch.dlq_name]
    props = synthesis.resources[dlq_lid]["Properties"]
    assert props["SqsManagedSseEnabled"] is True
    assert props["MessageRetentionPeriod"] == watch.dlq_retention_days * 86400
    statements = [st for p in synthesis.of_type("AWS::SQS::QueuePolicy").values()
                  if {"Ref": dlq_lid} in p["Properties"]["Queues"]
                  for st in p["Properties"]["PolicyDocument"]["Statement"]]
    assert [st for st in statements
            if st["Effect"] == "Deny" and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}]
    (allow,) = [st for st in statements if st["Effect"] == "Allow"]
    rule_lid, _ = rules_by_name(synthesis)[watch.name]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_lid, "Arn"]}}}
    senders = {fn.name for fn in TOPOLOGY.functions
               for st in statements_of_role(synthesis, role_lid_of_function(synthesis, fn.name))
               if "sqs:SendMessage" in _listify(st["Action"])
               and dlq_lid in {lid for r in _listify(st["Resource"]) for lid in _refs_in(r)}}
    assert senders == {watch.function}


@pytest.mark.parametrize("watch", TOPOLOGY.execution_watches, ids=lambda w: w.name)
def test_given_execution_watch_dlq_when_synthesised_then_a_message_in_it_alarms_the_alarm_topic(
    synthesis: Synthesis, watch: Any
) -> None:
    topic_lid = next(iter(synthesis.of_type("AWS::SNS::Topic")))
    synthesis.template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "AlarmName": f"{STACK_NAME}-{watch.dlq_name}-not-empty",
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName",
                        "Value": {"Fn::GetAtt": [queue_lids(synthesis)[watch.dlq_name], "QueueName"]}}],
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": 1,
        "AlarmActions": [{"Ref": topic_lid}],
        "OKActions": [{"Ref": topic_lid}],
    })


def test_given_the_topology_then_every_workflow_is_watched_by_the_watchdog() -> None:
    watched = {name for w in TOPOLOGY.execution_watches for name in (*w.state_machines, *w.express_state_machines)}
    assert watched == {sm.name for sm in TOPOLOGY.state_machines}
    express = {name for w in TOPOLOGY.execution_watches for name in w.express_state_machines}
    assert express == {sm.name for sm in TOPOLOGY.state_machines if sm.type.value == "EXPRESS"}
    assert {w.function for w in TOPOLOGY.execution_watches} == {"run_watchdog"}


# -- DynamoDB, SES, Secrets ----------------------------------------------------------------------------------


def test_given_table_when_synthesised_then_it_is_on_demand_with_pitr_ttl_and_retained(synthesis: Synthesis) -> None:
    spec = TOPOLOGY.table
    synthesis.template.has_resource("AWS::DynamoDB::Table", {
        "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": spec.partition_key, "KeyType": "HASH"},
                          {"AttributeName": spec.sort_key, "KeyType": "RANGE"}],
            "AttributeDefinitions": Match.array_with([{"AttributeName": spec.partition_key, "AttributeType": "S"},
                                                      {"AttributeName": spec.sort_key, "AttributeType": "S"}]),
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": spec.ttl_attribute, "Enabled": True},
        },
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
    })


def test_given_table_when_synthesised_then_it_has_one_index_of_runs_by_status_and_only_runs_api_queries_it(
        synthesis: Synthesis) -> None:
    """One index (CloudFormation adds one index per stack update, docs/operators.md), projecting what a list shows;
    queried by the lists' function alone, and nothing else of it."""
    from interlock import run_list

    table = synthesis.resources[timeline_table_lid(synthesis)]["Properties"]
    assert table["GlobalSecondaryIndexes"] == [{
        "IndexName": run_list.INDEX_NAME,
        "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}, {"AttributeName": "listed", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(run_list.INDEX_PROJECTION)}}]
    assert "updated_at" not in run_list.INDEX_PROJECTION  # an entry that only moves it writes nothing to the index
    index_readers = set()
    for name in functions_by_name(synthesis):
        for statement in statements_of_role(synthesis, role_lid_of_function(synthesis, name)):
            resources = json.dumps(statement.get("Resource"))
            if f"/index/{run_list.INDEX_NAME}" in resources or "/index/*" in resources:
                index_readers.add(name)
                assert _listify(statement["Action"]) == ["dynamodb:Query"], statement
    assert index_readers == {"runs_api"}


def test_given_sender_setting_when_synthesised_then_an_ses_identity_exists_for_it(synthesis: Synthesis) -> None:
    synthesis.template.resource_count_is("AWS::SES::EmailIdentity", 1)
    synthesis.template.has_resource_properties(
        "AWS::SES::EmailIdentity", {"EmailIdentity": DeploymentSettings().sender_email}
    )


@pytest.mark.parametrize("source", TOPOLOGY.webhook_sources, ids=lambda s: s.name)
def test_given_webhook_source_when_synthesised_then_it_has_a_retained_secret_saying_what_to_store(
    synthesis: Synthesis, source: WebhookSource
) -> None:
    says_what_to_store = Match.string_like_regexp(re.escape(SECRET_FORMATS[source.scheme]))
    synthesis.template.has_resource("AWS::SecretsManager::Secret", {
        "Properties": Match.object_like({"Name": TOPOLOGY.secret_name(source.name),
                                         "Description": says_what_to_store,
                                         "SecretString": PLACEHOLDER}),
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
    })
    outputs = synthesis.raw["Outputs"]
    (output,) = [o for o in outputs.values() if o.get("Description", "").startswith(f"Put the {source.name} ")]
    assert _refs_in(output["Value"])


def test_given_the_placeholder_a_new_secret_holds_then_the_ingest_reads_it_as_no_secret_so_404() -> None:
    # An unconfigured source is disabled (404), not refusing every delivery with 401 under a key nobody has
    for free_text in (False, True):
        assert not parse_secret(PLACEHOLDER, free_text=free_text)


def test_given_the_issue_then_the_topology_declares_every_provider_each_with_a_known_scheme() -> None:
    assert {(s.name, s.scheme) for s in TOPOLOGY.webhook_sources} == {
        ("form", "standard-webhooks"), ("stripe", "stripe"), ("slack", "slack"), ("whatsapp", "whatsapp"),
        ("hubspot", "hubspot"), ("github", "github"),
    }
    assert {s.scheme for s in TOPOLOGY.webhook_sources} <= set(SCHEMES)
    assert set(SCHEMES) <= set(SECRET_FORMATS), "every scheme's secret says what to store in it"


def test_given_ingest_when_synthesised_then_it_accepts_every_source_and_knows_its_public_url(
    synthesis: Synthesis,
) -> None:
    """The sources come from the topology (not a hand-kept list); HubSpot signs the public URL."""
    env = functions_by_name(synthesis)["webhook_ingest"][1]["Properties"]["Environment"]["Variables"]
    assert parse_enabled(env["INTERLOCK_ENABLED_SOURCES"]) == {s.name: s.scheme for s in TOPOLOGY.webhook_sources}
    rest_api_lid = next(iter(synthesis.of_type("AWS::ApiGateway::RestApi")))
    assert {"Ref": rest_api_lid} in env["INTERLOCK_PUBLIC_BASE_URL"]["Fn::Join"][1]
    # the same URL the approval links are built from
    approvals = functions_by_name(synthesis)["job_approve"][1]["Properties"]["Environment"]["Variables"]
    assert env["INTERLOCK_PUBLIC_BASE_URL"] == approvals["INTERLOCK_PUBLIC_BASE_URL"]


def test_given_webhook_routes_when_synthesised_then_post_and_get_reach_the_ingest_unauthenticated(
    synthesis: Synthesis,
) -> None:
    """POST carries the events; GET the providers' handshakes (WhatsApp's verify). The handler authenticates."""
    routes = routes_in_template(synthesis)
    assert {("POST", "/webhooks/{source}", "webhook_ingest"), ("GET", "/webhooks/{source}", "webhook_ingest")} <= routes
    for method in ("POST", "GET"):
        synthesis.template.has_resource_properties("AWS::ApiGateway::Method", {
            "HttpMethod": method,
            "AuthorizationType": "NONE",
            "RequestParameters": {"method.request.path.source": True},
        })


# -- the template as a whole ----------------------------------------------------------------------------------


def test_given_template_when_synthesised_then_it_has_no_dependency_cycle(synthesis: Synthesis) -> None:
    graph = {
        lid: {d for d in _refs_in(res.get("Properties", {})) if d in synthesis.resources}
        | set(_listify(res.get("DependsOn", [])))
        for lid, res in synthesis.resources.items()
    }
    done: set[str] = set()

    def visit(lid: str, path: list[str]) -> None:
        if lid in path:
            pytest.fail(f"dependency cycle: {' -> '.join([*path[path.index(lid):], lid])}")
        if lid in done:
            return
        for dep in graph[lid]:
            visit(dep, [*path, lid])
        done.add(lid)

    for lid in graph:
        visit(lid, [])


def test_given_template_when_synthesised_then_it_is_environment_agnostic(synthesis: Synthesis) -> None:
    rendered = json.dumps(synthesis.raw)
    assert not re.search(r"arn:aws[-a-z]*:[a-z0-9-]+:[a-z]{2}-[a-z]+-\d:\d{12}:", rendered)
    assert synthesis.stack.environment == "aws://unknown-account/unknown-region"


def test_given_cdk_nag_when_synthesised_then_there_are_no_unacknowledged_findings(synthesis: Synthesis) -> None:
    assert synthesis.error is None, f"synthesis failed: {synthesis.error}"
    report = synthesis.validation_report()
    assert report is not None, "cdk-nag did not run"
    for plugin in report["pluginReports"]:
        assert plugin["conclusion"] == "success", plugin["violations"]
        if plugin["pluginName"] == "Construct Annotations":
            # The stack's own warnings (infra/context.py), which a test's synthesis is expected to raise
            assert {v["ruleName"] for v in plugin["violations"]} <= EXPECTED_WARNINGS, plugin["violations"]
            assert {v["severity"] for v in plugin["violations"]} <= {"warning"}, plugin["violations"]
            continue
        assert plugin["violations"] == []
        for acknowledged in plugin.get("suppressedViolations", []):
            assert len(acknowledged["reason"]) > 40, acknowledged["ruleName"]
    assert any(p["pluginName"] == "AwsSolutions" for p in report["pluginReports"])


# -- deployment settings (no synthesis) ------------------------------------------------------------------------


def test_given_context_value_when_setting_resolved_then_context_wins_over_the_default() -> None:
    stack = Stack(App(context={"interlock:approver_email": "ops@example.org"}), "Settings")
    assert deployment_setting(stack, "approver_email") == "ops@example.org"
    assert deployment_setting(stack, "sender_email") == DeploymentSettings().sender_email


def test_given_enabled_sources_setting_then_it_narrows_the_topology_sources_and_cannot_add_one() -> None:
    everything = TOPOLOGY.enabled_sources("")
    assert everything == ",".join(f"{s.name}={s.scheme}" for s in TOPOLOGY.webhook_sources)
    assert TOPOLOGY.enabled_sources(" stripe , form,stripe") == "stripe=stripe,form=standard-webhooks"
    assert TOPOLOGY.enabled_sources("form=standard-webhooks") == "form=standard-webhooks"
    for undeclared in ("typeform=standard-webhooks", "form=stripe", "pigeon"):
        with pytest.raises(UnknownWebhookSource, match="not a webhook source of the topology"):
            TOPOLOGY.enabled_sources(undeclared)


def test_given_enabled_sources_context_when_resolved_then_the_ingest_gets_only_those() -> None:
    stack = Stack(App(context={"interlock:enabled_sources": "form,github"}), "Narrowed")
    resolved = TOPOLOGY.enabled_sources(deployment_setting(stack, "enabled_sources"))
    assert parse_enabled(resolved) == {"form": "standard-webhooks", "github": "github"}


def test_given_extra_webhook_sources_then_each_is_a_source_of_its_scheme_and_bad_ones_are_refused() -> None:
    extended = TOPOLOGY.with_extra_webhook_sources(" typeform = standard-webhooks, billing=stripe,")
    assert extended.webhook_sources == (*TOPOLOGY.webhook_sources, WebhookSource("typeform", "standard-webhooks"),
                                        WebhookSource("billing", "stripe"))
    assert TOPOLOGY.with_extra_webhook_sources("") == TOPOLOGY
    for bad, why in [("typeform", "must be name=scheme"), ("typeform=", "must be name=scheme"),
                     ("Type Form=stripe", "not a source name"), ("../x=stripe", "not a source name"),
                     ("x=pigeon", "no scheme 'pigeon'"), ("stripe=stripe", "exists already"),
                     ("a=stripe,a=github", "exists already")]:
        with pytest.raises(InvalidWebhookSource, match=re.escape(why)):
            TOPOLOGY.with_extra_webhook_sources(bad)


def test_given_extra_sources_and_a_public_url_in_context_when_synthesised_then_the_stack_follows_them(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Given a further source declared by configuration, the enabled sources narrowed to include it, and the API
    # reached at a custom domain (one synthesis for both settings: each costs seconds)
    extra = synthesize(tmp_path_factory.mktemp("cdk.extra"), context={
        "interlock:extra_webhook_sources": "typeform=standard-webhooks",
        "interlock:enabled_sources": "form,typeform",
        "interlock:public_base_url": "https://hooks.example.com",
    })
    assert extra.error is None, extra.error

    # Then approval links and HubSpot's signed URL are built on the custom domain
    for fn in ("webhook_ingest", "job_approve"):
        env = functions_by_name(extra)[fn][1]["Properties"]["Environment"]["Variables"]
        assert env["INTERLOCK_PUBLIC_BASE_URL"] == "https://hooks.example.com", fn

    # Then it has its own secret, saying what to store in it
    secrets = {r["Properties"]["Name"]: lid for lid, r in extra.of_type("AWS::SecretsManager::Secret").items()}
    assert set(secrets) == {TOPOLOGY.secret_name(s.name) for s in TOPOLOGY.webhook_sources} | {
        TOPOLOGY.secret_name("typeform"), AI_KEY_SECRET_NAME}
    description = extra.resources[secrets[TOPOLOGY.secret_name("typeform")]]["Properties"]["Description"]
    assert "'typeform' (standard-webhooks)" in description
    # and the ingest accepts it with its scheme, and alone can read its secret
    env = functions_by_name(extra)["webhook_ingest"][1]["Properties"]["Environment"]["Variables"]
    assert parse_enabled(env["INTERLOCK_ENABLED_SOURCES"]) == {"form": "standard-webhooks",
                                                               "typeform": "standard-webhooks"}
    readers = {role_lid for role_lid in extra.of_type("AWS::IAM::Role")
               for st in statements_of_role(extra, role_lid)
               if "secretsmanager:GetSecretValue" in _listify(st["Action"])
               and secrets[TOPOLOGY.secret_name("typeform")] in {lid for r in _listify(st["Resource"])
                                                                for lid in _refs_in(r)}}
    assert readers == {role_lid_of_function(extra, "webhook_ingest")}


def test_given_a_public_base_url_setting_then_it_replaces_the_apis_own_url_and_bad_ones_are_refused() -> None:
    api = "https://abc.execute-api.eu-west-1.amazonaws.com/prod"
    assert public_base_url("", api) == api
    assert public_base_url(" https://hooks.example.com ", api) == "https://hooks.example.com"
    assert public_base_url("https://example.com/interlock", api) == "https://example.com/interlock"
    for bad in ("hooks.example.com", "https://hooks.example.com/", "https://h.example.com?x=1", "ftp://h.example",
                "https://h.example.com/a b"):
        with pytest.raises(InvalidPublicBaseUrl):
            public_base_url(bad, api)


def test_given_unknown_setting_when_resolved_then_it_fails_loudly() -> None:
    stack = Stack(App(context={"interlock:approver_emial": "typo@example.org"}), "Typo")
    with pytest.raises(UnknownSettingError, match="approver_emial"):
        check_context(stack)
    with pytest.raises(UnknownSettingError):
        deployment_setting(stack, "no_such_setting")


# -- the layer ---------------------------------------------------------------------------------------------


def test_given_pyproject_when_layer_requirements_read_then_boto3_is_left_to_the_runtime() -> None:
    reqs = build_layer.requirements()
    assert not [r for r in reqs if r.lower().startswith("boto3")]
    assert any(r.startswith("pydantic") for r in reqs)
    assert any(r.startswith("aws-lambda-powertools") for r in reqs)


def test_given_built_layer_when_inspected_then_it_holds_arm64_wheels_and_no_local_only_code(
    synthesis: Synthesis,
) -> None:
    site = build_layer.SITE_DIR
    package = site / "interlock"
    assert (package / "topology.py").is_file()
    for local_only in ("local", "cli.py", "samples"):
        assert not (package / local_only).exists(), local_only
    # no bytecode of the dev venv's Python copied along: only the layer's own, for the runtime (test_layer_bytecode)
    assert not [p for p in package.rglob("*.pyc") if not p.name.endswith(f".{build_layer.CACHE_TAG}.pyc")]
    for provided in build_layer.RUNTIME_PROVIDED:
        assert not (site / provided).exists(), provided
    binaries = [p.name for p in (site / "pydantic_core").glob("*.so")]
    assert binaries and all("cpython-313-aarch64-linux-gnu" in b for b in binaries), binaries


def test_given_unchanged_requirements_when_layer_rebuilt_then_pip_is_skipped(synthesis: Synthesis) -> None:
    assert build_layer.install_dependencies(build_layer.requirements()) is False


def test_given_no_layer_when_stack_built_then_it_says_how_to_build_it(tmp_path: Any) -> None:
    stack = Stack(App(), "NoLayer")
    with pytest.raises(LayerMissingError, match="make layer"):
        LambdaFunctions(stack, "Functions", topology=TOPOLOGY, layer_dir=tmp_path)
