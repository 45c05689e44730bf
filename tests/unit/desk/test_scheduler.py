"""The simulated scheduler: rate and cron expressions fired at the right simulated times."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from desk.clock import FixedClock
from desk.local.scheduler import Cron, Scheduler, parse_expression
from desk.topology import ScheduleSpec, topology

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)  # a Friday


def _scheduler(schedules: dict[str, str], start: datetime = T0) -> tuple[Scheduler, list[tuple[str, Any]]]:
    calls: list[tuple[str, Any]] = []
    clock = FixedClock(start)

    def invoke(function: str, event: Mapping[str, Any]) -> None:
        calls.append((function, clock.now(), event))

    specs = {name: ScheduleSpec(expression=expr, function=f"fn-{name}") for name, expr in schedules.items()}
    return Scheduler(specs, clock, invoke), calls


def test_rate_fires_every_period_after_the_start() -> None:
    # Given a 5-minute rate started at T0
    scheduler, calls = _scheduler({"risk": "rate(5 minutes)"})
    # When the clock moves 17 minutes
    scheduler.advance(T0 + timedelta(minutes=17))
    # Then it fired at +5, +10 and +15, each with the clock set to the firing time
    assert [at for _, at, _ in calls] == [T0 + timedelta(minutes=m) for m in (5, 10, 15)]
    # And the next advance continues the same cadence
    scheduler.advance(T0 + timedelta(minutes=20))
    assert calls[-1][1] == T0 + timedelta(minutes=20)
    assert scheduler.clock.now() == T0 + timedelta(minutes=20)


def test_cron_fires_at_matching_minutes_only() -> None:
    # Given a cron at minutes 0 and 30 of hours 13-14, Monday to Friday
    scheduler, calls = _scheduler({"report": "cron(0,30 13-14 ? * MON-FRI *)"})
    # When the clock moves through Friday afternoon and the weekend to Monday 14:00
    scheduler.advance(datetime(2024, 3, 4, 14, 0, tzinfo=UTC))
    # Then it fired Friday 13:00, 13:30, 14:00, 14:30 and Monday 13:00, 13:30, 14:00 (not at the weekend)
    fired = [at for _, at, _ in calls]
    friday = [datetime(2024, 3, 1, h, m, tzinfo=UTC) for h, m in ((13, 0), (13, 30), (14, 0), (14, 30))]
    monday = [datetime(2024, 3, 4, h, m, tzinfo=UTC) for h, m in ((13, 0), (13, 30), (14, 0))]
    assert fired == friday + monday


def test_cron_steps_and_day_of_month() -> None:
    # Given "every 15 minutes of 00:xx on the 1st of the month"
    cron = parse_expression("cron(*/15 0 1 * ? *)", T0)
    # Then the next firing after March 1st noon is April 1st 00:00, then 00:15
    first = cron.next_after(T0)
    assert first == datetime(2024, 4, 1, 0, 0, tzinfo=UTC)
    assert cron.next_after(first) == datetime(2024, 4, 1, 0, 15, tzinfo=UTC)


def test_aws_day_of_week_numbering_has_sunday_as_one() -> None:
    # Given cron day-of-week 1 (AWS: Sunday)
    cron = parse_expression("cron(0 9 ? * 1 *)", T0)
    # Then it fires on Sunday March 3rd
    assert cron.next_after(T0) == datetime(2024, 3, 3, 9, 0, tzinfo=UTC)


def test_firings_run_in_time_order_across_schedules() -> None:
    # Given a 1-minute and a 2-minute rate
    scheduler, calls = _scheduler({"b-fast": "rate(1 minute)", "a-slow": "rate(2 minutes)"})
    # When 4 minutes pass
    firings = scheduler.advance(T0 + timedelta(minutes=4))
    # Then firings are ordered by time, ties broken by schedule name
    assert [(f.at - T0, f.schedule) for f in firings] == [
        (timedelta(minutes=1), "b-fast"),
        (timedelta(minutes=2), "a-slow"),
        (timedelta(minutes=2), "b-fast"),
        (timedelta(minutes=3), "b-fast"),
        (timedelta(minutes=4), "a-slow"),
        (timedelta(minutes=4), "b-fast"),
    ]
    assert [c[0] for c in calls][:2] == ["fn-b-fast", "fn-a-slow"]


def test_the_event_has_the_scheduled_event_shape() -> None:
    scheduler, calls = _scheduler({"ingest": "rate(1 minute)"})
    scheduler.advance(T0 + timedelta(minutes=1))
    event = calls[0][2]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2024-03-01T12:01:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/ingest"]
    assert event["detail"] == {}
    # And the id is stable for a replay of the same firing
    assert event["id"] == scheduler.scheduled_event("ingest", T0 + timedelta(minutes=1))["id"]


def test_a_failing_handler_is_recorded_and_the_clock_keeps_going() -> None:
    clock = FixedClock(T0)

    def invoke(function: str, event: Mapping[str, Any]) -> None:
        raise RuntimeError("boom")

    scheduler = Scheduler({"x": ScheduleSpec(expression="rate(1 minute)", function="f")}, clock, invoke)
    firings = scheduler.advance(T0 + timedelta(minutes=2))
    assert [f.error for f in firings] == ["RuntimeError: boom", "RuntimeError: boom"]
    assert clock.now() == T0 + timedelta(minutes=2)


def test_the_topology_schedules_fire_at_their_rates() -> None:
    # Given the repository's schedules on a simulated clock
    calls: list[str] = []
    scheduler = Scheduler(topology().schedules, FixedClock(T0), lambda f, e: calls.append(f))
    # When one hour passes
    scheduler.advance(T0 + timedelta(hours=1))
    # Then ingest and reconciliation ran 60 times, risk 12 and correlation once
    expected = {"ingest_planner": 60, "reconcile_tasks": 60, "risk": 12, "correlation": 1}
    assert {f: calls.count(f) for f in set(calls)} == expected


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "cron(0 12 * * *)",
        "cron(0 12 * * * *)",
        "cron(0 12 ? * ? *)",
        "cron(0 12 L * ? *)",
        "cron(0 12 ? * 6#3 *)",
        "cron(61 12 * * ? *)",
        "every(5 minutes)",
    ],
)
def test_unsupported_or_invalid_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(ValueError):
        parse_expression(expression, T0)


def test_the_clock_never_moves_backwards() -> None:
    scheduler, _ = _scheduler({"x": "rate(1 minute)"})
    with pytest.raises(ValueError):
        scheduler.advance(T0 - timedelta(minutes=1))


def test_cron_parse_keeps_named_months() -> None:
    cron = Cron.parse("0 0 1 JAN,JUL ? *")
    assert cron.months == frozenset({1, 7})
