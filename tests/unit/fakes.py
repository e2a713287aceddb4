"""In-memory fakes of Interlock's ports, for unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from interlock.models import Envelope, RunView, TimelineEntry
from interlock.timeline import DedupeRecord, DedupeState, EntriesAfter, RecordOnce
from interlock.webhooks.base import SourceSecrets


@dataclass
class RecordingTimeline:
    """A TimelineStore that only remembers what it was asked to record."""

    entries: list[tuple[str, TimelineEntry, str | None]] = field(default_factory=list)
    created: list[Envelope] = field(default_factory=list)
    forgotten: list[Envelope] = field(default_factory=list)
    existing_dedupe_keys: set[str] = field(default_factory=set)
    # dedupe key -> (run id, accepted_at) of an acceptance that never reached the queue
    accepting: dict[str, tuple[str, float]] = field(default_factory=dict)
    queued_keys: set[str] = field(default_factory=set)
    taken_over: list[Envelope] = field(default_factory=list)
    once_keys: set[str] = field(default_factory=set)
    prompts: dict[str, str] = field(default_factory=dict)
    summaries: dict[str, Any] = field(default_factory=dict)

    def keep_prompt(self, sha256: str, text: str) -> None:
        self.prompts[sha256] = text

    def create_run_once(self, envelope: Envelope, dedupe_ttl_seconds: int, token: str | None = None) -> bool:
        if envelope.dedupe_key in self.existing_dedupe_keys or envelope.dedupe_key in self.accepting:
            return False
        self.existing_dedupe_keys.add(envelope.dedupe_key)
        self.created.append(envelope)
        return True

    def mark_queued(self, envelope: Envelope, token: str | None = None, read_first: bool = False) -> bool:
        self.queued_keys.add(envelope.dedupe_key)
        return True

    def dedupe_record(self, dedupe_key: str) -> DedupeRecord | None:
        if dedupe_key in self.accepting:
            run_id, accepted_at = self.accepting[dedupe_key]
            return DedupeRecord(run_id, DedupeState.ACCEPTING, accepted_at)
        if dedupe_key in self.existing_dedupe_keys:
            return DedupeRecord("run", DedupeState.QUEUED, 0.0)
        return None

    def take_over(self, envelope: Envelope, stale: DedupeRecord, token: str) -> bool:
        if self.accepting.get(envelope.dedupe_key, (None, None))[1] != stale.accepted_at:
            return False
        del self.accepting[envelope.dedupe_key]
        self.existing_dedupe_keys.add(envelope.dedupe_key)
        self.taken_over.append(envelope)
        return True

    def forget_new_run(self, envelope: Envelope, token: str | None = None) -> None:
        self.forgotten.append(envelope)
        self.existing_dedupe_keys.discard(envelope.dedupe_key)

    def record(self, run_id: str, entry: TimelineEntry, workflow: str | None = None, status: Any = None,
               summary: Any = None) -> None:
        self.entries.append((run_id, entry, workflow))
        if summary is not None:
            self.summaries[run_id] = summary

    def record_once(self, run_id: str, entry: TimelineEntry, key: str) -> RecordOnce:
        if key in self.once_keys:
            return RecordOnce.DUPLICATE
        self.once_keys.add(key)
        self.record(run_id, entry)
        return RecordOnce.RECORDED

    def get(self, run_id: str) -> RunView | None:
        return None

    def entries_after(self, run_id: str, after: str | None, limit: int = 200) -> EntriesAfter | None:
        return None

    @property
    def states(self) -> list[str]:
        return [entry.state.value for _, entry, _ in self.entries]


@dataclass
class RecordingQueue:
    sent: list[Envelope] = field(default_factory=list)
    fail_with: Exception | None = None
    acceptances: list[str | None] = field(default_factory=list)

    def send(self, envelope: Envelope, acceptance: str | None = None) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(envelope)
        self.acceptances.append(acceptance)


@dataclass
class StaticSecrets:
    by_source: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    fail_with: Exception | None = None

    def get(self, source: str, *, free_text: bool = False) -> SourceSecrets:
        self.asked.append(source)
        if self.fail_with is not None:
            raise self.fail_with
        return SourceSecrets(signing=tuple(self.by_source.get(source, [])))


@dataclass
class RecordingEngine:
    started: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def start(self, workflow: str, run_id: str, execution_input: dict[str, Any]) -> str:
        self.started.append((workflow, run_id, execution_input))
        return f"arn:aws:states:us-east-1:123456789012:execution:{workflow}:{run_id}"


def offline_runner(store: Any = None, **settings: Any) -> Any:
    """A DecisionRunner with the offline provider (deterministic, no network) and default AI settings."""
    from interlock.ai.providers import OfflineProvider
    from interlock.ai.runner import DecisionRunner
    from interlock.settings import AiSettings

    return DecisionRunner(OfflineProvider(), store if store is not None else RecordingTimeline(),
                          AiSettings(**settings))
