"""cdk-nag: the AWS Solutions rule pack, and the findings this stack acknowledges on purpose.

cdk-nag 3 runs as a CDK policy-validation plugin: any finding that is not acknowledged stops the
synthesis. Every acknowledgment is narrow (one rule, or one finding of a rule, on one construct) and
carries its reason next to the resource it is about.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stage, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def apply_checks(stage: Stage) -> AwsSolutionsChecks:
    pack = AwsSolutionsChecks(stage, verbose=True)
    Validations.of(stage).add_plugins(pack)
    return pack


PLUGIN = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AWS Solutions finding (``AwsSolutions-IAM5[Resource::*]``) on ``scope`` and below."""
    if not rule.startswith(f"{PLUGIN}-"):
        raise ValueError(f"not an {PLUGIN} rule id: {rule!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))
