"""``GET /runs/{run_id}/events``: a run's timeline as Server-Sent Events, in short responses (docs/live-progress.md).

An entry's event id is its sort key without ``TL#``: the time it was written (ns since the epoch, 20 digits) and a
random suffix, so ids sort as the timeline does. A client resumes after the last id it saw (``Last-Event-ID``, as
``EventSource`` sends it on reconnecting, or ``?after=``; the header wins).

Several workers write a run's entries, each with its own write time, so an entry written at ``t`` may become
visible after one written at ``t' > t``. An entry is therefore sent only once its id is older than ``now -
settle`` (``INTERLOCK_EVENTS_SETTLE_SECONDS``, 1 s): by then every entry with an earlier id has been written
(a put that took longer is counted, ``TimelineEntryLate``), so resuming after an id sends each entry exactly once.

One response long-polls: it sends every settled entry after the cursor; with none yet and the run not terminal, it
reads again every ``INTERLOCK_EVENTS_POLL_SECONDS`` (0.5 s) for up to ``INTERLOCK_EVENTS_WINDOW_SECONDS`` (20 s;
API Gateway answers within 29 s) and answers as soon as it has something. A terminal run whose entries have all
been sent ends with ``event: end`` (and the header ``X-Interlock-Stream: end``). No Powertools here: the handler
(``functions/http_runs.py``) turns the :class:`Answer` into its response.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from interlock.http import JSON, NO_STORE, can_name_a_record
from interlock.models import TERMINAL_STATUSES, RunStatus, TimelineEntry
from interlock.settings import env_seconds
from interlock.timeline import TimelineStore, entry_sk_ns, events_settle_seconds

EVENT_STREAM = "text/event-stream"
RETRY_MS = 1000
END_HEADER = "X-Interlock-Stream"
# Entries per response at most: a run with more is sent over several (the client resumes after the last id).
MAX_ENTRIES_PER_RESPONSE = 200
_EVENT_ID = re.compile(r"[0-9]{20}#[0-9a-f]{8}")


def is_event_id(value: str) -> bool:
    return _EVENT_ID.fullmatch(value) is not None


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Timing:
    settle: float = 1.0
    poll: float = 0.5
    window: float = 20.0

    @classmethod
    def from_env(cls) -> Timing:
        return cls(settle=events_settle_seconds(), poll=env_seconds("INTERLOCK_EVENTS_POLL_SECONDS", 0.5) or 0.5,
                   window=env_seconds("INTERLOCK_EVENTS_WINDOW_SECONDS", 20.0))


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def cursor(headers: Mapping[str, str] | None, query: Mapping[str, str] | None) -> str | None:
    """The id to resume after: ``Last-Event-ID`` (any case), else ``?after=``; None for the start (an empty value
    too: the EventSource spec's reset of the last event id). Raises :class:`BadCursor` for a value that is not an
    event id."""
    value: str | None = None
    for name, header in (headers or {}).items():
        if name.lower() == "last-event-id":
            value = header
            break
    if value is None:
        value = (query or {}).get("after")
    if not value:
        return None
    if not is_event_id(value):
        raise BadCursor(value)
    return value


def entry_event(event_id: str, entry: TimelineEntry) -> str:
    """An entry as its event: ``delta`` for a piece of a model's streamed answer (:class:`DeltaWriter`), else
    ``entry``."""
    data = json.dumps(entry.model_dump(mode="json", include={"state", "step", "attempt", "at", "details"}),
                      separators=(",", ":"), default=str)
    kind = DELTA if entry.details.get("kind") == DELTA else "entry"
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"


DELTA = "delta"
DELTA_EVERY_SECONDS = 0.25  # a streamed answer is written a few times a second, not once per token
DELTA_MAX_CHARS = 400


class DeltaWriter:
    """A model's answer as it streams, as ``delta`` entries of the step (``details``: the decision, ``try``: the
    attempt's number, a retry starting over; ``seq``; ``text``): the pieces of up to :data:`DELTA_EVERY_SECONDS`
    in one timeline write. Call it as the runner's ``on_delta``; :meth:`flush` when the decision returns. The
    validated answer is the step's own entry, as ever: a delta is never what a customer is sent."""

    def __init__(self, store: TimelineStore, run_id: str, step: str, decision: str, attempt: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.run_id, self.step, self.decision, self.attempt = store, run_id, step, decision, attempt
        self.clock = clock
        self._pieces: list[str] = []
        self._chars = 0  # of the pieces held
        self._try = 0
        self._seq = 0
        self._since = clock()

    def __call__(self, attempt_number: int, text: str) -> None:
        if attempt_number != self._try:
            self.flush()
            self._try = attempt_number
        self._pieces.append(text)
        self._chars += len(text)
        if self.clock() - self._since >= DELTA_EVERY_SECONDS or self._chars >= DELTA_MAX_CHARS:
            self.flush()

    def flush(self) -> None:
        self._since = self.clock()
        if not self._pieces:
            return
        from interlock.models import EntryState

        text, self._pieces, self._chars = "".join(self._pieces), [], 0
        self._seq += 1
        self.store.record(self.run_id, TimelineEntry(
            state=EntryState.PROCESSING, step=self.step, attempt=self.attempt,
            details={"kind": DELTA, "decision": self.decision, "try": self._try, "seq": self._seq, "text": text}))


def end_event(run_id: str, status: RunStatus) -> str:
    return f"event: end\ndata: {json.dumps({'run_id': run_id, 'status': status.value}, separators=(',', ':'))}\n\n"


def heartbeat(now: float) -> str:
    return f": heartbeat {datetime.fromtimestamp(now, UTC).isoformat()}\n\n"


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, json.dumps({"error": code, "message": message}), JSON, dict(NO_STORE))


def _unknown(run_id: str) -> Answer:
    return _error(404, "unknown_run", f"no run with id {run_id[:100]!r}")


def answer(store: TimelineStore, run_id: str, headers: Mapping[str, str] | None,
           query: Mapping[str, str] | None, *, timing: Timing | None = None,
           clock: Callable[[], float] = time.time, sleep: Callable[[float], Any] = time.sleep) -> Answer:
    """One response of the run's event stream (see the module's docstring)."""
    if not can_name_a_record(run_id):
        return _unknown(run_id)
    try:
        after = cursor(headers, query)
    except BadCursor:
        return _error(400, "bad_event_id", "an event id is 20 digits, '#' and 8 hex digits, as sent in 'id:'")
    timing = timing or Timing.from_env()
    deadline = clock() + timing.window
    while True:
        page = store.entries_after(run_id, after, MAX_ENTRIES_PER_RESPONSE)
        if page is None:
            return _unknown(run_id)
        now = clock()
        cutoff_ns = int((now - timing.settle) * 1_000_000_000)
        settled: list[tuple[str, TimelineEntry]] = []
        for event_id, entry in page.entries:
            if entry_sk_ns("TL#" + event_id) > cutoff_ns:
                break  # ids are ordered: the rest are later still
            settled.append((event_id, entry))
        complete = len(settled) == len(page.entries) and not page.more
        ended = page.status in TERMINAL_STATUSES and complete
        if settled or ended or now >= deadline:
            return _stream(run_id, page.status, settled, ended, now)
        sleep(max(0.0, min(timing.poll, deadline - now)))


def _stream(run_id: str, status: RunStatus, entries: list[tuple[str, TimelineEntry]], ended: bool,
            now: float) -> Answer:
    parts = [f"retry: {RETRY_MS}\n\n", *(entry_event(i, e) for i, e in entries)]
    headers = dict(NO_STORE)
    if ended:
        parts.append(end_event(run_id, status))
        headers[END_HEADER] = "end"
    elif not entries:
        parts.append(heartbeat(now))
    return Answer(200, "".join(parts), EVENT_STREAM, headers)
