"""In-memory fakes of Interlock's ports, for unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from interlock.models import Envelope, RunView, TimelineEntry


@dataclass
class RecordingTimeline:
    """A TimelineStore that only remembers what it was asked to record."""

    entries: list[tuple[str, TimelineEntry, str | None]] = field(default_factory=list)
    created: list[Envelope] = field(default_factory=list)
    forgotten: list[Envelope] = field(default_factory=list)
    existing_dedupe_keys: set[str] = field(default_factory=set)

    def create_run_once(self, envelope: Envelope, dedupe_ttl_seconds: int) -> bool:
        if envelope.dedupe_key in self.existing_dedupe_keys:
            return False
        self.existing_dedupe_keys.add(envelope.dedupe_key)
        self.created.append(envelope)
        return True

    def forget_new_run(self, envelope: Envelope) -> None:
        self.forgotten.append(envelope)
        self.existing_dedupe_keys.discard(envelope.dedupe_key)

    def record(self, run_id: str, entry: TimelineEntry, workflow: str | None = None) -> None:
        self.entries.append((run_id, entry, workflow))

    def get(self, run_id: str) -> RunView | None:
        return None

    @property
    def states(self) -> list[str]:
        return [entry.state.value for _, entry, _ in self.entries]


@dataclass
class RecordingQueue:
    sent: list[Envelope] = field(default_factory=list)
    fail_with: Exception | None = None

    def send(self, envelope: Envelope) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(envelope)


@dataclass
class StaticSecrets:
    by_source: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    fail_with: Exception | None = None

    def get(self, source: str) -> list[str]:
        self.asked.append(source)
        if self.fail_with is not None:
            raise self.fail_with
        return list(self.by_source.get(source, []))


@dataclass
class RecordingEngine:
    started: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def start(self, workflow: str, run_id: str, execution_input: dict[str, Any]) -> str:
        self.started.append((workflow, run_id, execution_input))
        return f"arn:aws:states:us-east-1:123456789012:execution:{workflow}:{run_id}"
