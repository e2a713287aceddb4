"""API Gateway: a regional REST API with the topology's routes, each a Lambda proxy integration.

The front door: each method has its own throttle, by route group (``api_rate_<group>``: the first segment of
its path), so a flood on ``/webhooks`` cannot use up what ``/approvals`` needs; an optional WAF web ACL blocks
a source IP above a rate (``waf_rate_limit``). Stage tracing is off: API Gateway's X-Ray segments record the
full request URL, and ``/approvals/{token}`` carries the token (the functions are still traced by Lambda).
"""

from __future__ import annotations

import json
import re

from aws_cdk import ArnFormat, Aws, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct
from interlock.topology import Route

from infra.constructs.functions import LOG_RETENTION, LambdaFunctions
from infra.context import int_setting, setting_names
from infra.nag import acknowledge
from infra.naming import physical_name

STAGE_NAME = "prod"
THROTTLE_RATE_LIMIT = 50  # steady requests per second of a method no route group setting covers
THROTTLE_BURST_LIMIT = 100
BURST_PER_RATE = 2  # a method's burst is twice its steady rate
MAX_RATE = 10_000  # API Gateway's default account quota per region
# WAF's rate-based rule counts requests per source IP over this window
WAF_WINDOW_SECONDS = 300
PATH_PARAMETER = re.compile(r"\{([A-Za-z0-9_]+)\+?\}")

# Access log fields. resourcePath is the route template (/approvals/{token}); the concrete path ($context.path)
# is left out on purpose because it carries the approval link's token.
ACCESS_LOG_FORMAT = {
    "requestId": apigw.AccessLogField.context_request_id(),
    "extendedRequestId": apigw.AccessLogField.context_extended_request_id(),
    "requestTime": apigw.AccessLogField.context_request_time(),
    "ip": apigw.AccessLogField.context_identity_source_ip(),
    "userAgent": apigw.AccessLogField.context_identity_user_agent(),
    "httpMethod": apigw.AccessLogField.context_http_method(),
    "resourcePath": apigw.AccessLogField.context_resource_path(),
    "protocol": apigw.AccessLogField.context_protocol(),
    "status": apigw.AccessLogField.context_status(),
    "responseLength": apigw.AccessLogField.context_response_length(),
    "responseLatency": apigw.AccessLogField.context_response_latency(),
    "integrationLatency": apigw.AccessLogField.context_integration_latency(),
    "integrationStatus": apigw.AccessLogField.context_integration_status(),
    "errorMessage": apigw.AccessLogField.context_error_message(),
    "xrayTraceId": apigw.AccessLogField.context_xray_trace_id(),
}


class PublicApi(Construct):
    def __init__(self, scope: Construct, cid: str, *, routes: tuple[Route, ...], functions: LambdaFunctions) -> None:
        super().__init__(scope, cid)
        self.route_rates = {(r.method, r.path): rate for r in routes if (rate := route_rate(self, r)) is not None}
        name = physical_name(self, "api")
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        self.api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=name,
            description="Interlock: webhooks in, run status and approval links out",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Access logging needs the account's API Gateway CloudWatch role (an account-wide setting): a stage
            # with access logs fails to create in an account where it was never set. The stack sets it, and
            # keeps the role when the stack goes, since other APIs in the account may rely on it.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=THROTTLE_RATE_LIMIT,
                throttling_burst_limit=THROTTLE_BURST_LIMIT,
                method_options={
                    f"{path}/{method}": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=rate, throttling_burst_limit=rate * BURST_PER_RATE)
                    for (method, path), rate in self.route_rates.items()
                },
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
                # Off: API Gateway's trace segments hold the full request URL, approval tokens included.
                tracing_enabled=False,
            ),
        )
        cloud_watch_role = self.api.node.find_child("CloudWatchRole")
        acknowledge(
            cloud_watch_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account's API Gateway logging role: AWS's managed AmazonAPIGatewayPushToCloudWatchLogs policy is "
            "what API Gateway documents for it, and it is one role per account and region, not this API's.",
        )
        self.validator = self.api.add_request_validator(
            "Requests",
            request_validator_name=f"{name}-requests",
            validate_request_parameters=True,  # the route's path parameters are required
            validate_request_body=True,  # checks a body against the method's model, where one is declared
        )
        integrations: dict[str, apigw.LambdaIntegration] = {}
        self.methods: list[apigw.Method] = []
        for route in routes:
            if route.function not in integrations:
                integrations[route.function] = apigw.LambdaIntegration(
                    functions[route.function].function, proxy=True, allow_test_invoke=False
                )
            resource = self.api.root.resource_for_path(route.path)
            method = resource.add_method(
                route.method,
                integrations[route.function],
                authorization_type=(
                    apigw.AuthorizationType.IAM if route.auth == "iam" else apigw.AuthorizationType.NONE
                ),
                request_parameters={f"method.request.path.{p}": True for p in PATH_PARAMETER.findall(route.path)},
                request_validator=self.validator,
            )
            self.methods.append(method)
            if route.auth == "iam":
                acknowledge(method, "AwsSolutions-COG4",
                            f"{route.method} {route.path} is for operators and tools holding AWS credentials: "
                            "IAM (SigV4) authorisation, not a Cognito user pool.")
            else:
                self._acknowledge_open_method(method, route)
        acknowledge(
            self.api.deployment_stage,
            "AwsSolutions-APIG6",
            "Execution logging is off on purpose: it records request paths, and /approvals/{token} carries "
            "the approval token. Access logs (route template, no raw path), Lambda logs and traces cover it.",
        )
        self.web_acl = self._web_acl(name)
        if self.web_acl is None:
            acknowledge(
                self.api.deployment_stage,
                "AwsSolutions-APIG3",
                "No WAF web ACL unless interlock:waf_rate_limit is set: every method is throttled by route group "
                "and every route authenticates in its handler (docs/deploy.md, The front door).",
            )
        # The URL the approval emails link to, built from the API id rather than the deployment stage, so
        # the approval step (a state machine step) does not depend on the stage, which depends on the
        # approvals function, whose role depends on the state machine: that would be a cycle.
        self.url = Fn.join(
            "", ["https://", self.api.rest_api_id, ".execute-api.", Aws.REGION, ".", Aws.URL_SUFFIX, "/", STAGE_NAME]
        )

    def _web_acl(self, name: str) -> wafv2.CfnWebACL | None:
        """A regional web ACL on the stage blocking a source IP over ``waf_rate_limit`` requests per 5 minutes."""
        limit = int_setting(self, "waf_rate_limit", minimum=10, maximum=2_000_000_000)
        if limit is None:
            return None
        metric = name.replace("_", "-")
        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{name}-acl",
            description="Interlock: blocks a source IP over its waf rate limit, in requests per 5 minutes",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=f"{metric}-acl", sampled_requests_enabled=False),
            rules=[wafv2.CfnWebACL.RuleProperty(
                name="rate-per-ip",
                priority=0,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=limit, aggregate_key_type="IP", evaluation_window_sec=WAF_WINDOW_SECONDS)),
                # Sampled requests would keep full URLs, approval tokens included: metrics only.
                visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                    cloud_watch_metrics_enabled=True, metric_name=f"{metric}-rate-per-ip",
                    sampled_requests_enabled=False),
            )],
        )
        stage = self.api.deployment_stage
        association = wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            web_acl_arn=acl.attr_arn,
            resource_arn=Stack.of(self).format_arn(
                service="apigateway", account="", resource="/restapis",
                resource_name=f"{self.api.rest_api_id}/stages/{stage.stage_name}",
                arn_format=ArnFormat.SLASH_RESOURCE_NAME),
        )
        association.node.add_dependency(stage)
        return acl

    @staticmethod
    def _acknowledge_open_method(method: apigw.Method, route: Route) -> None:
        reason = (
            f"{route.method} {route.path} is called by parties without AWS credentials and authenticates in "
            f"its handler: "
        )
        if route.path.startswith("/webhooks/"):
            reason += "the webhook's HMAC signature over the raw body, with the source's secret."
        elif route.path.startswith("/approvals/"):
            reason += "a 256-bit one-time approval token from the emailed link, stored only as a hash."
        elif route.path.startswith("/handoffs/"):
            reason += ("a 256-bit hand-off token from the emailed link, stored only as a hash, working only while "
                       "its hand-off lasts.")
        elif route.path == "/uploads":
            reason += ("a Standard Webhooks HMAC signature over the raw body, with the form source's secret (the "
                       "sender of the events that refer to the upload).")
        else:
            raise ValueError(f"{route.method} {route.path} has auth 'none' but no handler-level authentication")
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(method, rule, reason)


def route_group(route: Route) -> str:
    """The first segment of the route's path: ``/webhooks/{source}`` -> ``webhooks``."""
    return route.path.strip("/").split("/")[0]


def route_rate(scope: Construct, route: Route) -> int | None:
    """The steady rate of the route's method, from the ``api_rate_<group>`` setting; None: no such setting, the
    stage's default applies."""
    name = f"api_rate_{route_group(route)}"
    if name not in setting_names():
        return None
    return int_setting(scope, name, minimum=1, maximum=MAX_RATE)
