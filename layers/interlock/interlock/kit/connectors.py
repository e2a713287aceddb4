"""The connectors a step may ask its context for, and which workers may use each.

A connector is platform code (``interlock/connectors/``) behind a small interface; ``factory`` builds it from
its settings once per process (so one HTTP client per connector, reused), or returns None when it is not
configured. ``jobs`` are the workers granted it: the topology gives its ``settings`` (and ``secrets``) to
those workers' functions alone, so a step on another worker cannot reach it even by asking.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from interlock.kit import Job


@dataclass(frozen=True)
class Connector:
    name: str
    factory: str  # "module:function", no arguments
    jobs: tuple[Job, ...]
    settings: tuple[str, ...] = ()  # DeploymentSettings names its factory reads


CONNECTORS: dict[str, Connector] = {
    c.name: c
    for c in (
        # the factories in interlock.wiring, like every adapter a handler uses (tests replace them there)
        Connector("crm", "interlock.wiring:crm", (Job.QUERY, Job.ACT),
                  ("crm_base_url", "crm_token_secret")),
        Connector("helpdesk", "interlock.wiring:helpdesk", (Job.ACT,), ("helpdesk_base_url",)),
        Connector("enrichment", "interlock.connectors.enrichment:from_settings", (Job.QUERY,),
                  ("enrichment_base_url", "enrichment_key_secret")),
        # slack_token is a laptop's token (the local fake's); a deployment names slack_token_secret instead
        Connector("slack", "interlock.connectors.slack:from_settings", (Job.NOTIFY,),
                  ("slack_api_url", "slack_token_secret", "slack_token")),
        # WhatsApp's Graph API: a conversation's replies (whatsapp_token, like slack_token, is a laptop's token)
        Connector("whatsapp", "interlock.connectors.whatsapp:from_settings", (Job.NOTIFY,),
                  ("whatsapp_graph_url", "whatsapp_api_version", "whatsapp_token_secret", "whatsapp_token")),
        # the invoice intake workflow's ERP: vendor master and POs read by query, the ledger written by act
        Connector("erp", "interlock.connectors.erp:from_settings", (Job.QUERY, Job.ACT),
                  ("erp_base_url", "erp_token_secret")),
    )
}


class UnknownConnector(KeyError):
    pass


def connector(name: str) -> Connector:
    try:
        return CONNECTORS[name]
    except KeyError:
        raise UnknownConnector(f"no connector named {name!r}; the connectors are: "
                               f"{', '.join(sorted(CONNECTORS))}") from None


def build(name: str) -> Any:
    """The connector ``name``, built by its factory (which caches it per process)."""
    module, _, function = connector(name).factory.partition(":")
    return getattr(importlib.import_module(module), function)()
