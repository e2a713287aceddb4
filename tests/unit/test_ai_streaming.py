"""The delta entries a step writes of a model's streamed answer (the provider's streaming:
tests/integration/test_ai_streaming.py)."""

from __future__ import annotations

from typing import Any

from interlock.models import TimelineEntry
from interlock.run_events import DeltaWriter, entry_event


class _Store:
    def __init__(self) -> None:
        self.entries: list[TimelineEntry] = []

    def record(self, run_id: str, entry: TimelineEntry, **_: Any) -> None:
        self.entries.append(entry)


def test_the_pieces_are_written_a_few_a_second_each_attempt_on_its_own() -> None:
    now = [0.0]
    store = _Store()
    writer = DeltaWriter(store, "run-1", "decide", "assistant_turn", attempt=0, clock=lambda: now[0])  # type: ignore[arg-type]
    for piece in ("a", "b", "c"):
        writer(1, piece)
    now[0] = 0.3
    writer(1, "d")  # past the interval: one write with all four
    writer(1, "e")
    writer(2, "x")  # a retry starts over: attempt 1's rest is written first
    writer.flush()
    writer.flush()  # nothing left: no write
    assert [(e.details["try"], e.details["seq"], e.details["text"]) for e in store.entries] == [
        (1, 1, "abcd"), (1, 2, "e"), (2, 3, "x")]
    assert all(e.details["kind"] == "delta" and e.step == "decide" for e in store.entries)
    assert entry_event("00000000000000000001#0000abcd", store.entries[0]).startswith(
        "id: 00000000000000000001#0000abcd\nevent: delta\n")
