"""Company enrichment: size, industry and country of a company, by its web domain (Clearbit's Company API shape).

Protocol: ``GET {base}/v2/companies/find?domain=<domain>`` with the API key as a bearer token answers 200 with the
company (``{"name", "domain", "category": {"industry"}, "metrics": {"employees"}, "geo": {"country",
"countryCode"}}``), 404 when it knows none, 202 while it is still looking the company up (try again shortly).

A domain is not personal data, so it may sit in the URL; a person's address never does (no lookup here takes one).

* 404: :meth:`HttpEnrichment.find_company` returns None (the lead goes on ``partial``, and a person researches it);
* 202, 429, 5xx, a timeout or a refused connection: :class:`~interlock.errors.EnrichmentUnavailable` (retried by
  the state machine; its last failure is caught and the lead goes on ``partial``);
* any other 4xx (a bad key, a malformed domain): :class:`~interlock.errors.EnrichmentRejected`.

Errors name a status or an exception's class, never the URL, the key or the answer's values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

from interlock.aws import once_per_process
from interlock.connectors.http import SharedClient, TokenSource, bearer, no_token, read_model
from interlock.errors import EnrichmentRejected, EnrichmentUnavailable

if TYPE_CHECKING:
    import httpx

STEP = "enrich"


class _Category(BaseModel):
    model_config = ConfigDict(extra="ignore")
    industry: str | None = None


class _Metrics(BaseModel):
    model_config = ConfigDict(extra="ignore")
    employees: int | None = Field(default=None, ge=0)


class _Geo(BaseModel):
    model_config = ConfigDict(extra="ignore")
    country: str | None = None
    countryCode: str | None = None


class _Company(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    domain: str | None = None
    category: _Category = Field(default_factory=_Category)
    metrics: _Metrics = Field(default_factory=_Metrics)
    geo: _Geo = Field(default_factory=_Geo)


class CompanyProfile(BaseModel):
    """What the lead workflow keeps of an enrichment answer."""

    name: str | None = None
    domain: str
    employees: int | None = None
    industry: str | None = None
    country_code: str | None = None  # ISO 3166-1 alpha-2, upper case


class Enrichment(Protocol):
    def find_company(self, domain: str) -> CompanyProfile | None: ...


class HttpEnrichment:
    def __init__(self, base_url: str, timeout_seconds: float = 3.0, transport: httpx.BaseTransport | None = None,
                 token: TokenSource = no_token) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.token = token
        self._http = SharedClient(timeout_seconds, transport)

    def find_company(self, domain: str) -> CompanyProfile | None:
        import httpx

        headers = bearer(self.token())
        try:
            response = self._http.get().get(f"{self.base_url}/v2/companies/find", params={"domain": domain},
                                            headers=headers)
        except httpx.HTTPError as exc:  # not chained: its text may quote the URL
            raise EnrichmentUnavailable(f"enrichment request failed: {type(exc).__name__}", step=STEP) from None
        status = response.status_code
        if status == 404:
            return None
        if status in (202, 429) or status >= 500:
            raise EnrichmentUnavailable(f"enrichment answered {status}", step=STEP, status=status)
        if status != 200:
            raise EnrichmentRejected(f"enrichment refused the lookup ({status})", step=STEP, status=status)
        found: _Company = read_model(response, _Company, EnrichmentUnavailable,
                                     "enrichment answered with an unreadable company", STEP)
        code = (found.geo.countryCode or "").strip().upper()
        return CompanyProfile(name=found.name, domain=domain, employees=found.metrics.employees,
                              industry=found.category.industry,
                              country_code=code if len(code) == 2 and code.isalpha() else None)


@once_per_process
def from_settings() -> HttpEnrichment | None:
    """The process's enrichment connector, or None when ``enrichment_base_url`` is not set."""
    from interlock.connectors.http import token_source
    from interlock.settings import EnrichmentSettings, load

    settings = load(EnrichmentSettings)
    if not settings.enrichment_base_url:
        return None
    return HttpEnrichment(settings.enrichment_base_url, settings.enrichment_timeout_seconds,
                          token=token_source(settings.enrichment_key_secret, "", settings.enrichment_key_cache_seconds,
                                             reason="enrichment_key_unreadable"))
