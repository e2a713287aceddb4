"""What the lead workflow's unit tests share: the real connectors served by the local fakes through an httpx
MockTransport (no socket), a tiny in-memory ledger behind ``ctx.once``, and a StepContext for a step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from interlock.connectors.crm import HttpCrm
from interlock.connectors.enrichment import HttpEnrichment
from interlock.connectors.slack import HttpSlack
from interlock.kit.context import Services, StepContext
from interlock.local.fakes import FAKE_SLACK_TOKEN, FakeCrm, FakeEnrichment, FakeSlack
from interlock.local.http_types import Request
from interlock.models import Envelope
from interlock.workflows.sales_lead import WORKFLOW
from pydantic import BaseModel

from unit.fakes import RecordingTimeline, offline_runner

BASE = "http://127.0.0.1:8000/_local"


def served_by(handle: Callable[[Request, str], Any], mount: str,
              seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    """An httpx transport handing each request to a fake, as the local gateway does under ``/_local/<mount>``."""

    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        query = {key: request.url.params.get_list(key) for key in request.url.params}
        local = Request(request.method, request.url.path, query, list(request.headers.items()), request.content)
        response = handle(local, request.url.path.removeprefix(f"/_local/{mount}"))
        return httpx.Response(response.status, headers=response.headers, content=response.body)

    return httpx.MockTransport(answer)


@dataclass
class MemoryLedger:
    """``once``: ``do(key)`` the first time per (run, step, effect), the stored result every time after."""

    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def once(self, ctx: StepContext, effect: str, do: Callable[[str], Any], model: type[BaseModel]) -> Any:
        key = f"{ctx.run_id}:{ctx.step}:{effect}"
        if key in self.done:
            ctx.skipped.append({"effect": effect, "key": key})
            return model.model_validate(self.done[key])
        self.calls.append(key)
        result = do(key)
        self.done[key] = result.model_dump(mode="json")
        return result


@dataclass
class World:
    """The fakes, the real connectors speaking to them, and what a step's context is built from."""

    crm_fake: FakeCrm = field(default_factory=FakeCrm)
    enrichment_fake: FakeEnrichment = field(default_factory=FakeEnrichment)
    slack_fake: FakeSlack = field(default_factory=FakeSlack)
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    timeline: RecordingTimeline = field(default_factory=RecordingTimeline)
    settings: dict[str, str] = field(default_factory=lambda: {"sales_discount_approval_pct": ""})
    seen: list[httpx.Request] = field(default_factory=list)
    runner: Any = None
    configured: set[str] = field(default_factory=lambda: {"crm", "enrichment", "slack"})

    def __post_init__(self) -> None:
        self.crm = HttpCrm(f"{BASE}/crm", transport=served_by(self.crm_fake.handle, "crm", self.seen))
        self.enrichment = HttpEnrichment(f"{BASE}/enrichment",
                                         transport=served_by(self.enrichment_fake.handle, "enrichment", self.seen))
        self.slack = HttpSlack(f"{BASE}/slack", transport=served_by(self.slack_fake.handle, "slack", self.seen),
                               token=lambda: FAKE_SLACK_TOKEN)
        if self.runner is None:
            self.runner = offline_runner(self.timeline)

    def connector(self, name: str) -> Any:
        return getattr(self, name) if name in self.configured else None

    def ctx(self, step: str, run_id: str = "run-1", attempt: int = 0) -> StepContext:
        declared = WORKFLOW.step(step)
        services = Services(timeline=self.timeline, ledger=self.ledger, decisions=lambda: self.runner,
                            connectors=self.connector, settings=self.settings.__getitem__)
        return StepContext(run_id=run_id, attempt=attempt, workflow=WORKFLOW.name, step=step, deadline=None,
                           services=services, connectors=declared.connectors, settings=WORKFLOW.settings)


def form_envelope(data: dict[str, Any], event_type: str = "lead.submitted") -> Envelope:
    return Envelope(event_id="msg_1", source="form", type=event_type, payload_version="standard-webhooks.v1",
                    received_at="2025-01-15T09:30:00Z", dedupe_key="form:msg_1", run_id="run-1",
                    payload={"type": event_type, "data": data})


def hubspot_envelope(object_id: Any) -> Envelope:
    element = {"eventId": 1, "subscriptionType": "contact.creation", "portalId": 62515, "objectId": object_id}
    return Envelope(event_id="62515:1:1", source="hubspot", type="hubspot.contact.creation",
                    payload_version="hubspot.webhooks.v3", received_at="2025-01-15T09:30:00Z",
                    dedupe_key="hubspot:62515:1:1", run_id="run-1", payload=element)


LEAD = {"name": "Jordan Rivera", "email": "jordan.rivera@hooli.example", "company": "Hooli",
        "company_domain": "hooli.example", "message": "We would like pricing and a demo for 400 seats.",
        "requested_discount_pct": 20, "plan_interest": "enterprise"}
