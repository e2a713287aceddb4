"""The local EventBridge Scheduler: fires each schedule of the topology at its times, sending the message Scheduler
would (:func:`interlock.kit.triggers.schedule_message`) to the ingest queue.

When a schedule fires, as EventBridge Scheduler evaluates it (docs/finance.md, Triggers that are not webhooks):

* ``cron(...)``: the six fields in the schedule's time zone, wall-clock (croniter reads the fields; day-of-week 1-7
  is SUN-SAT as EventBridge numbers it). A local time that does not exist (the hour skipped in spring) is skipped;
  a local time that happens twice (the hour repeated in autumn) fires once, the first time.
* ``rate(n unit)``: every fixed duration (a day is 24 hours, whatever the clocks do), counted from when the
  schedule was first seen here; the first firing is one period after that (Scheduler, given no start date, fires
  at once when a schedule is created: locally that would fire every rate schedule on every fresh start).

Time is a parameter: the scheduler reads ``clock`` (a :class:`SkippableClock` in the runtime, which
``POST /_local/scheduler/advance`` moves forward), so tests skip time and never wait. What it keeps
(``scheduler.json`` in the state directory): each schedule's last scheduled time fired and a rate's start. A restart
goes on from there: firings that fell due while the runtime was stopped are not all fired on start, only the
latest of them (the one a person would miss), once; nothing already fired fires again (and were it sent twice, the
router's dedupe key, the scheduled time, would make it one run).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from interlock.kit.triggers import (
    Cron,
    Rate,
    ScheduleExpressionError,
    format_time,
    parse_expression,
    schedule_dedupe_key,
    schedule_message,
    time_zone,
)
from interlock.local import get_logger
from interlock.local.polling import Poller
from interlock.models import run_id_for
from interlock.topology import ScheduleTarget

log = get_logger(__name__)

STATE_FILE = "scheduler.json"
# Firings one poll sends at most per schedule (a clock skipped a year ahead does not send half a million messages).
MAX_FIRINGS_PER_POLL = 1000


def utc_now() -> datetime:
    return datetime.now(UTC)


class SkippableClock:
    """The time now, plus however far it was skipped ahead."""

    def __init__(self, now: Callable[[], datetime] = utc_now) -> None:
        self._now = now
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now() + self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("time is only skipped forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
            return self._now() + self._offset


# -- when a schedule fires -----------------------------------------------------------------------------------


def _day_of_week(term: str) -> str:
    """One day-of-week term in croniter's numbering (0-6 = SUN-SAT) from EventBridge's (1-7 = SUN-SAT)."""
    days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    def number(token: str) -> str:
        token = token.upper()
        return str(days.index(token) if token in days else int(token) - 1)

    upper = term.upper()
    if upper == "L":
        return "6"  # the last day of the week: Saturday
    if upper.endswith("L"):
        return f"l{number(upper[:-1])}"  # the last <day> of the month
    if "#" in upper:
        day, _, nth = upper.partition("#")
        return f"{number(day)}#{nth}"
    if upper == "*":
        return "*"
    start, dash, end = upper.partition("-")
    return number(start) + (f"-{number(end)}" if dash else "")


def croniter_fields(cron: Cron) -> str:
    """The expression in croniter's seven fields (minute hour day month weekday second year)."""
    day = "*" if cron.day_of_month == "?" else cron.day_of_month.upper().replace("L", "l").replace("W", "w")
    weekday = "*" if cron.day_of_week == "?" else ",".join(_day_of_week(t) for t in cron.day_of_week.split(","))
    return " ".join([cron.minutes, cron.hours, day, cron.month, weekday, "0", cron.year])


def _exists(naive: datetime, zone: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


def cron_times(cron: Cron, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """The firings of ``cron`` in ``zone`` strictly after ``after``, in UTC."""
    from croniter import croniter

    # Wall-clock times, from a little before ``after``'s (in the repeated hour, ``after`` may be its second pass).
    start = after.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3)
    candidates = croniter(croniter_fields(cron), start, ret_type=datetime, max_years_between_matches=150)
    while True:
        try:
            naive = candidates.get_next(datetime)
        except Exception:  # croniter's "no more matches" (a year field in the past) and its kin
            return
        if not _exists(naive, zone):
            continue  # skipped by the spring change of the clocks
        aware = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)  # a repeated time: its first pass
        if aware > after:
            yield aware


def rate_times(rate: Rate, anchor: datetime, after: datetime) -> Iterator[datetime]:
    """The firings of ``rate`` strictly after ``after``: ``anchor`` + k periods, k >= 1."""
    period = timedelta(seconds=rate.seconds)
    k = max(1, int((after - anchor) / period) + 1) if after >= anchor else 1
    while True:
        at = anchor + k * period
        if at > after:
            yield at
        k += 1


def firings(expression: str, timezone: str, anchor: datetime, after: datetime, until: datetime,
            limit: int = MAX_FIRINGS_PER_POLL) -> list[datetime]:
    """The scheduled times in (``after``, ``until``], at most ``limit`` of them (the earliest)."""
    parsed = parse_expression(expression)
    if isinstance(parsed, Rate):
        times = rate_times(parsed, anchor, after)
    else:
        zone = time_zone(timezone)
        if zone is None:
            raise ScheduleExpressionError("this machine has no time zone database (install tzdata)")
        times = cron_times(parsed, zone, after)
    found: list[datetime] = []
    for at in times:
        if at > until or len(found) >= limit:
            break
        found.append(at)
    return found


# -- the scheduler -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    schedule: str  # <workflow>.<schedule>
    scheduled_time: str
    run_id: str  # the run it starts (or its duplicate joins): known from the dedupe key

    def as_json(self) -> dict[str, str]:
        return {"schedule": self.schedule, "scheduled_time": self.scheduled_time, "run_id": self.run_id}


@dataclass
class _Cursor:
    anchor: datetime  # when the schedule was first seen (a rate counts from it)
    last: datetime  # the last scheduled time fired (or, before any, when it was first seen)


class LocalScheduler(Poller):
    """Fires ``schedules`` by ``send(message_body)`` (a send to the ingest queue) at their times on ``clock``."""

    def __init__(self, schedules: tuple[ScheduleTarget, ...], send: Callable[[str], None],
                 clock: Callable[[], datetime] = utc_now, state_dir: Path | None = None,
                 poll_seconds: float = 0.5) -> None:
        super().__init__("interlock-scheduler", poll_seconds)
        self.schedules = {s.id: s for s in schedules}
        for schedule in schedules:  # what EventBridge would refuse stops the runtime here, not at the first firing
            parse_expression(schedule.expression)
            if not isinstance(parse_expression(schedule.expression), Rate) and time_zone(schedule.timezone) is None:
                raise ScheduleExpressionError("this machine has no time zone database: install tzdata")
        self.send = send
        self.clock = clock
        self.state_path = state_dir / STATE_FILE if state_dir is not None else None
        self.poll_seconds = poll_seconds
        self.cursors: dict[str, _Cursor] = {}
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Fire what fell due while stopped (the latest of each schedule, :meth:`catch_up`, which the runtime calls
        first), then poll."""
        if self.schedules:
            super().start()

    def poll_once(self) -> int:
        return len(self.run_due())

    # -- firing ------------------------------------------------------------------------------------------

    def catch_up(self) -> list[Firing]:
        """After a (re)start: each schedule's latest firing missed while stopped, once; new schedules start now."""
        now = self.clock()
        saved = self._load()
        fired: list[Firing] = []
        with self._lock:
            for schedule_id, schedule in self.schedules.items():
                cursor = saved.get(schedule_id) or _Cursor(anchor=now, last=now)
                self.cursors[schedule_id] = cursor
                missed = firings(schedule.expression, schedule.timezone, cursor.anchor, cursor.last, now)
                if missed:
                    fired.append(self._fire(schedule, missed[-1]))
                    if len(missed) > 1:
                        log.info("schedule %s: %d firings fell due while the runtime was stopped; fired the latest",
                                 schedule_id, len(missed))
                cursor.last = max(cursor.last, now)
            self._save()
        return fired

    def run_due(self) -> list[Firing]:
        """Fire every firing due since the last poll (each one, in order)."""
        now = self.clock()
        fired: list[Firing] = []
        with self._lock:
            for schedule_id, schedule in self.schedules.items():
                cursor = self.cursors.setdefault(schedule_id, _Cursor(anchor=now, last=now))
                for at in firings(schedule.expression, schedule.timezone, cursor.anchor, cursor.last, now):
                    fired.append(self._fire(schedule, at))
                    cursor.last = at
                    self._save()  # after each: a crash mid-way does not fire the ones done again
        return fired

    def advance(self, seconds: float) -> list[Firing]:
        """Skip the clock ``seconds`` ahead (it must be a :class:`SkippableClock`) and fire what fell due."""
        if not isinstance(self.clock, SkippableClock):
            raise TypeError("this scheduler's clock cannot be skipped")
        self.clock.advance(seconds)
        return self.run_due()

    def trigger(self, schedule_id: str) -> Firing:
        """Fire ``<workflow>.<schedule>`` now, as if it were scheduled for this second (``interlock trigger``);
        ``KeyError`` for a schedule no workflow declares."""
        schedule = self.schedules[schedule_id]
        return self._fire(schedule, self.clock().replace(microsecond=0))

    def _fire(self, schedule: ScheduleTarget, at: datetime) -> Firing:
        self.send(schedule_message(schedule.workflow, schedule.name, at))
        firing = Firing(schedule.id, format_time(at), run_id_for(schedule_dedupe_key(schedule.workflow,
                                                                                      schedule.name, at)))
        log.info("schedule %s fired for %s (run %s)", schedule.id, firing.scheduled_time, firing.run_id)
        return firing

    # -- what is kept --------------------------------------------------------------------------------------

    def _load(self) -> dict[str, _Cursor]:
        if self.state_path is None or not self.state_path.is_file():
            return {}
        try:
            data: Any = json.loads(self.state_path.read_text())
            return {key: _Cursor(datetime.fromisoformat(value["anchor"]), datetime.fromisoformat(value["last"]))
                    for key, value in data["schedules"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s is unreadable: the schedules start afresh from now", self.state_path)
            return {}

    def _save(self) -> None:
        if self.state_path is None or not self.cursors:
            return
        data = {"schedules": {key: {"anchor": c.anchor.isoformat(), "last": c.last.isoformat()}
                              for key, c in self.cursors.items()}}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(partial, self.state_path)
