"""Test handler: the real ingest service, given the invocation's deadline, over a store that records slowly."""

import base64
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from interlock.ingest.service import IngestService, RawRequest
from interlock.models import Envelope
from interlock.settings import IngestSettings
from interlock.webhooks.standard import signed_headers

from tests.unit.fakes import RecordingQueue, RecordingTimeline, StaticSecrets

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
TICKET = json.dumps({"type": "support.ticket", "data": {"subject": "s"}}).encode()
RECORD_SECONDS = 1.5  # of the function's 2 s
SEND_SECONDS = 0.8


@dataclass
class SlowTimeline(RecordingTimeline):
    def create_run_once(self, envelope: Envelope, dedupe_ttl_seconds: int, token: str | None = None) -> bool:
        time.sleep(RECORD_SECONDS)
        return super().create_run_once(envelope, dedupe_ttl_seconds, token)


@dataclass
class SlowQueue(RecordingQueue):
    def send(self, envelope: Envelope, acceptance: str | None = None) -> None:
        time.sleep(SEND_SECONDS)
        super().send(envelope, acceptance)


STORE = SlowTimeline()
QUEUE = SlowQueue()
DONE = threading.Event()  # the invocation's work has ended (in time, or in the background after a timeout)


def handler(event: Any, context: Any) -> dict[str, Any]:
    service = IngestService(IngestSettings(table_name="t", ingest_queue_url="q"),
                            StaticSecrets({"form": [SECRET]}), STORE, QUEUE,
                            call_budget_seconds=0.3, answer_margin_seconds=0.1)
    headers = signed_headers(SECRET, "msg_slow", int(time.time()), TICKET)
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    try:
        outcome = service.accept(RawRequest(source="form", headers=headers, body=TICKET.decode(), is_base64=False),
                                 deadline=deadline if event.get("with_deadline") else None)
    finally:
        DONE.set()
    return {"status": outcome.status, "body": outcome.body}
