"""Deployment settings for the CDK realisation: ``-c interlock:<name>=<value>`` over the topology defaults.

``Ref(RefKind.SETTING, name)`` in the topology resolves to the CDK context value ``interlock:<name>`` when
one is given (``cdk.json``, ``cdk.context.json`` or ``-c`` on the command line), else to
``DeploymentSettings().get(name)``. An ``interlock:`` key that names no setting is an error, so a typo
fails the synthesis instead of silently deploying the default. So is a value the functions would refuse at
cold start (:func:`check_settings`): a bad ``ai_provider`` stops ``cdk synth``, not every decision.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import fields

from aws_cdk import Annotations
from constructs import Construct, IConstruct
from interlock.settings import AiSettings, ApprovalWindow
from interlock.topology import DeploymentSettings
from pydantic import ValidationError

CONTEXT_PREFIX = "interlock:"


class UnknownSettingError(KeyError):
    pass


def setting_names() -> list[str]:
    return [f.name for f in fields(DeploymentSettings)]


def context_key(name: str) -> str:
    return f"{CONTEXT_PREFIX}{name}"


def deployment_setting(scope: IConstruct, name: str) -> str:
    """The value of deployment setting ``name`` for the app ``scope`` belongs to."""
    if name not in setting_names():
        raise UnknownSettingError(f"unknown deployment setting {name!r}; known: {', '.join(setting_names())}")
    value = scope.node.try_get_context(context_key(name))
    if value is None:
        return DeploymentSettings().get(name)
    if isinstance(value, dict | list):
        # cdk.json may hold a JSON setting (ai_prices) as an object: the functions read it as JSON text
        return json.dumps(value)
    return str(value)


def check_context(scope: Construct) -> None:
    """Fail on any ``interlock:`` context key that is not a deployment setting."""
    known = {context_key(n) for n in setting_names()}
    unknown = sorted(k for k in scope.node.get_all_context() if k.startswith(CONTEXT_PREFIX) and k not in known)
    if unknown:
        raise UnknownSettingError(
            f"unknown Interlock context key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


class InvalidSettingError(ValueError):
    pass


# The settings models the functions validate at cold start whose fields are deployment settings: synthesis
# validates those settings with the same model, so a value a function would refuse never deploys.
VALIDATED_BY = (AiSettings, ApprovalWindow)
# The openai SDK's base URL: an http(s) URL (Azure OpenAI's v1 endpoint, vLLM, Ollama, a LiteLLM proxy).
_BASE_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")


def check_settings(scope: IConstruct) -> None:
    """Fail on a deployment setting the functions would refuse at cold start, naming its context key."""
    problems: list[str] = []
    for model in VALIDATED_BY:
        names = [n for n in model.model_fields if n in setting_names()]
        try:
            model.model_validate({n: deployment_setting(scope, n) for n in names})
        except ValidationError as exc:
            problems += [f"{context_key(str(err['loc'][0])) if err['loc'] else model.__name__}: {err['msg']}"
                         for err in exc.errors(include_url=False)]
    problems += _workflow_problems(scope)
    base_url = deployment_setting(scope, "openai_base_url")
    if base_url and not _BASE_URL.fullmatch(base_url):
        problems.append(f"{context_key('openai_base_url')}: must be the http(s) URL of an OpenAI-compatible API "
                        f"with no query (e.g. https://<resource>.openai.azure.com/openai/v1/), not {base_url!r}")
    if problems:
        raise InvalidSettingError(f"invalid Interlock setting(s): {'; '.join(problems)}")


def _workflow_problems(scope: IConstruct) -> list[str]:
    """The approver pool, and no workflow's wait asking more different approvers than it names; each workflow's
    own settings, as its steps read them (its ``settings_check``)."""
    from interlock.kit import registry
    from interlock.settings import quorum_problems

    workflows = registry.workflows(deployment_setting(scope, "extra_workflows")).values()
    return ([f"{context_key('approver_email')}: {p}"
             for p in quorum_problems(deployment_setting(scope, "approver_email"), workflows)]
            + [f"{p} (context interlock:<setting>)"
               for p in registry.settings_problems(workflows, lambda name: deployment_setting(scope, name))])


# -- settings only the stack reads (alarms, the front door, deploying) -------------------------------------

# Domains that never receive mail (RFC 2606 / RFC 6761): the defaults of sender_email and approver_email.
PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")
PLACEHOLDER_TLDS = ("example", "invalid", "localhost", "test")
EMAIL_SETTINGS = ("sender_email", "approver_email")


class PlaceholderEmailError(InvalidSettingError):
    pass


class LaptopSettingError(InvalidSettingError):
    """A setting that only a laptop may use (a secret's value in the template) was given to a deployment."""


def is_placeholder_email(address: str) -> bool:
    """Whether an address (or any address of a comma-separated list: the approver pool) goes nowhere."""
    return any(_is_placeholder(one) for one in address.split(","))


def _is_placeholder(address: str) -> bool:
    domain = address.strip().rpartition("@")[2].lower().rstrip(".")
    return (domain in PLACEHOLDER_DOMAINS or domain.endswith(tuple(f".{d}" for d in PLACEHOLDER_DOMAINS))
            or domain.rpartition(".")[2] in PLACEHOLDER_TLDS)


def flag_setting(scope: IConstruct, name: str) -> bool:
    value = deployment_setting(scope, name).strip().lower()
    if value not in ("true", "false"):
        raise InvalidSettingError(f"{context_key(name)}: must be true or false, not {value!r}")
    return value == "true"


def int_setting(scope: IConstruct, name: str, *, minimum: int, maximum: int) -> int | None:
    """An integer setting within ``[minimum, maximum]``; None when it is empty."""
    value = deployment_setting(scope, name).strip()
    if not value:
        return None
    if not re.fullmatch(r"\d+", value) or not minimum <= int(value) <= maximum:
        raise InvalidSettingError(f"{context_key(name)}: must be a whole number from {minimum} to {maximum}, "
                                  f"not {value!r}")
    return int(value)


def warn(scope: IConstruct, warning_id: str, message: str) -> None:
    """A warning both in the synthesis' annotations (``cdk synth`` and ``cdk deploy`` print them) and on stderr."""
    Annotations.of(scope).add_warning_v2(f"interlock:{warning_id}", message)
    print(f"[interlock] WARNING: {message}", file=sys.stderr, flush=True)


def check_deployable(scope: IConstruct) -> None:
    """Refuse placeholder addresses unless ``allow_placeholder_emails`` says this synthesis is not deployed
    (tests, ``make synth``); warn about what a deployment would lack."""
    placeholders = [f"{context_key(n)}={deployment_setting(scope, n)}" for n in EMAIL_SETTINGS
                    if is_placeholder_email(deployment_setting(scope, n))]
    if placeholders:
        message = (f"placeholder email address(es) {', '.join(placeholders)}: approval emails would go nowhere. "
                   "Pass real addresses (make deploy CDK_ARGS='-c interlock:sender_email=... "
                   "-c interlock:approver_email=...')")
        if not flag_setting(scope, "allow_placeholder_emails"):
            raise PlaceholderEmailError(
                f"refusing to synthesise a deployable stack: {message}; or, for a synthesis that is not deployed, "
                f"-c {context_key('allow_placeholder_emails')}=true")
        warn(scope, "placeholderEmails", f"{message}. This template must not be deployed.")
    for token, secret in (("slack_token", "slack_token_secret"), ("whatsapp_token", "whatsapp_token_secret")):
        if deployment_setting(scope, token).strip():
            # a token in the template would be readable by anyone who can read the stack
            raise LaptopSettingError(f"{context_key(token)} is a laptop's setting: a deployment names the "
                                     f"Secrets Manager secret holding the token in {context_key(secret)}")
    if not deployment_setting(scope, "alarm_email").strip():
        warn(scope, "noAlarmSubscriber",
             f"no {context_key('alarm_email')}: the alarms reach nobody. Pass -c {context_key('alarm_email')}="
             "oncall@yourcompany.com, or subscribe another target to the AlarmTopicArn output (docs/deploy.md)")
