"""Malformed requests to every local fake (``/_local/...``), handed to the fakes as the gateway hands them: whatever
is sent, the answer is below 500 (Slack's refusals are its own 200 with ``ok: false``), and a refusal changes
nothing a later request could see. Seeded and bounded (``SEED``); each run sends the same requests."""

from __future__ import annotations

import json
import random
from typing import Any

from interlock.local.fakes import LocalFakes
from interlock.local.http_types import Request

SEED = 20261202
CASES_PER_PATH = 40

PATHS = [
    "/_local", "/_local/", "/_local/nope", "/_local/crm", "/_local/crm/accounts", "/_local/crm/accounts/search",
    "/_local/crm/outage", "/_local/crm/crm/v3/objects/contacts", "/_local/crm/crm/v3/objects/contacts/search",
    "/_local/crm/crm/v3/objects/contacts/5001", "/_local/crm/crm/v3/objects/deals", "/_local/crm/crm/v3/objects/nope",
    "/_local/crm/crm/v4/objects/contacts/5001/associations/companies/1", "/_local/crm/crm/v3/objects/tasks/",
    "/_local/helpdesk/replies", "/_local/helpdesk/tasks", "/_local/helpdesk/tasks/", "/_local/helpdesk/outage",
    "/_local/enrichment/v2/companies/find",
    "/_local/enrichment/outage", "/_local/slack/api/chat.postMessage", "/_local/slack/api/nope",
    "/_local/slack/messages", "/_local/slack/outage", "/_local/slack/ratelimit",
    "/_local/erp/vendors/V-1001", "/_local/erp/vendors/search", "/_local/erp/vendors/%00", "/_local/erp/vendors",
    "/_local/erp/purchase-orders/PO-4500", "/_local/erp/purchase-orders/", "/_local/erp/ledger-entries",
    "/_local/erp/sales-orders/SO-10042", "/_local/erp/sales-orders/so-10042", "/_local/erp/sales-orders/%2e%2e",
    "/_local/erp/sales-orders", "/_local/erp/ledger-entries/search", "/_local/erp/ledger-entries/LE-000001",
    "/_local/erp/outage",
    "/_local/graph/v23.0/106540352242922/messages", "/_local/graph/v23.0/../messages", "/_local/graph/messages",
    "/_local/graph/outage", "/_local/graph/ratelimit",
]
# mostly the methods the fakes take, so that most requests reach the reading of their query and body
METHODS = ["POST"] * 6 + ["GET"] * 3 + ["PATCH"] * 2 + ["PUT", "DELETE", "OPTIONS", "HEAD", "FOO"]
ODD_VALUES: list[Any] = [None, True, 0, -1, 10**30, 1.5e308, "", "x" * 5000, "\x00\x1b[31m", [], {}, [1, {"a": []}],
                         {"enabled": "yes"}, {"enabled": None}, "ümlaut ☃"]


def _body(rng: random.Random) -> tuple[bytes, list[tuple[str, str]]]:
    kind = rng.randrange(6)
    if kind == 0:
        return b"", []
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))), [("Content-Type", "application/json")]
    if kind == 2:
        return b'{"email": ', [("Content-Type", "application/json")]
    if kind == 3:
        return json.dumps(rng.choice(ODD_VALUES)).encode(), [("Content-Type", "application/json")]
    if kind == 4:
        fields = {rng.choice(["email", "properties", "inputs", "filterGroups", "channel", "text", "to", "subject",
                              "body", "domain", "enabled", "limit", "after", "tax_id", "vendor_id",
                              "invoice_number", "total", "currency", "run_id", "approved_by", "title", "requester",
                              "team"]): rng.choice(ODD_VALUES)
                  for _ in range(rng.randrange(1, 5))}
        if isinstance(fields.get("enabled"), bool):  # {"enabled": true} is a well-formed switch, not fuzz
            fields["enabled"] = "yes"
        return json.dumps(fields).encode(), [("Content-Type", rng.choice(["application/json", "text/plain"]))]
    return b"a=1&b=2", [("Content-Type", "application/x-www-form-urlencoded")]


def _headers(rng: random.Random) -> list[tuple[str, str]]:
    choices = [("Authorization", "Bearer "), ("Authorization", "Basic xx"), ("Authorization", "Bearer \x00"),
               ("Idempotency-Key", ""), ("Idempotency-Key", "k" * 1000), ("Content-Type", "application/json; x")]
    return rng.sample(choices, rng.randrange(0, 3))


def _query(rng: random.Random) -> dict[str, list[str]]:
    names = ["email", "domain", "limit", "after", "properties", "associations"]
    values = ["", "-1", "x" * 300, "a@b", "1e9", "\x1b"]
    return {rng.choice(names): [rng.choice(values)] for _ in range(rng.randrange(3))}


def _switches(fakes: LocalFakes) -> dict[str, bool]:
    """What a later request could see of the fakes' switches."""
    switches = {name: getattr(fakes, name).outage.enabled
                for name in ("crm", "helpdesk", "enrichment", "slack", "erp", "graph")}
    return {**switches, "slack rate limit": fakes.slack.rate_limit.enabled,
            "graph rate limit": fakes.graph.rate_limit.enabled}


def test_malformed_requests_to_every_fake_get_an_answer_below_500_and_flip_no_switch() -> None:
    rng = random.Random(SEED)
    fakes = LocalFakes()
    before = _switches(fakes)
    ledger = fakes.erp.ledger()
    failures: list[str] = []
    sent = 0
    for path in PATHS:
        for _ in range(CASES_PER_PATH):
            body, content = _body(rng)
            request = Request(method=rng.choice(METHODS), path=path, query=_query(rng),
                              headers=content + _headers(rng), body=body)
            sent += 1
            try:
                answer = fakes.handle(request)
            except Exception as exc:  # the gateway would answer this 500
                failures.append(f"{request.method} {path} {body[:40]!r}: raised {type(exc).__name__}: {exc}")
                continue
            if answer.status >= 500:
                failures.append(f"{request.method} {path} {body[:40]!r}: {answer.status} {answer.body[:80]!r}")
    assert sent == len(PATHS) * CASES_PER_PATH
    assert not failures, "\n".join(failures[:30]) + f"\n...{len(failures)} in all"
    assert _switches(fakes) == before  # no malformed request took a fake down or rate-limited it
    assert fakes.erp.ledger() == ledger  # nor recorded an invoice
    assert fakes.helpdesk.tasks() == []  # nor opened a task (none carries a usable Idempotency-Key)
    assert fakes.graph.messages() == []  # nor sent a WhatsApp message (no request carries its token)
