"""``interlock watch``'s reading of a Server-Sent Events stream and its line per entry."""

from __future__ import annotations

import json

from interlock.cli import _entry_line, sse_events


def test_events_are_read_as_the_eventsource_spec_reads_them() -> None:
    lines = ["retry: 1000", "", "id: 1#a", "event: entry", "data: {\"a\":", "data: 1}", "", ": heartbeat now", "",
             "event: end", "data:{}\r", ""]
    assert list(sse_events(iter(lines))) == [
        {"retry": "1000"}, {"id": "1#a", "event": "entry", "data": "{\"a\":\n1}"}, {"comment": "heartbeat now"},
        {"event": "end", "data": "{}"}]


def test_a_stream_cut_mid_event_yields_what_it_has() -> None:
    assert list(sse_events(iter(["id: 2#b", "event: entry"]))) == [{"id": "2#b", "event": "entry"}]


def test_an_entrys_line_shows_its_time_step_state_and_codes_only() -> None:
    data = json.dumps({"state": "processing", "step": "classify", "attempt": 0, "at": "2026-12-03T10:00:01+00:00",
                       "details": {"kind": "decision", "category": "billing", "text": "Dear Ada, ...",
                                   "email": "ada@example.com"}})
    line = _entry_line(data)
    assert line.split() == ["10:00:01", "classify", "processing", "kind=decision", "category=billing"]


def test_control_characters_from_the_server_never_reach_the_terminal() -> None:
    line = _entry_line(json.dumps({"step": "x\x1b[2J", "state": "failed", "details": {"reason": "a\x07b"}}))
    assert "\x1b" not in line and "\x07" not in line


def test_an_entry_that_is_not_an_object_is_shown_as_such() -> None:
    assert _entry_line("[1]").startswith("(an entry that is not a JSON object")
    assert _entry_line("{").startswith("(an entry that is not a JSON object")
