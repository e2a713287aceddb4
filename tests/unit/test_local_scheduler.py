"""The local EventBridge Scheduler: when cron and rate schedules fire (time zones, the clocks changing), and what a
restart does, on a clock the tests move (nothing waits)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from interlock.kit.triggers import ScheduleExpressionError, schedule_message
from interlock.local.scheduler import LocalScheduler, SkippableClock, firings
from interlock.models import run_id_for
from interlock.topology import INGEST_QUEUE, ScheduleTarget


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def times(expression: str, timezone: str, start: datetime, end: datetime) -> list[str]:
    return [t.strftime("%Y-%m-%d %H:%M") for t in firings(expression, timezone, start, start, end)]


def test_a_daily_cron_follows_the_wall_clock_of_its_time_zone_across_summer_time() -> None:
    # 07:30 in Berlin: 05:30 UTC in summer time, 06:30 UTC after the clocks go back on 25 October 2026
    assert times("cron(30 7 * * ? *)", "Europe/Berlin", at(2026, 10, 23), at(2026, 10, 27)) == [
        "2026-10-23 05:30", "2026-10-24 05:30", "2026-10-25 06:30", "2026-10-26 06:30"]


def test_a_time_the_spring_change_skips_does_not_fire_that_day() -> None:
    # 02:30 does not exist in Berlin on 29 March 2026 (02:00 -> 03:00)
    assert times("cron(30 2 * * ? *)", "Europe/Berlin", at(2026, 3, 27), at(2026, 3, 31)) == [
        "2026-03-27 01:30", "2026-03-28 01:30", "2026-03-30 00:30"]


def test_a_time_the_autumn_change_repeats_fires_once_the_first_time() -> None:
    # 02:15 and 02:45 happen twice in Berlin on 25 October 2026: at 00:15/00:45 UTC (summer) and 01:15/01:45 (winter)
    assert times("cron(15,45 * * * ? *)", "Europe/Berlin", at(2026, 10, 24, 23, 50), at(2026, 10, 25, 2, 50)) == [
        "2026-10-25 00:15", "2026-10-25 00:45", "2026-10-25 02:15", "2026-10-25 02:45"]


@pytest.mark.parametrize(("expression", "timezone", "expected"), [
    # weekdays at 09:00 in New York (EST, UTC-5, in late November): Friday, then Monday
    ("cron(0 9 ? * MON-FRI *)", "America/New_York", ["2026-11-20 14:00", "2026-11-23 14:00", "2026-11-24 14:00"]),
    # EventBridge's day-of-week numbers: 2-6 is MON-FRI, 1 is Sunday
    ("cron(0 9 ? * 2-6 *)", "UTC", ["2026-11-20 09:00", "2026-11-23 09:00", "2026-11-24 09:00"]),
    ("cron(0 9 ? * 1 *)", "UTC", ["2026-11-22 09:00"]),
    ("cron(0 9 L * ? *)", "UTC", ["2026-11-30 09:00"]),
    ("cron(0 9 ? * 6L *)", "UTC", ["2026-11-27 09:00"]),  # the last Friday
    ("cron(0 9 21W * ? *)", "UTC", ["2026-11-20 09:00"]),  # the 21st is a Saturday: the Friday before
    ("cron(0 9 * * ? 2025)", "UTC", []),  # a year gone
    ("cron(0/20 9 * * ? *)", "Asia/Kolkata", ["2026-11-20 03:30", "2026-11-20 03:50", "2026-11-20 04:10"]),
])
def test_the_other_fields_count_as_eventbridge_counts_them(expression: str, timezone: str,
                                                          expected: list[str]) -> None:
    start, end = at(2026, 11, 20), (at(2026, 11, 25) if "L" not in expression else at(2026, 12, 1))
    assert times(expression, timezone, start, end)[:3] == expected


def test_the_nth_weekday_of_the_month() -> None:
    # 6#3: the third Friday (EventBridge's 6)
    assert times("cron(0 9 ? * 6#3 *)", "UTC", at(2026, 11, 1), at(2026, 12, 31)) == [
        "2026-11-20 09:00", "2026-12-18 09:00"]


def test_a_rate_counts_fixed_durations_from_its_start_whatever_the_clocks_do() -> None:
    start = at(2026, 10, 24, 10, 17)
    # a day is 24 hours: in Berlin the firing moves from 12:17 to 11:17 local when summer time ends; UTC stays
    assert times("rate(1 day)", "Europe/Berlin", start, at(2026, 10, 27, 12)) == [
        "2026-10-25 10:17", "2026-10-26 10:17", "2026-10-27 10:17"]
    assert times("rate(20 minutes)", "UTC", start, at(2026, 10, 24, 11, 17)) == [
        "2026-10-24 10:37", "2026-10-24 10:57", "2026-10-24 11:17"]


# -- the scheduler -------------------------------------------------------------------------------------------

DAILY = ScheduleTarget("wf", "daily", "cron(30 7 * * ? *)", "Europe/Berlin", INGEST_QUEUE, "")
HOURLY = ScheduleTarget("wf", "hourly", "rate(1 hour)", "UTC", INGEST_QUEUE, "")


class Sent(list[str]):
    def times(self) -> list[str]:
        return [json.loads(body)["scheduled_time"] for body in self]


def scheduler(clock: SkippableClock, sent: Sent, state_dir: Path | None = None,
              schedules: tuple[ScheduleTarget, ...] = (DAILY,)) -> LocalScheduler:
    return LocalScheduler(schedules, sent.append, clock=clock, state_dir=state_dir, poll_seconds=3600)


def test_given_a_skipped_day_then_the_daily_schedule_sends_schedulers_message_once() -> None:
    clock, sent = SkippableClock(lambda: at(2026, 11, 22, 12)), Sent()
    local = scheduler(clock, sent)
    assert local.catch_up() == []

    fired = local.advance(24 * 3600)

    assert sent == [schedule_message("wf", "daily", at(2026, 11, 23, 6, 30))]
    assert [f.as_json() for f in fired] == [{
        "schedule": "wf.daily", "scheduled_time": "2026-11-23T06:30:00Z",
        "run_id": run_id_for("schedule:wf.daily:2026-11-23T06:30:00Z")}]
    assert local.run_due() == []  # nothing more is due until tomorrow


def test_given_hours_skipped_then_a_rate_schedule_fires_once_per_period_in_order() -> None:
    clock, sent = SkippableClock(lambda: at(2026, 11, 22, 12, 5)), Sent()
    local = scheduler(clock, sent, schedules=(HOURLY,))
    local.catch_up()

    local.advance(3 * 3600 + 60)

    assert sent.times() == ["2026-11-22T13:05:00Z", "2026-11-22T14:05:00Z", "2026-11-22T15:05:00Z"]


def test_trigger_fires_one_now_and_an_unknown_schedule_is_a_key_error() -> None:
    clock, sent = SkippableClock(lambda: at(2026, 11, 22, 12, 0, 7, 250000)), Sent()
    local = scheduler(clock, sent)

    firing = local.trigger("wf.daily")

    assert sent.times() == ["2026-11-22T12:00:07Z"] and firing.scheduled_time == "2026-11-22T12:00:07Z"
    with pytest.raises(KeyError):
        local.trigger("wf.weekly")


def test_given_a_restart_after_days_stopped_then_only_the_latest_missed_firing_is_sent(tmp_path: Path) -> None:
    now = [at(2026, 11, 22, 12)]
    clock, sent = SkippableClock(lambda: now[0]), Sent()
    first = scheduler(clock, sent, tmp_path)
    first.catch_up()
    first.advance(24 * 3600)  # 23 Nov 06:30 fired
    first.stop()
    assert sent.times() == ["2026-11-23T06:30:00Z"]

    now[0] = at(2026, 11, 26, 9)  # stopped over three more 07:30s (24th, 25th, 26th)
    again = scheduler(SkippableClock(lambda: now[0]), sent, tmp_path)
    caught_up = again.catch_up()

    assert [f.scheduled_time for f in caught_up] == ["2026-11-26T06:30:00Z"]
    assert sent.times() == ["2026-11-23T06:30:00Z", "2026-11-26T06:30:00Z"]
    # and a restart right away sends nothing again
    third = scheduler(SkippableClock(lambda: now[0]), sent, tmp_path)
    assert third.catch_up() == []
    assert len(sent) == 2


def test_given_a_restart_before_the_next_firing_then_it_still_fires_when_due(tmp_path: Path) -> None:
    now = [at(2026, 11, 22, 12)]
    sent = Sent()
    scheduler(SkippableClock(lambda: now[0]), sent, tmp_path).catch_up()
    now[0] = at(2026, 11, 23, 6)  # restarted before 07:30 Berlin (06:30 UTC)
    local = scheduler(SkippableClock(lambda: now[0]), sent, tmp_path)
    assert local.catch_up() == []

    now[0] = at(2026, 11, 23, 6, 31)
    local.run_due()

    assert sent.times() == ["2026-11-23T06:30:00Z"]


def test_an_unreadable_saved_state_starts_the_schedules_afresh(tmp_path: Path) -> None:
    (tmp_path / "scheduler.json").write_text("{not json")
    sent = Sent()
    local = scheduler(SkippableClock(lambda: at(2026, 11, 22, 12)), sent, tmp_path)
    assert local.catch_up() == [] and sent == []
    assert json.loads((tmp_path / "scheduler.json").read_text())["schedules"]["wf.daily"]


def test_a_schedule_eventbridge_would_refuse_stops_the_scheduler_at_construction() -> None:
    bad = ScheduleTarget("wf", "bad", "cron(0 9 * * * *)", "UTC", INGEST_QUEUE, "")
    with pytest.raises(ScheduleExpressionError):
        LocalScheduler((bad,), print)


def test_time_is_only_skipped_forward() -> None:
    clock = SkippableClock(lambda: at(2026, 1, 1))
    assert clock.advance(60) == at(2026, 1, 1, 0, 1)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    assert clock() - at(2026, 1, 1) == timedelta(minutes=1)
