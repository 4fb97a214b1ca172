"""Timer schedules: six-field NCRONTAB (NCrontab semantics) and %SETTING% references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devhost.schedule import (
    CronSchedule,
    ScheduleError,
    parse_schedule,
    resolve_setting_references,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * * *", "2024-05-01T12:00:03", "2024-05-01T12:00:05"),
        ("*/5 * * * * *", "2024-05-01T12:00:05", "2024-05-01T12:00:10"),
        ("*/5 * * * * *", "2024-05-01T12:00:58", "2024-05-01T12:01:00"),
        ("0 * * * * *", "2024-05-01T12:00:00", "2024-05-01T12:01:00"),
        ("0 */5 * * * *", "2024-05-01T12:03:10", "2024-05-01T12:05:00"),
        ("30 15 9 * * *", "2024-05-01T12:00:00", "2024-05-02T09:15:30"),
        ("0 0 0 1 1 *", "2024-05-01T12:00:00", "2025-01-01T00:00:00"),
        ("0 0 12 * * 1-5", "2024-05-04T00:00:00", "2024-05-06T12:00:00"),
        ("0 0 12 * * 0", "2024-05-01T00:00:00", "2024-05-05T12:00:00"),
        ("0 0 0 13 * 5", "2024-05-01T00:00:00", "2024-09-13T00:00:00"),  # day AND day-of-week (Friday)
        ("0 0 0 29 2 *", "2024-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("0 0 0 31 * *", "2024-04-01T00:00:00", "2024-05-31T00:00:00"),
        ("0 0 9-17/4 * * *", "2024-05-01T10:00:00", "2024-05-01T13:00:00"),
    ],
)
def test_next_occurrence(expression: str, after: str, expected: str) -> None:
    assert CronSchedule.parse(expression).next_after(at(after)) == at(expected)


def test_next_occurrence_ignores_sub_second_part_and_is_strictly_after() -> None:
    schedule = CronSchedule.parse("* * * * * *")
    moment = at("2024-05-01T12:00:00") + timedelta(microseconds=999_000)
    assert schedule.next_after(moment) == at("2024-05-01T12:00:01")


@pytest.mark.parametrize(
    "expression",
    [
        "* * * *",
        "* * * * * * *",
        "60 * * * * *",
        "*/0 * * * * *",
        "a * * * * *",
        "5-1 * * * * *",
        "0 0 0 0 * *",
        "0 0 12 * * MON",  # names: not used here, not supported
        "00:05:00",  # TimeSpan: likewise
        "*/10 * * * *",  # five fields
    ],
)
def test_bad_expressions(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


def test_expression_that_never_occurs() -> None:
    with pytest.raises(ScheduleError, match="never occurs"):
        CronSchedule.parse("0 0 0 31 2 *").next_after(at("2024-01-01T00:00:00"))


def test_setting_references_resolve_from_the_environment() -> None:
    env = {"MONITOR_SCHEDULE": "*/15 * * * * *", "SECOND": "5"}
    assert resolve_setting_references("%MONITOR_SCHEDULE%", env) == "*/15 * * * * *"
    assert resolve_setting_references("%SECOND% * * * * *", env) == "5 * * * * *"
    assert resolve_setting_references("0 * * * * *", env) == "0 * * * * *"
    with pytest.raises(ScheduleError, match="MISSING"):
        resolve_setting_references("%MISSING%", env)
