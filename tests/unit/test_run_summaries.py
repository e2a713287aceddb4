"""Each workflow's ``run_summary``: the subject and the customer an operator's list shows of a run, read from the
event that starts it. The realistic events are made as the platform makes them: a provider's body through its
webhook source (the payload as the workflows see it), a schedule's firing, a follow-up and a table's status change
through the kit's own builders. The adversarial cases feed every starting event type garbage: a summary never
raises, whatever an outsider sent."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from interlock.kit import RunSummary, Workflow, registry
from interlock.kit.follow_ups import follow_up_envelope, messages
from interlock.kit.triggers import ScheduleMessage, StreamRecord, schedule_envelope, status_change_envelope
from interlock.kit.worker import imported
from interlock.models import Envelope, run_id_for
from interlock.settings import IngestSettings
from interlock.webhooks.base import Delivery, WebhookSource
from interlock.webhooks.sources.hubspot import HubSpotSource
from interlock.webhooks.sources.slack import SlackSource
from interlock.webhooks.sources.standard_webhooks import StandardWebhooksSource
from interlock.webhooks.sources.stripe import StripeSource
from interlock.webhooks.sources.whatsapp import WhatsAppSource

from tests import assistant_messages as chat

WORKFLOWS = Path(__file__).resolve().parents[2] / "layers" / "interlock" / "interlock" / "workflows"
NAMES = ("support_triage", "sales_lead", "payment_recovery", "invoice_intake", "assistant")
SETTINGS = IngestSettings(table_name="t", ingest_queue_url="q", public_base_url="https://interlock.example")
SOURCES: dict[str, Callable[[str, IngestSettings], WebhookSource]] = {
    "form": StandardWebhooksSource, "hubspot": HubSpotSource, "stripe": StripeSource, "slack": SlackSource,
    "whatsapp": WhatsAppSource}
RUN = "11111111-2222-5333-8444-555555555555"


def workflow(name: str) -> Workflow:
    return registry.workflows("")[name]  # the built-in workflows, whatever INTERLOCK_EXTRA_WORKFLOWS says


def summary_of(name: str) -> Callable[[Envelope], RunSummary]:
    path = workflow(name).run_summary
    assert path is not None, name
    return imported(path)


def sample(name: str, file: str) -> bytes:
    return (WORKFLOWS / name / "samples" / file).read_bytes()


def received(source: str, body: bytes | dict[str, Any] | list[Any]) -> list[Envelope]:
    """The envelopes the ingest makes of a provider's body: its source's own events (signatures are checked
    elsewhere; here only the payloads matter)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    webhook = SOURCES[source](source, SETTINGS)
    delivery = Delivery(source=source, method="POST", headers={"webhook-id": f"msg_{uuid.uuid4().hex}"}, query={},
                        body=raw, path=f"/webhooks/{source}")
    return [Envelope(event_id=e.event_id, source=source, type=e.type, payload_version=webhook.payload_version,
                     received_at=datetime.now(UTC), dedupe_key=f"{source}:{e.event_id}",
                     run_id=run_id_for(f"{source}:{e.event_id}"), payload=e.payload)
            for e in webhook.events(delivery)]


def one(source: str, body: bytes | dict[str, Any] | list[Any]) -> Envelope:
    (envelope,) = received(source, body)
    return envelope


def form(event_type: str, data: dict[str, Any]) -> Envelope:
    return one("form", {"type": event_type, "timestamp": "2025-03-04T08:15:00Z", "data": data})


def firing(workflow_name: str, schedule: str) -> Envelope:
    message = ScheduleMessage(kind="interlock.schedule", workflow=workflow_name, schedule=schedule,
                              scheduled_time="2026-12-02T07:00:00Z")
    return schedule_envelope(message, workflow(workflow_name), datetime.now(UTC))


def follow_up(workflow_name: str, name: str, key: str, data: dict[str, Any]) -> Envelope:
    (message,) = messages(workflow_name, name, RUN, [(key, data)])
    return follow_up_envelope(message, workflow(workflow_name), datetime.now(UTC))


def status_change(workflow_name: str, change_name: str, keys: dict[str, Any], old: dict[str, Any],
                  new: dict[str, Any]) -> Envelope:
    """A DynamoDB stream record (its images in DynamoDB JSON, strings as the invoices table writes them)."""
    (change,) = [c for c in workflow(workflow_name).status_changes if c.name == change_name]

    def image(values: dict[str, Any]) -> dict[str, Any]:
        return {k: {"S": v} for k, v in values.items()}

    record = StreamRecord.model_validate({
        "eventID": uuid.uuid4().hex, "eventName": "MODIFY", "eventSource": "aws:dynamodb",
        "eventSourceARN": f"arn:aws:dynamodb:eu-west-1:123456789012:table/interlock-{change.table}/stream/2026",
        "dynamodb": {"Keys": image(keys), "SequenceNumber": "4421584500000000017450439091",
                     "OldImage": image({**new, **old}), "NewImage": image(new)}})
    return status_change_envelope(record, change.table, change, datetime.now(UTC))


def raw(source: str, event_type: str, payload: Any, payload_version: str = "test.v1") -> Envelope:
    """An envelope as the router gets it, its payload anything at all (``model_construct``: a payload that is not
    even an object gets through too)."""
    return Envelope.model_construct(event_id="e-1", source=source, type=event_type, payload_version=payload_version,
                                    received_at=datetime.now(UTC), dedupe_key=f"{source}:e-1", run_id=RUN,
                                    payload=payload)


# -- the declarations ------------------------------------------------------------------------------------------------


def test_every_workflow_declares_a_run_summary_that_imports_and_is_callable() -> None:
    found = registry.workflows("")
    assert set(NAMES) <= set(found)
    for name, declared in found.items():
        assert declared.run_summary == f"interlock.workflows.{name}.summary:summary", name
        function = imported(declared.run_summary)
        assert callable(function), name
        assert isinstance(function(raw("nobody", "nothing", {})), RunSummary), name


# -- realistic events ----------------------------------------------------------------------------------------------


def test_a_support_ticket_is_listed_by_its_subject_and_the_customers_email() -> None:
    summary = summary_of("support_triage")
    cases = [
        (one("form", sample("support_triage", "form_support_ticket.json")),
         RunSummary(subject="Question about my latest invoice", customer="ada@example.com")),
        (one("form", sample("support_triage", "form_refund_request.json")),
         RunSummary(subject="Refund request: billed twice this month", customer="grace@example.com")),
        (form("support.ticket", {"subject": "  ", "body": "My export has been stuck at 99% since this morning, and "
                                 "the support page times out when I try to open a ticket there.",
                                 "customer_email": "Ops@Acme.example"}),
         RunSummary(subject="My export has been stuck at 99% since this morning, and the support page times...",
                    customer="Ops@Acme.example")),
    ]
    for envelope, expected in cases:
        assert summary(envelope) == expected


def test_a_lead_is_listed_by_its_company_and_name_and_a_hubspot_contact_by_its_id() -> None:
    summary = summary_of("sales_lead")
    assert summary(one("form", sample("sales_lead", "form_lead_submitted.json"))) == RunSummary(
        subject="Hooli (Jordan Rivera)", customer="jordan.rivera@hooli.example")
    assert summary(one("form", sample("sales_lead", "form_lead_freemail.json"))) == RunSummary(
        subject="Morgan Advisory (Alex Morgan)", customer="alex.morgan.consulting@gmail.com")
    assert summary(form("lead.submitted", {"email": "sam@initech.example", "company_domain": "initech.example"})) \
        == RunSummary(subject="initech.example", customer="sam@initech.example")
    contacts = received("hubspot", sample("sales_lead", "hubspot_contact_creation.json"))
    assert [e.type for e in contacts] == ["hubspot.contact.creation"] * 2
    assert [summary(e) for e in contacts] == [
        RunSummary(subject="New HubSpot contact 95001234501", customer="hubspot:95001234501"),
        RunSummary(subject="New HubSpot contact 95001234502", customer="hubspot:95001234502")]


def test_a_failed_payment_is_listed_by_its_invoice_and_amount_and_the_customers_email() -> None:
    summary = summary_of("payment_recovery")
    failed = json.loads(sample("payment_recovery", "stripe_invoice_payment_failed.json"))
    assert summary(one("stripe", failed)) == RunSummary(
        subject="Payment failed: invoice A1B2C3D4-0007 (in_1QpR7sJq2X8pYz7aN4cD9eFg), USD 49.00",
        customer="ada@example.com")
    invoice = failed["data"]["object"]
    variants: list[tuple[dict[str, Any], str, str]] = [
        ({"number": None, "id": "in_123", "amount_due": 4200, "currency": "eur"},
         "Payment failed: invoice in_123, EUR 42.00", "ada@example.com"),
        ({"customer_email": None, "amount_due": 420000, "currency": "jpy"},
         "Payment failed: invoice A1B2C3D4-0007 (in_1QpR7sJq2X8pYz7aN4cD9eFg), JPY 420,000", "cus_RdL8mT2vXq9wPz"),
        ({"customer_email": None, "customer": {"id": "cus_1", "email": "billing@acme.example"}, "amount_due": None},
         "Payment failed: invoice A1B2C3D4-0007 (in_1QpR7sJq2X8pYz7aN4cD9eFg)", "billing@acme.example"),
    ]
    for changes, subject, customer in variants:
        event = {**failed, "id": f"evt_{uuid.uuid4().hex}", "data": {"object": {**invoice, **changes}}}
        assert summary(one("stripe", event)) == RunSummary(subject=subject, customer=customer)


def test_an_invoice_is_listed_by_its_number_and_vendor_or_its_files_name_and_the_afterwards_runs_by_the_entry() -> None:
    summary = summary_of("invoice_intake")
    for file, number, vendor in [("form_invoice_clean.json", "ACME-2025-1001", "Acme Office Supplies GmbH"),
                                 ("form_invoice_mismatch.json", "NW-88120", "Northwind Logistics Ltd"),
                                 ("form_invoice_large.json", "GLX-77001", "Globex Industrial B.V.")]:
        assert summary(one("form", sample("invoice_intake", file))) == RunSummary(
            subject=f"Invoice {number} from {vendor}", customer=vendor), file
    assert summary(one("form", sample("invoice_intake", "form_invoice_pdf.json"))) == RunSummary(
        subject="Invoice file NW-88123.pdf")
    assert summary(one("form", sample("invoice_intake", "form_invoice_scanned.json"))) == RunSummary(
        subject="Invoice file scan-0001.pdf")
    pdf = base64.b64encode(b"%PDF-1.4\nnot really a pdf").decode()
    assert summary(form("invoice.received", {"document": {"pdf_base64": pdf}})) == RunSummary(subject="Invoice PDF")
    upload = "upload_" + "a" * 43
    assert summary(form("invoice.received", {"document": {"upload": upload, "filename": "Q4 rent.pdf"}})) == \
        RunSummary(subject="Invoice file Q4 rent.pdf")
    assert summary(form("invoice.received", {"document": {"upload": upload}})) == RunSummary(
        subject="Uploaded invoice")
    assert summary(form("invoice.received", {"document": {"text": "Rechnung Nr. 7 der Stadtwerke"}})) == RunSummary(
        subject="Invoice: Rechnung Nr. 7 der Stadtwerke")
    assert summary(form("invoice.received", {"document": {"text": "Supplier: Initech\nInvoice No: 2025/77\n"}})) == \
        RunSummary(subject="Invoice 2025/77 from Initech", customer="Initech")

    assert summary(firing("invoice_intake", "past_due_check")) == RunSummary(subject="Scheduled: past_due_check")
    assert summary(follow_up("invoice_intake", "past_due", "invoice:LE-1001:2026-12-02",
                             {"invoice_id": "LE-1001", "as_of": "2026-12-02"})) == RunSummary(
        subject="Past due: ledger entry LE-1001 (as of 2026-12-02)")
    record = {"invoice_id": "LE-1001", "vendor_id": "V-100", "invoice_number": "ACME-2025-1001", "total": "476.00",
              "currency": "EUR", "due_date": "2025-04-02", "run_id": RUN, "recorded_at": "2025-03-04T08:16:00Z"}
    approved = status_change("invoice_intake", "approved_for_payment", {"invoice_id": "LE-1001"},
                             {"status": "recorded"}, {**record, "status": "approved"})
    assert approved.type == "invoices.status:recorded->approved"
    assert summary(approved) == RunSummary(subject="Approved for payment: invoice ACME-2025-1001, 476.00 EUR",
                                           customer="V-100")


def whatsapp_message(message: dict[str, Any], wa_id: str = chat.CUSTOMER) -> Envelope:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": chat.PHONE_NUMBER_ID},
             "contacts": [{"profile": {"name": "A customer"}, "wa_id": wa_id}],
             "messages": [{"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": "1736933400", **message}]}
    return one("whatsapp", {"object": "whatsapp_business_account",
                            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]})


def test_an_assistant_turn_is_listed_by_the_first_words_and_the_customers_whatsapp_or_slack_id() -> None:
    summary = summary_of("assistant")
    customer = chat.CUSTOMER
    long_text = "Hello, I ordered two chairs last week and only one arrived, " + "the other is still missing " * 20
    cases = [
        (one("whatsapp", chat.whatsapp("Where is my order SO-10042?")),
         RunSummary(subject="Where is my order SO-10042?", customer=customer)),
        (one("whatsapp", chat.whatsapp(long_text)),
         RunSummary(subject="Hello, I ordered two chairs last week and only one arrived, the other is still...",
                    customer=customer)),
        (one("whatsapp", chat.whatsapp(reply=("track", "Track my order"))),
         RunSummary(subject="Track my order", customer=customer)),
        (whatsapp_message({"type": "button", "button": {"text": "Talk to a person", "payload": "person"}}),
         RunSummary(subject="Talk to a person", customer=customer)),
        (whatsapp_message({"type": "image", "image": {"id": "1003383421387256", "caption": "The broken leg"}}),
         RunSummary(subject="The broken leg", customer=customer)),
        (whatsapp_message({"type": "location", "location": {"latitude": 51.5, "longitude": -0.12, "name": "Home",
                                                            "address": "1 High Street"}}),
         RunSummary(subject="Home 1 High Street", customer=customer)),
        (whatsapp_message({"type": "audio", "audio": {"id": "1", "mime_type": "audio/ogg"}}),
         RunSummary(subject="WhatsApp audio message", customer=customer)),
        (one("whatsapp", chat.whatsapp_status("wamid.SENT1", "delivered", wa_id=customer)),
         RunSummary(subject="WhatsApp message delivered", customer=customer)),
        (one("whatsapp", chat.whatsapp_status("wamid.SENT1", "failed", wa_id=customer, error_code=131047)),
         RunSummary(subject="WhatsApp message failed (error 131047)", customer=customer)),
        (one("slack", json.loads((WORKFLOWS.parent / "samples" / "slack.json").read_bytes())),
         RunSummary(subject="my latest invoice has a VAT line I don't recognise, can you check?",
                    customer="U061F7AUR")),
        (one("slack", chat.slack_direct_message("Can I change my plan?", user="U07ADA0001")),
         RunSummary(subject="Can I change my plan?", customer="U07ADA0001")),
        (one("slack", chat.slack_button("yes", "Yes, track it", channel="C0LAN2Q65", thread_ts=chat.slack_ts())[0]),
         RunSummary(subject="Clicked: Yes, track it", customer="U061F7AUR")),
    ]
    for envelope, expected in cases:
        assert summary(envelope) == expected, envelope.type
    started = {e.type for e, _ in cases}
    assert started <= {t.event_type for t in workflow("assistant").triggers}
    assert {"whatsapp.message.text", "whatsapp.status.failed", "slack.app_mention", "slack.message",
            "slack.interaction.block_actions"} <= started

    conversation = f"whatsapp:{chat.PHONE_NUMBER_ID}:{customer}"
    thread = f"slack:{chat.TEAM}:C0LAN2Q65:1736933400.000200"
    assert summary(follow_up("assistant", "next_turn", "k1", {"conversation": conversation})) == RunSummary(
        subject="Next turn of a WhatsApp conversation", customer=customer)
    assert summary(follow_up("assistant", "next_turn", "k2", {"conversation": thread})) == RunSummary(
        subject="Next turn of a Slack conversation")
    assert summary(follow_up("assistant", "page_reply", "page:k3", {
        "conversation": conversation, "text": "Your refund is on its way.", "by": "ops@acme.example"})) == RunSummary(
        subject="Reply by ops@acme.example: Your refund is on its way.", customer=customer)
    assert summary(follow_up("assistant", "page_hand_back", "page:k4",
                             {"conversation": conversation, "by": "ops@acme.example"})) == RunSummary(
        subject="Handed back by ops@acme.example", customer=customer)


# -- adversarial payloads ------------------------------------------------------------------------------------------

HUGE = "x" * 100_000


def starting_events(name: str) -> list[tuple[str, str]]:
    """Every (source, event type) that starts a run of the workflow (its routes)."""
    return sorted(key for key, owner in registry.routes("").items() if owner == name)


def with_huge_strings(value: Any) -> Any:
    """``value`` with every string a 100 KB one (keys kept)."""
    if isinstance(value, str):
        return HUGE + value
    if isinstance(value, dict):
        return {k: with_huge_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_huge_strings(v) for v in value]
    return value


def with_every_leaf(value: Any, leaf: Any) -> Any:
    """``value``'s shape with every scalar replaced by ``leaf``."""
    if isinstance(value, dict):
        return {k: with_every_leaf(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [with_every_leaf(v, leaf) for v in value]
    return leaf


def realistic_payloads() -> dict[str, list[dict[str, Any]]]:
    """One realistic payload per kind of starting event, each workflow's: the shapes the garbage is made from."""
    failed = json.loads(sample("payment_recovery", "stripe_invoice_payment_failed.json"))
    return {
        "support_triage": [json.loads(sample("support_triage", "form_support_ticket.json"))],
        "sales_lead": [json.loads(sample("sales_lead", "form_lead_submitted.json")),
                       json.loads(sample("sales_lead", "hubspot_contact_creation.json"))[0]],
        "payment_recovery": [failed, {**failed, "data": {"object": {**failed["data"]["object"],
                                                                    "customer": {"id": "cus_1", "email": "a@b.c"}}}}],
        "invoice_intake": [json.loads(sample("invoice_intake", "form_invoice_clean.json")),
                           json.loads(sample("invoice_intake", "form_invoice_pdf.json")),
                           {"type": "invoice.received", "data": {"document": {"upload": "upload_x", "filename": "a"}}},
                           firing("invoice_intake", "past_due_check").payload,
                           follow_up("invoice_intake", "past_due", "k", {"invoice_id": "LE-1", "as_of": "2026-12-02"}
                                     ).payload,
                           {"keys": {"invoice_id": "LE-1"}, "item": {"invoice_number": "N-1", "total": "1.00",
                                                                     "currency": "EUR", "vendor_id": "V-1"}}],
        "assistant": [one("whatsapp", chat.whatsapp("hi")).payload,
                      one("whatsapp", chat.whatsapp(reply=("a", "b"))).payload,
                      whatsapp_message({"type": "location", "location": {"name": "a", "address": "b"}}).payload,
                      one("whatsapp", chat.whatsapp_status("wamid.S", "failed", wa_id="1", error_code=1)).payload,
                      one("slack", chat.slack_mention("hi")).payload,
                      one("slack", chat.slack_button("a", "b", channel="D1", thread_ts=chat.slack_ts())[0]).payload,
                      {"workflow": "assistant", "follow_up": "page_reply", "key": "k", "started_by": RUN,
                       "data": {"conversation": "whatsapp:1:2", "text": "t", "by": "b"}}],
    }


GARBAGE: list[Any] = [
    {}, {"x": None}, None, [], [{}], [None], 0, 1, -1, 10**4000, 1.5, float("nan"), float("inf"), True, "", " ",
    HUGE, b"bytes", {"data": None}, {"data": []}, {"data": "text"}, {"data": 12}, {"data": {"object": None}},
    {"data": {"object": []}}, {"data": {"object": {"id": ["in_1"], "amount_due": "42", "currency": 978}}},
    {"data": {"object": {"amount_due": 10**4000, "currency": "eur"}}},
    {"data": {"object": {"amount_due": -5, "currency": "EURO"}}},
    {"data": {"document": None}}, {"data": {"document": []}}, {"data": {"document": {"text": None}}},
    {"data": {"document": {"text": ["a"], "filename": {"a": 1}}}}, {"data": {"document": {"text": HUGE}}},
    {"data": {"document": {"text": ":" * 100_000}}}, {"data": {"document": {"text": "Vendor:" + " " * 100_000}}},
    {"data": {"document": {"text": "\n" * 100_000}}}, {"data": {"document": {"text": "(" * 100_000 + ":"}}},
    {"data": {"document": {"text": "Invoice number: \x00\u202e" + HUGE}}},
    {"data": {"subject": {}, "body": [], "customer_email": 5}}, {"data": {"company": 1, "name": None, "email": []}},
    {"objectId": None}, {"objectId": True}, {"objectId": 10**4000}, {"objectId": -1}, {"objectId": "9" * 100_000},
    {"objectId": [1]}, {"objectId": 1.5}, {"message": None}, {"message": []}, {"message": {"type": None}},
    {"message": {"type": []}}, {"message": {"type": {}}}, {"message": {"type": "interactive", "interactive": []}},
    {"message": {"type": "interactive", "interactive": {"type": ["x"]}}},
    {"message": {"type": "interactive", "interactive": {"type": "type"}}},
    {"message": {"type": "text", "text": "not an object"}}, {"message": {"type": "text", "text": {"body": HUGE}}},
    {"message": {"type": "location", "location": {"name": HUGE, "address": HUGE, "latitude": "x"}}},
    {"status": None}, {"status": {"errors": None}}, {"status": {"errors": [None]}}, {"status": {"errors": "x"}},
    {"status": {"errors": [{"code": 10**4000}]}}, {"status": {"errors": [{"code": True}]}},
    {"event": None}, {"event": []}, {"event": {"text": None, "user": {}}}, {"event": {"text": "<@U1>" * 20_000}},
    {"actions": None}, {"actions": {}}, {"actions": [None]}, {"actions": [{"text": "x"}]}, {"user": "U1"},
    {"user": []}, {"schedule": None}, {"schedule": []}, {"keys": None, "item": None}, {"keys": [], "item": []},
    {"item": {"total": 10**4000, "currency": float("nan"), "invoice_number": 1e300, "vendor_id": True}},
    {"item": {"total": float("inf"), "invoice_number": [], "vendor_id": {}}},
    {"data": {"conversation": None}}, {"data": {"conversation": ["whatsapp", "1", "2"]}},
    {"data": {"conversation": "whatsapp:" + ":" * 100_000}}, {"data": {"conversation": "whatsapp:1:" + HUGE}},
    {"data": {"conversation": "whatsapp:1:2", "text": {}, "by": []}}, {"follow_up": None, "data": 5},
]


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def bad_payloads(name: str) -> Iterator[Any]:
    yield from GARBAGE
    for payload in realistic_payloads()[name]:
        yield payload
        yield with_huge_strings(payload)
        for leaf in (None, [], {}, 7, True, 1.5, "", HUGE, [HUGE], {"x": HUGE}):
            yield with_every_leaf(payload, leaf)
        for key in payload:  # each top-level field alone replaced, then dropped
            others: tuple[Any, ...] = (None, [], 0, HUGE, {"x": []})
            for other in others:
                yield {**payload, key: other}
            yield {k: v for k, v in payload.items() if k != key}


@pytest.mark.parametrize("name", NAMES)
def test_a_summary_never_raises_whatever_the_payload_of_any_event_that_starts_the_workflow(name: str) -> None:
    summary = summary_of(name)
    events = starting_events(name)
    assert events, name
    tried = 0
    for source, event_type in [*events, ("form", "unknown.event"), ("workflow", f"{name}.no_such_follow_up")]:
        for payload in bad_payloads(name):
            for envelope in (raw(source, event_type, payload), raw(source, event_type, payload, "whatsapp.v1")):
                result = summary(envelope)
                assert isinstance(result, RunSummary), (source, event_type)
                for value in (result.subject, result.customer):
                    assert value is None or isinstance(value, str), (source, event_type, type(value))
                    # what it builds stays short: a long string of the payload is passed on as it is, never added to
                    assert value is None or len(value) <= 400 or value in {s.strip() for s in strings_in(payload)}, (
                        source, event_type)
                tried += 1
    assert tried > 100 * len(events)


def test_a_summary_takes_an_envelope_whose_source_and_type_are_garbage_too() -> None:
    for name in NAMES:
        summary = summary_of(name)
        for source, event_type in [("", ""), ("schedule", ""), ("workflow", "."), ("table", HUGE),
                                   ("whatsapp", "whatsapp.message."), ("whatsapp", "whatsapp.status.")]:
            assert isinstance(summary(raw(source, event_type, {})), RunSummary), (name, source, event_type)


def test_the_test_events_are_what_the_platform_routes_to_each_workflow() -> None:
    routes = registry.routes("")
    envelopes = {
        "support_triage": [one("form", sample("support_triage", "form_support_ticket.json"))],
        "sales_lead": [one("form", sample("sales_lead", "form_lead_submitted.json")),
                       *received("hubspot", sample("sales_lead", "hubspot_contact_creation.json"))],
        "payment_recovery": [one("stripe", sample("payment_recovery", "stripe_invoice_payment_failed.json"))],
        "invoice_intake": [one("form", sample("invoice_intake", "form_invoice_clean.json")),
                           firing("invoice_intake", "past_due_check"),
                           follow_up("invoice_intake", "past_due", "k", {"invoice_id": "LE-1", "as_of": "2026-12-02"}),
                           status_change("invoice_intake", "approved_for_payment", {"invoice_id": "LE-1"},
                                         {"status": "recorded"}, {"status": "approved"})],
        "assistant": [one("whatsapp", chat.whatsapp("hi")), one("slack", chat.slack_mention("hi")),
                      follow_up("assistant", "next_turn", "k", {"conversation": "whatsapp:1:2"}),
                      follow_up("assistant", "page_reply", "k", {"conversation": "whatsapp:1:2", "text": "t"}),
                      follow_up("assistant", "page_hand_back", "k", {"conversation": "whatsapp:1:2"})],
    }
    for name, made in envelopes.items():
        assert {routes.get((e.source, e.type)) for e in made} == {name}, name
    # every starting event type of the workflows with few of them is covered by a realistic event above
    for name in ("support_triage", "sales_lead", "payment_recovery", "invoice_intake"):
        assert {(e.source, e.type) for e in envelopes[name]} == set(starting_events(name)), name
