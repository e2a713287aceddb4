"""Deployment settings for the CDK realisation: ``-c interlock:<name>=<value>`` over the topology defaults.

``Ref(RefKind.SETTING, name)`` in the topology resolves to the CDK context value ``interlock:<name>`` when
one is given (``cdk.json``, ``cdk.context.json`` or ``-c`` on the command line), else to
``DeploymentSettings().get(name)``. An ``interlock:`` key that names no setting is an error, so a typo
fails the synthesis instead of silently deploying the default.
"""

from __future__ import annotations

from dataclasses import fields

from constructs import Construct, IConstruct
from interlock.topology import DeploymentSettings

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
    return str(value)


def check_context(scope: Construct) -> None:
    """Fail on any ``interlock:`` context key that is not a deployment setting."""
    known = {context_key(n) for n in setting_names()}
    unknown = sorted(k for k in scope.node.get_all_context() if k.startswith(CONTEXT_PREFIX) and k not in known)
    if unknown:
        raise UnknownSettingError(
            f"unknown Interlock context key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
