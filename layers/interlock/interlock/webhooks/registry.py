"""Which webhook sources exist: a name (the ``{source}`` of ``/webhooks/{source}``) and its scheme.

``INTERLOCK_ENABLED_SOURCES`` lists them, comma-separated: a provider's name on its own (``stripe``), or
``name=scheme`` for a further source speaking a provider's scheme (``typeform=standard-webhooks``). A
source must also have a secret to be enabled; one without answers 404, like a source that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable

from interlock.webhooks.base import WebhookSource

SCHEME_NAMES = {"form": "standard-webhooks"}


def _standard(name: str, tolerance: int) -> WebhookSource:
    from interlock.webhooks.sources.standard_webhooks import StandardWebhooksSource

    return StandardWebhooksSource(name, tolerance)


# scheme -> factory(name, timestamp tolerance in seconds); imported lazily so a cold start loads one module
SCHEMES: dict[str, Callable[[str, int], WebhookSource]] = {
    "standard-webhooks": _standard,
}


class UnknownScheme(ValueError):
    pass


def parse_enabled(spec: str) -> dict[str, str]:
    """``"form, stripe, typeform=standard-webhooks"`` -> {source name: scheme}."""
    enabled: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, scheme = part.partition("=")
        name, scheme = name.strip(), scheme.strip() or SCHEME_NAMES.get(name.strip(), name.strip())
        if scheme not in SCHEMES:
            raise UnknownScheme(f"webhook source {name!r}: no scheme {scheme!r} (known: {', '.join(sorted(SCHEMES))})")
        enabled[name] = scheme
    return enabled


class SourceRegistry:
    def __init__(self, enabled_spec: str, tolerance_seconds: int = 300) -> None:
        self.enabled = parse_enabled(enabled_spec)
        self.tolerance_seconds = tolerance_seconds
        self._built: dict[str, WebhookSource] = {}

    def get(self, name: str) -> WebhookSource | None:
        scheme = self.enabled.get(name)
        if scheme is None:
            return None
        if name not in self._built:
            self._built[name] = SCHEMES[scheme](name, self.tolerance_seconds)
        return self._built[name]
