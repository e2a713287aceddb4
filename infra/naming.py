"""Physical and logical names, derived from the topology in one place."""

from __future__ import annotations

import re

from aws_cdk import Stack
from constructs import IConstruct


def construct_id(name: str) -> str:
    """A CDK construct id for a topology name: ``webhook_ingest`` -> ``WebhookIngest``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def physical_name(scope: IConstruct, name: str) -> str:
    """``<stack name>-<topology name>``: recognisable in the console, distinct per stack."""
    return f"{Stack.of(scope).stack_name}-{name}"
