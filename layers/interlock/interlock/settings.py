"""Environment settings, one small pydantic model per concern, validated at cold start.

Every field is read from ``INTERLOCK_<FIELD>``; a missing required value or a bad one fails the cold
start with a message naming the variable, instead of failing the first request.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PREFIX = "INTERLOCK_"


class SettingsError(RuntimeError):
    pass


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class TableSettings(_Settings):
    table_name: str = Field(min_length=1)


class IngestSettings(TableSettings):
    ingest_queue_url: str = Field(min_length=1)
    secret_prefix: str = "interlock/webhooks/"
    enabled_sources: str = "form"
    # 64 KiB: the envelope and the step outputs derived from it must fit Step Functions' 256 KB payload
    # limit together (a workflow's validate step copies the event's data into the state); an overflow would fail the
    # execution with States.DataLimitExceeded, which no Catch can record.
    max_body_bytes: int = Field(default=64 * 1024, gt=0, le=128 * 1024)
    timestamp_tolerance_seconds: int = Field(default=300, gt=0)
    secret_cache_seconds: int = Field(default=300, ge=0)
    # A delivery still "accepting" after this long was abandoned (the function died between recording it
    # and queueing it): the sender's next retry takes it over. Must exceed the ingest function's timeout.
    accepting_stale_seconds: int = Field(default=60, gt=0)
    # How long a redelivery that finds the first delivery still being accepted waits for it to settle before
    # answering 409 (kept well inside Slack's 3 s).
    in_progress_wait_seconds: float = Field(default=1.5, ge=0, le=2.5)
    # The public URL the API is called at (API Gateway does not pass the raw URL on): HubSpot signs it.
    public_base_url: str = ""
    # Sources for which HubSpot's legacy v1/v2 signatures are accepted (comma-separated); off by default.
    legacy_signature_sources: str = ""

    @field_validator("enabled_sources")
    @classmethod
    def _known_schemes(cls, value: str) -> str:
        from interlock.webhooks.registry import parse_enabled

        parse_enabled(value)  # a source naming no known scheme fails the cold start, not the first request
        return value


class RouterSettings(TableSettings):
    # {"<workflow>": "<ARN of its automatic state machine>"} (JSON): the machine the router starts for each workflow.
    state_machine_arns: dict[str, str] = Field(min_length=1)
    approval_timeout_seconds: int = Field(default=72 * 3600, gt=0)

    @field_validator("state_machine_arns", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        import json

        return json.loads(value) if isinstance(value, str) else value


class ReplaySettings(TableSettings):
    ingest_queue_url: str = Field(min_length=1)


class RedriveSettings(ReplaySettings):
    """The DLQ redrive (``interlock.dead_letters``): the ingest queue's DLQ, read, and the queue it moves back to."""

    ingest_dlq_url: str = Field(min_length=1)


class GuardrailSettings(TableSettings):
    approval_min_confidence: float = Field(default=0.75, ge=0, le=1)


class AiSettings(_Settings):
    """The AI decision layer (``interlock.ai``). The endpoint and key follow the openai SDK's own
    ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``; on AWS the key is read from the secret ``ai_api_key_secret``."""

    # auto: OpenAI when a key is configured, else the offline provider; openai: a key is required;
    # offline: never call a model.
    ai_provider: Literal["auto", "openai", "offline"] = "auto"
    ai_api_key_secret: str = ""
    ai_secret_cache_seconds: int = Field(default=300, ge=0)
    # The model tiers, tried in order: the first, then simpler (cheaper) ones.
    ai_model_tiers: str = "gpt-4.1-mini,gpt-4.1-nano"
    # Further tries per tier after an invalid, refused, disallowed, rate-limited or timed-out attempt.
    ai_retries_per_tier: int = Field(default=1, ge=0, le=5)
    # One call's timeout; a call never gets more than the step has left (the Lambda's remaining time).
    ai_call_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # Per-run ceilings over every decision of the run; reaching one escalates instead of calling again.
    ai_run_max_tokens: int = Field(default=20_000, gt=0)
    ai_run_max_cost_usd: float = Field(default=0.05, gt=0)
    # JSON price table additions, dollars per million tokens (interlock.ai.pricing).
    ai_prices: str = ""
    # A directory of policy files (<workflow>.md) replacing the packaged ones: the domain layer.
    ai_policy_dir: str = ""

    @field_validator("ai_model_tiers")
    @classmethod
    def _some_tiers(cls, value: str) -> str:
        if not [m for m in value.split(",") if m.strip()]:
            raise ValueError("name at least one model")
        return value

    @field_validator("ai_prices")
    @classmethod
    def _prices_parse(cls, value: str) -> str:
        from interlock.ai.pricing import PriceTable

        PriceTable.from_setting(value)
        return value

    @property
    def tiers(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.ai_model_tiers.split(",") if m.strip())


class CrmSettings(TableSettings):
    crm_base_url: str = ""
    crm_timeout_seconds: float = Field(default=3.0, gt=0)


class HelpdeskSettings(TableSettings):
    helpdesk_base_url: str = ""
    helpdesk_timeout_seconds: float = Field(default=5.0, gt=0)


class ApprovalWindow(_Settings):
    """How long an approval link works and how long the workflow waits for its decision. The link must outlive the
    wait: a link that expired while the run still waited would tell the approver the run was escalated when it was
    not, and leave nobody able to decide it. Both start when the approval is requested, so ttl >= timeout means a
    link is only ever expired once the wait is over. Checked at synthesis, at ``make run`` and at cold start."""

    approval_timeout_seconds: int = Field(default=72 * 3600, gt=0)
    approval_ttl_seconds: int = Field(default=72 * 3600, gt=0)

    @model_validator(mode="after")
    def _link_outlives_the_wait(self) -> ApprovalWindow:
        if self.approval_ttl_seconds < self.approval_timeout_seconds:
            raise ValueError(
                f"approval_ttl_seconds ({self.approval_ttl_seconds}) must be at least approval_timeout_seconds "
                f"({self.approval_timeout_seconds}): an approval link must not expire while its run still waits")
        return self


# How many different people one approval request may ask for (a workflow's ``approvers``), and how many addresses
# the approver pool may name (each gets its own link, so its own email, for every request).
MAX_APPROVERS = 5
MAX_APPROVER_POOL = 10
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+")


def approver_id(address: str) -> str:
    """Who an address is, for counting approvals: one person however the address is cased or spaced."""
    return address.strip().lower()


def whole_setting(name: str, raw: str, default: int, low: int, high: int) -> int:
    """A workflow's whole-number setting ``name`` (``default`` when empty); ValueError naming it when it is not a
    whole number from ``low`` to ``high`` (the same reading where the settings are checked and where steps use them)."""
    text = raw.strip()
    try:
        value = int(text) if text else default
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text[:40]!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")
    return value


def reading_problems(values: Mapping[str, str], readers: Mapping[str, Callable[[str], object]]) -> list[str]:
    """The message of each ValueError a setting's reader raises on its value (empty: missing): a workflow's
    ``settings_check`` made of the readers its steps use."""
    problems: list[str] = []
    for name, read in readers.items():
        try:
            read(values.get(name, ""))
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def optional_address_problems(name: str, value: str) -> list[str]:
    """What is wrong with the setting ``name`` naming who a workflow emails: empty (nobody) or one address (as an
    approver pool's entry is one)."""
    text = value.strip()
    if text and not _ADDRESS.fullmatch(text):
        return [f"{name} is one email address, or empty for nobody"]
    return []


def approver_pool(value: str) -> tuple[str, ...]:
    """The approver pool an ``approver_email`` setting names: one address, or several separated by commas (spaces
    around them allowed). A ValueError for an empty entry, something that is no address, the same person twice or
    more than :data:`MAX_APPROVER_POOL` addresses."""
    entries = [entry.strip() for entry in value.split(",")]
    if not any(entries):
        raise ValueError("approver_email names no approver: give one address, or several separated by commas")
    if not all(entries):
        raise ValueError("approver_email has an empty entry (two commas in a row, or one at an end)")
    bad = [entry for entry in entries if not _ADDRESS.fullmatch(entry)]
    if bad:
        raise ValueError(f"approver_email: {len(bad)} entr{'y is' if len(bad) == 1 else 'ies are'} not an email "
                         "address (addresses are separated by commas)")
    if len({approver_id(entry) for entry in entries}) != len(entries):
        raise ValueError("approver_email names the same approver twice: approvals are counted by person, so each "
                         "address may appear once")
    if len(entries) > MAX_APPROVER_POOL:
        raise ValueError(f"approver_email names {len(entries)} approvers; at most {MAX_APPROVER_POOL}")
    return tuple(entries)


def approvers_asked(definition: Any) -> list[int]:
    """The ``approvers`` every ``request_approval`` task of a state machine definition (parsed ASL) asks for as a
    number (a task that passes it from the state, ``approvers.$``, is only known when it runs)."""
    found: list[int] = []
    if isinstance(definition, dict):
        if definition.get("step") == "request_approval" and "approvers.$" not in definition:
            asked = definition.get("approvers", 1)
            if isinstance(asked, int) and not isinstance(asked, bool):
                found.append(asked)
        for value in definition.values():
            found += approvers_asked(value)
    elif isinstance(definition, list):
        for value in definition:
            found += approvers_asked(value)
    return found


def quorum_problems(pool_setting: str, workflows: Any) -> list[str]:
    """A sentence for each workflow whose wait asks more different approvers than the pool names (it could never
    be approved), and for a pool that is no list of distinct addresses."""
    try:
        pool = approver_pool(pool_setting)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    for workflow in workflows:
        if not workflow.wait:
            continue
        asked = approvers_asked(json.loads(workflow.definition_path("wait").read_text(encoding="utf-8")))
        if asked and max(asked) > len(pool):
            problems.append(f"workflow {workflow.name!r} asks {max(asked)} different approvers, and approver_email "
                            f"names {len(pool)}: its approvals could never be given")
    return problems


class ApproverPool(_Settings):
    """Who approves: ``approver_email`` is the pool, one address or several, comma-separated. Every address gets its
    own link for every approval request; a request asking N approvers (its ``approvers``) waits for N different
    addresses of the pool to approve, or for the first rejection. Checked at synthesis, at ``make run`` (with the
    workflows' asks: a wait asking more approvers than the pool names is refused) and at cold start."""

    approver_email: str = Field(min_length=3)

    @field_validator("approver_email")
    @classmethod
    def _a_pool(cls, value: str) -> str:
        approver_pool(value)
        return value


class ApprovalRequestSettings(TableSettings, ApprovalWindow, ApproverPool):
    public_base_url: str = Field(min_length=1)
    sender_email: str = Field(min_length=3)


S = TypeVar("S", bound=_Settings)


def env_seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment variable ``name``: ``default`` when unset, not a number, or
    negative (a tuning knob read where it is used, not a deployment setting)."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value >= 0 else default


@cache
def load(cls: type[S]) -> S:
    """Read ``cls`` from the environment once per process (that is, once per cold start)."""
    values = {}
    for name in cls.model_fields:
        raw = os.environ.get(PREFIX + name.upper())
        if raw is not None:
            values[name] = raw
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            (f"{PREFIX}{'.'.join(str(p) for p in err['loc']).upper()}: " if err["loc"] else "") + err["msg"]
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings for {cls.__name__}: {problems}") from exc


class EffectSettings(TableSettings):
    # How long an effect started by another attempt is taken to be still in progress; after that, the attempt
    # is taken to have died and the effect is redone with the same idempotency key. At least the worker's timeout.
    effect_stale_seconds: float = Field(default=60.0, gt=0)


# -- the sales-ops lead workflow's connectors (interlock.connectors; docs in workflows/sales_lead/README.md) -----


class CrmTokenSettings(_Settings):
    """The CRM's bearer token (a HubSpot private app's access token) for the HubSpot-shaped CRM v3 calls: the
    Secrets Manager secret ``crm_token_secret`` names (plain text, or JSON ``{"token": "..."}``), else nothing (the
    local fake CRM needs none)."""

    crm_token_secret: str = ""
    crm_token_cache_seconds: int = Field(default=300, ge=0)


class EnrichmentSettings(_Settings):
    """The company enrichment service (``GET {base}/v2/companies/find?domain=``, Clearbit's shape); empty base: not
    configured (every lead is enriched as ``failed: enrichment_not_configured``, and a person researches it)."""

    enrichment_base_url: str = ""
    enrichment_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    enrichment_key_secret: str = ""
    enrichment_key_cache_seconds: int = Field(default=300, ge=0)


class SlackSettings(_Settings):
    """The Slack Web API (``POST {slack_api_url}/api/chat.postMessage``); empty URL: not configured.

    The bot token is read from the Secrets Manager secret ``slack_token_secret`` (plain text, or JSON
    ``{"token": "..."}``). ``slack_token`` is the token itself, for a laptop only (the local fake Slack's token is
    its default there); a deployment leaves it empty and uses the secret."""

    slack_api_url: str = ""
    slack_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    slack_token_secret: str = ""
    slack_token: str = ""
    slack_token_cache_seconds: int = Field(default=300, ge=0)


class WhatsAppSettings(_Settings):
    """The WhatsApp Cloud API on the Graph API (``POST {whatsapp_graph_url}/{whatsapp_api_version}/{phone-number-id}
    /messages``); empty URL: not configured.

    The access token (a System User's token) is read from the Secrets Manager secret ``whatsapp_token_secret``
    (plain text, or JSON ``{"token": "..."}``). ``whatsapp_token`` is the token itself, for a laptop only (the
    local fake Graph API's token is its default there); a deployment leaves it empty and uses the secret."""

    whatsapp_graph_url: str = ""
    whatsapp_api_version: str = Field(default="v23.0", pattern=r"^v[0-9]{1,3}\.[0-9]{1,2}$")
    whatsapp_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    whatsapp_token_secret: str = ""
    whatsapp_token: str = ""
    whatsapp_token_cache_seconds: int = Field(default=300, ge=0)


# -- the invoice intake workflow's connector (interlock.connectors.erp; workflows/invoice_intake/README.md) -------


class ErpSettings(_Settings):
    """The ERP (vendor master, purchase orders, the ledger); empty base URL: not configured (an invoice cannot be
    compared or recorded, and its run fails with ``erp_not_configured``). The bearer token is read from the Secrets
    Manager secret ``erp_token_secret`` (plain text, or JSON ``{"token": "..."}``), else none is sent."""

    erp_base_url: str = ""
    erp_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    erp_token_secret: str = ""
    erp_token_cache_seconds: int = Field(default=300, ge=0)
