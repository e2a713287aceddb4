"""Resolve the topology's environment :class:`~interlock.topology.Ref` values for the local cloud.

In AWS each function has its own environment; locally every handler shares one process, so the local
environment is the union of all functions' environments. That is only sound if no two functions want
different values for one variable, so a conflict stops the runtime instead of surfacing later as a
handler reading another function's setting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from interlock.topology import (
    APP_NAME,
    UNSET_WHEN_EMPTY,
    DeploymentSettings,
    Function,
    Ref,
    RefKind,
    Topology,
    public_base_url,
)

SETTING_ENV_PREFIX = "INTERLOCK_"


class EnvironmentConflict(ValueError):
    """Two functions want different values for the same environment variable."""


@dataclass(frozen=True)
class Deployed:
    """The values that exist only once the resources do: what each :class:`RefKind` resolves to."""

    table_name: str
    api_url: str
    secret_prefix: str
    webhook_sources: str = ""  # what RefKind.WEBHOOK_SOURCES resolves to: Topology.enabled_sources(setting)
    queue_urls: dict[str, str] = field(default_factory=dict)
    dlq_urls: dict[str, str] = field(default_factory=dict)  # a queue's topology name -> its DLQ's URL
    state_machine_arns: dict[str, str] = field(default_factory=dict)
    function_arns: dict[str, str] = field(default_factory=dict)
    # workflow -> the ARN of its automatic state machine (what RefKind.STATE_MACHINE_ARNS resolves to, as JSON)
    workflow_arns: dict[str, str] = field(default_factory=dict)
    bucket_names: dict[str, str] = field(default_factory=dict)  # topology name -> the bucket's name in moto
    # a workflow table's declared name -> its physical name (what RefKind.WORKFLOW_TABLE_NAME resolves to)
    workflow_tables: dict[str, str] = field(default_factory=dict)


def local_setting_defaults(api_url: str) -> dict[str, str]:
    """Settings whose deployed default makes no sense locally: the connectors point at the local fakes."""
    from interlock.local.fakes import FAKE_GRAPH_TOKEN, FAKE_SLACK_TOKEN

    return {
        "crm_base_url": f"{api_url}/_local/crm",
        "helpdesk_base_url": f"{api_url}/_local/helpdesk",
        "enrichment_base_url": f"{api_url}/_local/enrichment",
        "slack_api_url": f"{api_url}/_local/slack",
        "erp_base_url": f"{api_url}/_local/erp",
        "upload_endpoint_url": f"{api_url}/_local/uploads",  # S3's presigned PUT, served by the gateway
        "slack_token": FAKE_SLACK_TOKEN,  # the local fake Slack's bot token (a deployment names a secret instead)
        "whatsapp_graph_url": f"{api_url}/_local/graph",
        "whatsapp_token": FAKE_GRAPH_TOKEN,  # the local fake Graph API's token (a deployment names a secret instead)
        # Meta's sample template, approved in every new WhatsApp Business account (a deployment names its own)
        "assistant_reengagement_template": "hello_world",
        "assistant_support_channel": "C07SUPPORT",  # a channel of the local fake Slack
        "assistant_handoff_email": "support@example.com",  # its link lands in the outbox, and on the console
    }


# Settings a laptop takes from the variable the tool behind them reads itself (no new names to learn).
FROM_TOOL_ENVIRONMENT = {"openai_base_url": "OPENAI_BASE_URL"}


class InvalidLocalSetting(ValueError):
    """A setting the functions would refuse at cold start: ``interlock run`` stops before anything starts."""


def check_settings(api_url: str, environ: Mapping[str, str]) -> None:
    """Refuse, before anything starts, settings that only make sense together (as synthesis does on AWS)."""
    from pydantic import ValidationError

    from interlock.settings import ApprovalWindow

    names = list(ApprovalWindow.model_fields)
    try:
        ApprovalWindow.model_validate({name: setting(name, api_url, environ) for name in names})
    except ValidationError as exc:
        problems = "; ".join(str(err["msg"]).removeprefix("Value error, ") for err in exc.errors())
        raise InvalidLocalSetting(f"invalid setting(s) ({', '.join(SETTING_ENV_PREFIX + n.upper() for n in names)}): "
                                  f"{problems}") from None
    from interlock.kit import registry
    from interlock.settings import quorum_problems

    # The approver pool, and no workflow asking more different approvers than it names.
    workflows = registry.workflows(setting("extra_workflows", api_url, environ)).values()
    pool = quorum_problems(setting("approver_email", api_url, environ), workflows)
    if pool:
        raise InvalidLocalSetting(f"invalid setting {SETTING_ENV_PREFIX}APPROVER_EMAIL: {'; '.join(pool)}")
    # Each workflow's own settings, as its steps read them.
    found = registry.settings_problems(workflows, lambda name: setting(name, api_url, environ))
    if found:
        raise InvalidLocalSetting(f"invalid workflow setting(s) (INTERLOCK_<SETTING> in the environment): "
                                  f"{'; '.join(found)}")


def setting(name: str, api_url: str, environ: Mapping[str, str]) -> str:
    """``INTERLOCK_<NAME>`` if set (or the tool's own variable, :data:`FROM_TOOL_ENVIRONMENT`), else the local
    default, else :class:`DeploymentSettings`' default."""
    override = environ.get(FROM_TOOL_ENVIRONMENT.get(name, SETTING_ENV_PREFIX + name.upper()))
    if override is not None:
        return override
    local = local_setting_defaults(api_url)
    if name in local:
        return local[name]
    return DeploymentSettings().get(name)


def resolve(ref: Ref, deployed: Deployed, environ: Mapping[str, str]) -> str:
    lookups: dict[RefKind, Mapping[str, str]] = {
        RefKind.QUEUE_URL: deployed.queue_urls,
        RefKind.DLQ_URL: deployed.dlq_urls,
        RefKind.STATE_MACHINE_ARN: deployed.state_machine_arns,
        RefKind.FUNCTION_ARN: deployed.function_arns,
        RefKind.BUCKET_NAME: deployed.bucket_names,
        RefKind.WORKFLOW_TABLE_NAME: deployed.workflow_tables,
    }
    if ref.kind is RefKind.TABLE_NAME:
        return deployed.table_name
    if ref.kind is RefKind.API_URL:
        return public_base_url(setting("public_base_url", deployed.api_url, environ), deployed.api_url)
    if ref.kind is RefKind.SECRET_PREFIX:
        return deployed.secret_prefix
    if ref.kind is RefKind.WEBHOOK_SOURCES:
        return deployed.webhook_sources
    if ref.kind is RefKind.STATE_MACHINE_ARNS:
        return json.dumps(deployed.workflow_arns, sort_keys=True)
    if ref.kind is RefKind.AI_KEY_SECRET:
        return ""  # a laptop's key is OPENAI_API_KEY in the environment
    if ref.kind is RefKind.SETTING:
        return setting(ref.name, deployed.api_url, environ)
    values = lookups[ref.kind]
    if ref.name not in values:
        raise KeyError(f"{ref.kind.value} {ref.name!r} is referenced but not part of the topology")
    return values[ref.name]


def function_environment(function: Function, deployed: Deployed, environ: Mapping[str, str]) -> dict[str, str]:
    resolved = {
        key: resolve(value, deployed, environ) if isinstance(value, Ref) else value
        for key, value in function.env.items()
    }
    return {key: value for key, value in resolved.items() if value or key not in UNSET_WHEN_EMPTY}


def merged_environment(topology: Topology, deployed: Deployed, environ: Mapping[str, str]) -> dict[str, str]:
    """The union of every function's environment; raises :class:`EnvironmentConflict` on a disagreement."""
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for function in topology.functions:
        for key, value in function_environment(function, deployed, environ).items():
            if key in merged and merged[key] != value:
                raise EnvironmentConflict(
                    f"{key} is {merged[key]!r} for function {owner[key]!r} but {value!r} for "
                    f"{function.name!r}; the local runtime runs every function in one process and "
                    "needs them to agree"
                )
            merged[key] = value
            owner.setdefault(key, function.name)
    return merged


def process_environment(environ: Mapping[str, str], region: str) -> dict[str, str | None]:
    """What the Lambda service and our deployment set for every function, adapted to a laptop.

    ``None`` means "unset": a developer's AWS profile or endpoint override must not steer the handlers'
    boto3 clients anywhere but moto.
    """
    env: dict[str, str | None] = {
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ACCESS_KEY_ID": "interlock-local",
        "AWS_SECRET_ACCESS_KEY": "interlock-local",
        "AWS_SESSION_TOKEN": "interlock-local",
        "POWERTOOLS_SERVICE_NAME": APP_NAME,  # the Powertools logger's name (local.functions stamps its records)
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": environ.get("INTERLOCK_LOG_LEVEL", "WARNING").upper(),
    }
    # Powertools 3 reads POWERTOOLS_METRICS_DISABLED at every flush; without it each invocation prints
    # an EMF document to the console, which CloudWatch would have turned into metrics.
    if environ.get("INTERLOCK_LOCAL_METRICS") != "1":
        env["POWERTOOLS_METRICS_DISABLED"] = "true"
    for key in environ:
        if key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE") or key.startswith("AWS_ENDPOINT_URL"):
            env[key] = None
    return env
