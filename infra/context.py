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
from dataclasses import fields

from constructs import Construct, IConstruct
from interlock.settings import AiSettings
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
VALIDATED_BY = (AiSettings,)
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
    base_url = deployment_setting(scope, "openai_base_url")
    if base_url and not _BASE_URL.fullmatch(base_url):
        problems.append(f"{context_key('openai_base_url')}: must be the http(s) URL of an OpenAI-compatible API "
                        f"with no query (e.g. https://<resource>.openai.azure.com/openai/v1/), not {base_url!r}")
    if problems:
        raise InvalidSettingError(f"invalid Interlock setting(s): {'; '.join(problems)}")
