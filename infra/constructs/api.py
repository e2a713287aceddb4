"""API Gateway: a regional REST API with the topology's routes, each a Lambda proxy integration."""

from __future__ import annotations

import json
import re

from aws_cdk import Aws, Fn, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from constructs import Construct
from interlock.topology import Route

from infra.constructs.functions import LOG_RETENTION, LambdaFunctions
from infra.nag import acknowledge
from infra.naming import physical_name

STAGE_NAME = "prod"
THROTTLE_RATE_LIMIT = 50  # steady requests per second for the stage
THROTTLE_BURST_LIMIT = 100
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
            cloud_watch_role=False,
            deploy=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=THROTTLE_RATE_LIMIT,
                throttling_burst_limit=THROTTLE_BURST_LIMIT,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
                tracing_enabled=True,
            ),
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
            "the approval token. Access logs (route template, no raw path), Lambda logs and X-Ray cover it.",
        )
        acknowledge(
            self.api.deployment_stage,
            "AwsSolutions-APIG3",
            "No WAF web ACL in the base stack: requests are throttled at the stage and every route "
            "authenticates in its handler; attach a regional web ACL per environment if needed.",
        )
        # The URL the approval emails link to, built from the API id rather than the deployment stage, so
        # the approval step (a state machine step) does not depend on the stage, which depends on the
        # approvals function, whose role depends on the state machine: that would be a cycle.
        self.url = Fn.join(
            "", ["https://", self.api.rest_api_id, ".execute-api.", Aws.REGION, ".", Aws.URL_SUFFIX, "/", STAGE_NAME]
        )

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
        else:
            raise ValueError(f"{route.method} {route.path} has auth 'none' but no handler-level authentication")
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(method, rule, reason)
