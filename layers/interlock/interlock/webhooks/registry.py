"""Which webhook sources exist: a name (the ``{source}`` of ``/webhooks/{source}``) and its scheme.

``INTERLOCK_ENABLED_SOURCES`` lists them, comma-separated, as each realisation resolves it from the topology
(:meth:`interlock.topology.Topology.enabled_sources`): ``name=scheme`` (``typeform=standard-webhooks``), or a
provider's name on its own (``stripe``). A source must also have a secret to be enabled; one without answers
404, like a source that does not exist.

Each scheme is a module of ``interlock.webhooks.sources`` defining ``SOURCE_CLASS`` (a
:class:`~interlock.webhooks.base.WebhookSource` taking ``(name, settings)``), imported only when a request
for one of its sources arrives, so a cold start loads one provider's code.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from interlock.webhooks.base import WebhookSource

if TYPE_CHECKING:
    from interlock.settings import IngestSettings

# scheme -> module under interlock.webhooks.sources
SCHEMES: dict[str, str] = {
    "standard-webhooks": "standard_webhooks",
    "stripe": "stripe",
    "slack": "slack",
    "whatsapp": "whatsapp",
    "hubspot": "hubspot",
    "github": "github",
}
# a bare source name that is not itself a scheme
DEFAULT_SCHEME = {"form": "standard-webhooks"}


class UnknownScheme(ValueError):
    pass


def parse_enabled(spec: str) -> dict[str, str]:
    """``"form, stripe, typeform=standard-webhooks"`` -> {source name: scheme}."""
    enabled: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, scheme = part.partition("=")
        name = name.strip()
        scheme = scheme.strip() or DEFAULT_SCHEME.get(name, name)
        if scheme not in SCHEMES:
            raise UnknownScheme(f"webhook source {name!r}: no scheme {scheme!r} (known: {', '.join(sorted(SCHEMES))})")
        enabled[name] = scheme
    return enabled


def scheme_module(scheme: str) -> ModuleType:
    """The scheme's plug-in module: its ``SOURCE_CLASS``, and the ``sender_headers`` a sender signs with."""
    return importlib.import_module(f"interlock.webhooks.sources.{SCHEMES[scheme]}")


def source_class(scheme: str) -> type[WebhookSource]:
    cls: type[WebhookSource] = scheme_module(scheme).SOURCE_CLASS
    return cls


class SourceRegistry:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.enabled = parse_enabled(settings.enabled_sources)
        self._built: dict[str, WebhookSource] = {}

    def get(self, name: str) -> WebhookSource | None:
        scheme = self.enabled.get(name)
        if scheme is None:
            return None
        if name not in self._built:
            self._built[name] = source_class(scheme)(name, self.settings)  # type: ignore[call-arg]
        return self._built[name]
