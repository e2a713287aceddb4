"""Replaying a run: its kept event, started again as a new run linked to it, through the queue and the router.

A run that did nothing with its event (``failed``: no route, a step that gave up; ``ignored``: informational)
can be replayed once a route or a fix exists. The replay is a new run (a terminal run never changes status):

* its id is ``run_id_for(replay_dedupe_key(original))``, so it is known from the original alone and a run is
  replayed at most once: two requests at the same time make one new run (a conditional write decides), and the
  other is told which run replayed it. To try again, replay the replay.
* the new run has ``replay_of`` the original, starts ``received`` (step ``replay``), and is queued like a fresh
  event, so the routing table applies anew; the original gets a ``replayed`` entry and ``replayed_as``.
* if it cannot be queued, nothing of it is left (as the ingest does): the operator's retry starts afresh. If
  the function died between the write and the queue, the new run stays ``received`` with nothing queued: a
  request to replay the original after ``REQUEUE_AFTER_SECONDS`` queues that run's kept event again (the
  router takes a message twice in its stride: SQS delivers at least once anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from interlock.models import (
    REPLAYABLE_STATUSES,
    EntryState,
    RunStatus,
    TimelineEntry,
    is_run_id,
    replay_dedupe_key,
    run_id_for,
    utcnow,
)
from interlock.observability import count, logger
from interlock.timeline import ReplayConflict, TimelineStore

if TYPE_CHECKING:
    from interlock.ingest.ports import EventQueue

# A replay still ``received`` this long after it was made never reached the queue (the replay function's
# timeout is far shorter, and the router records its first entry within seconds of queueing).
REQUEUE_AFTER_SECONDS = 300


@dataclass(frozen=True)
class ReplayOutcome:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


def _error(http_status: int, code: str, message: str, **extra: Any) -> ReplayOutcome:
    return ReplayOutcome(http_status, {"error": code, "message": message, **extra})


class ReplayService:
    def __init__(self, store: TimelineStore, queue: EventQueue) -> None:
        self.store = store
        self.queue = queue

    def replay(self, run_id: str) -> ReplayOutcome:
        if not is_run_id(run_id):
            return _error(400, "bad_run_id", "a run id is a UUID, as answered when its event was accepted")
        logger.append_keys(correlation_id=run_id)
        view = self.store.get(run_id)
        if view is None:
            return _error(404, "unknown_run", f"no run with id {run_id!r}")
        if view.replayed_as:
            return self._requeue_stuck(run_id, view.replayed_as) or self._already(run_id, view.replayed_as)
        if view.status not in REPLAYABLE_STATUSES:
            return self._not_replayable(run_id, view.status.value)
        kept = self.store.envelope(run_id)
        if kept is None:
            return _error(409, "event_not_kept", f"run {run_id} has no kept event to replay (it was accepted "
                                                 "before events were kept, or its payload was too large to keep)")
        key = replay_dedupe_key(run_id)
        replay = kept.model_copy(update={"run_id": run_id_for(key), "dedupe_key": key, "received_at": utcnow()})
        received = TimelineEntry(state=EntryState.RECEIVED, step="replay", at=replay.received_at, details={
            "replay_of": run_id, "event_source": replay.source, "event_type": replay.type,
            "event_id": replay.event_id, "payload_version": replay.payload_version})
        replayed = TimelineEntry(state=EntryState.REPLAYED, step="replay", at=replay.received_at,
                                 details={"replayed_as": replay.run_id})
        conflict = self.store.create_replay(run_id, replay, received, replayed)
        if conflict is ReplayConflict.ALREADY_REPLAYED:
            return self._already(run_id, replay.run_id)
        if conflict is ReplayConflict.NOT_REPLAYABLE:
            now = self.store.get(run_id)
            return self._not_replayable(run_id, now.status.value if now else "unknown")
        try:
            self.queue.send(replay)
        except Exception:
            logger.exception("could not queue the replay; undoing it")
            self.store.forget_replay(run_id, replay)
            return _error(503, "unavailable", "the replay could not be queued; retry later")
        count("RunsReplayed")
        logger.info("run replayed", extra={"replayed_as": replay.run_id, "event_type": replay.type})
        return ReplayOutcome(202, {"run_id": replay.run_id, "replay_of": run_id})

    def _requeue_stuck(self, run_id: str, replayed_as: str) -> ReplayOutcome | None:
        """Queue again a replay that was recorded but, by all signs, never queued; None if it was."""
        replay_view = self.store.get(replayed_as)
        if (replay_view is None or replay_view.status is not RunStatus.RECEIVED
                or [(e.state, e.step) for e in replay_view.timeline] != [(EntryState.RECEIVED, "replay")]
                or utcnow() - replay_view.created_at < timedelta(seconds=REQUEUE_AFTER_SECONDS)):
            return None
        kept = self.store.envelope(replayed_as)
        if kept is None:
            return None
        try:
            self.queue.send(kept)
        except Exception:
            logger.exception("could not queue the stuck replay again")
            return _error(503, "unavailable", "the replay could not be queued; retry later")
        logger.warning("a replay that never reached the queue was queued again", extra={"replayed_as": replayed_as})
        return ReplayOutcome(202, {"run_id": replayed_as, "replay_of": run_id, "requeued": True})

    @staticmethod
    def _already(run_id: str, replayed_as: str) -> ReplayOutcome:
        return _error(409, "already_replayed", f"run {run_id} was replayed as run {replayed_as}; to try again, "
                                               "replay that run", replayed_as=replayed_as)

    @staticmethod
    def _not_replayable(run_id: str, status: str) -> ReplayOutcome:
        allowed = " or ".join(sorted(s.value for s in REPLAYABLE_STATUSES))
        return _error(409, "not_replayable", f"run {run_id} is {status}; only a run that is {allowed} can be "
                                             "replayed", status=status)
