"""GET /runs/{run_id}/events (interlock.run_events): cursors, the event format, the settle rule and the end."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from interlock import run_events
from interlock.models import EntryState, RunStatus, TimelineEntry
from interlock.run_events import BadCursor, Timing, cursor
from interlock.timeline import EntriesAfter

T0 = 1_700_000_000.0  # the injected clock's start
ID_A = f"{int(T0 * 1e9):020d}#0000000a"
ID_B = f"{int((T0 + 0.5) * 1e9):020d}#0000000b"
ID_C = f"{int((T0 + 2.0) * 1e9):020d}#0000000c"


def entry(step: str, state: EntryState = EntryState.PROCESSING) -> TimelineEntry:
    return TimelineEntry(state=state, step=step, at=datetime(2024, 5, 1, tzinfo=UTC), details={"step": step})


@dataclass
class FakeStore:
    status: RunStatus = RunStatus.PROCESSING
    entries: list[tuple[str, TimelineEntry]] = field(default_factory=list)
    reads: list[str | None] = field(default_factory=list)
    known: bool = True

    def entries_after(self, run_id: str, after: str | None, limit: int = 200) -> EntriesAfter | None:
        self.reads.append(after)
        if not self.known:
            return None
        later = [(i, e) for i, e in self.entries if after is None or i > after]
        return EntriesAfter(self.status, later[:limit], more=len(later) > limit)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def ask(store: FakeStore, clock: Clock, headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None, run_id: str = "run-1") -> run_events.Answer:
    return run_events.answer(store, run_id, headers, query,  # type: ignore[arg-type]
                             timing=Timing(settle=1.0, poll=0.5, window=20.0), clock=clock, sleep=clock.sleep)


def events(body: str) -> list[dict[str, str]]:
    out = []
    for block in body.split("\n\n"):
        if not block:
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ") if not line.startswith(":") else ("comment", "", line[2:])
            fields[name] = value
        out.append(fields)
    return out


# -- cursors -------------------------------------------------------------------------------------------------


def test_given_no_cursor_then_none_and_a_header_wins_over_the_query_in_any_case() -> None:
    assert cursor(None, None) is None
    assert cursor({"Last-Event-ID": ID_A}, {"after": ID_B}) == ID_A
    assert cursor({"last-event-id": ID_B}, None) == ID_B
    assert cursor({}, {"after": ID_C}) == ID_C


def test_given_an_empty_cursor_then_the_stream_starts_from_the_first_entry() -> None:
    """The EventSource spec: an empty id resets the last event id, and the browser then sends none."""
    assert cursor({"Last-Event-ID": ""}, None) is None
    assert cursor({}, {"after": ""}) is None


@pytest.mark.parametrize("bad", ["1", "x" * 5000, "é" * 20 + "#0000000a", "../../etc/passwd",
                                 "' OR 1=1 --", ID_A + "#", ID_A.upper().replace("A", "G"),
                                 f"{'0' * 20}#ABCDEF01", f"{'0' * 19}#0000000a", " " + ID_A])
def test_given_a_malformed_cursor_then_it_is_refused_and_answered_400_bad_event_id(bad: str) -> None:
    with pytest.raises(BadCursor):
        cursor({"Last-Event-ID": bad}, None)
    answer = ask(FakeStore(), Clock(T0 + 10), query={"after": bad})
    assert answer.status == 400
    assert json.loads(answer.body)["error"] == "bad_event_id"


def test_given_an_unknown_run_or_one_no_record_can_have_then_404_unknown_run() -> None:
    assert json.loads(ask(FakeStore(known=False), Clock(T0)).body)["error"] == "unknown_run"
    store = FakeStore()
    answer = ask(store, Clock(T0), run_id="x" * 300)
    assert (answer.status, json.loads(answer.body)["error"]) == (404, "unknown_run")
    assert store.reads == []  # never looked up


# -- format --------------------------------------------------------------------------------------------------


def test_given_settled_entries_then_each_is_an_entry_event_with_its_id_and_one_line_of_json() -> None:
    store = FakeStore(entries=[(ID_A, entry("a")), (ID_B, entry("b", EntryState.RETRIED))])

    answer = ask(store, Clock(T0 + 10))

    assert answer.status == 200
    assert answer.content_type == "text/event-stream"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "X-Interlock-Stream" not in answer.headers
    assert answer.body.startswith("retry: 1000\n\n")
    sent = events(answer.body)[1:]
    assert [(e["id"], e["event"]) for e in sent] == [(ID_A, "entry"), (ID_B, "entry")]
    assert json.loads(sent[1]["data"]) == {"state": "retried", "step": "b", "attempt": 0,
                                           "at": "2024-05-01T00:00:00Z", "details": {"step": "b"}}
    assert ": heartbeat" not in answer.body


def test_given_an_entry_whose_details_hold_newlines_then_its_data_stays_one_line() -> None:
    text = run_events.entry_event(ID_A, TimelineEntry(state=EntryState.FAILED, step="s", details={"m": "a\nb\r\n"}))
    assert text.count("\n") == 4 and text.endswith("\n\n")


# -- the settle rule -----------------------------------------------------------------------------------------


def test_given_an_entry_younger_than_the_settle_time_then_it_waits_and_those_before_it_are_sent() -> None:
    # ID_C is at T0+2: at T0+2.5 it is half a second old, not settled; A and B are
    store = FakeStore(entries=[(ID_A, entry("a")), (ID_B, entry("b")), (ID_C, entry("c"))])

    answer = ask(store, Clock(T0 + 2.5))

    assert [e.get("id") for e in events(answer.body)[1:]] == [ID_A, ID_B]


def test_given_only_unsettled_entries_then_the_response_waits_until_they_settle() -> None:
    store = FakeStore(entries=[(ID_C, entry("c"))])
    clock = Clock(T0 + 2.2)

    answer = ask(store, clock, headers={"Last-Event-ID": ID_B})

    assert [e.get("id") for e in events(answer.body)[1:]] == [ID_C]
    assert clock.now >= T0 + 3.0 and all(s <= 0.5 for s in clock.slept)
    assert set(store.reads) == {ID_B}


def test_given_nothing_new_for_the_window_then_a_heartbeat_and_no_end() -> None:
    store = FakeStore(entries=[(ID_A, entry("a"))])
    clock = Clock(T0 + 100)

    answer = ask(store, clock, query={"after": ID_A})

    assert answer.status == 200
    assert [e.get("comment", "").split(" ")[0] for e in events(answer.body)[1:]] == ["heartbeat"]
    assert clock.now == pytest.approx(T0 + 120)
    assert len(store.reads) == 41  # every 0.5 s for 20 s, and the first read


def test_given_an_entry_written_during_the_wait_then_the_response_answers_once_it_settles() -> None:
    clock = Clock(T0 + 100)
    store = FakeStore()
    late = f"{int((T0 + 101) * 1e9):020d}#000000ff"

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= T0 + 101 and not store.entries:
            store.entries.append((late, entry("late")))

    answer = run_events.answer(store, "run-1", None, None,  # type: ignore[arg-type]
                               timing=Timing(), clock=clock, sleep=sleep)

    assert [e.get("id") for e in events(answer.body)[1:]] == [late]
    assert T0 + 102 <= clock.now < T0 + 103


# -- the end -------------------------------------------------------------------------------------------------


def test_given_a_terminal_run_whose_entries_are_all_sent_then_end_with_its_status_and_the_end_header() -> None:
    store = FakeStore(status=RunStatus.COMPLETED, entries=[(ID_A, entry("a")), (ID_B, entry("done"))])

    answer = ask(store, Clock(T0 + 10))

    sent = events(answer.body)[1:]
    assert [e.get("event") for e in sent] == ["entry", "entry", "end"]
    assert json.loads(sent[-1]["data"]) == {"run_id": "run-1", "status": "completed"}
    assert answer.headers["X-Interlock-Stream"] == "end"
    # and resumed after its last entry: the end alone, at once
    again = ask(store, Clock(T0 + 10), headers={"Last-Event-ID": ID_B})
    assert [e.get("event") for e in events(again.body)[1:]] == ["end"]


def test_given_a_terminal_run_with_an_unsettled_entry_then_no_end_until_it_is_sent() -> None:
    store = FakeStore(status=RunStatus.FAILED, entries=[(ID_A, entry("a")), (ID_C, entry("c"))])

    answer = ask(store, Clock(T0 + 2.5))

    assert [e.get("event") for e in events(answer.body)[1:]] == ["entry"]
    assert "X-Interlock-Stream" not in answer.headers


def test_given_more_entries_than_one_response_holds_then_no_end_before_the_last() -> None:
    many = [(f"{int(T0 * 1e9) + n:020d}#00000000", entry(f"s{n}")) for n in range(250)]
    store = FakeStore(status=RunStatus.COMPLETED, entries=many)

    first = ask(store, Clock(T0 + 10))
    sent = events(first.body)[1:]
    assert len(sent) == 200 and sent[-1]["event"] == "entry"
    rest = ask(store, Clock(T0 + 10), headers={"Last-Event-ID": sent[-1]["id"]})
    assert [e.get("event") for e in events(rest.body)[1:]] == ["entry"] * 50 + ["end"]
