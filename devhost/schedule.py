"""Timer-trigger schedules: NCRONTAB expressions and TimeSpan intervals, as the Functions host reads them.

* NCRONTAB, 6 fields ``{second} {minute} {hour} {day} {month} {day-of-week}`` (5 fields are read
  with ``second = 0``). Each field takes ``*``, numbers, ranges ``a-b``, lists ``a,b``, steps
  ``*/n``, ``a-b/n`` and ``a/n``; months and days of week also take English names (``JAN``,
  ``MON``); day of week is ``0``-``6`` from Sunday (``7`` is Sunday too). As in NCrontab (the
  library the host uses), a time matches only if the day of month **and** the day of week match.
* TimeSpan ``hh:mm:ss`` or ``d.hh:mm:ss``: a fixed interval (App Service plans only on Azure).

Times are UTC, the host's default (``WEBSITE_TIME_ZONE`` is not emulated).
``%NAME%`` app-setting references are resolved by :func:`resolve_setting_references`.
"""

from __future__ import annotations

import calendar
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "CronSchedule",
    "IntervalSchedule",
    "Schedule",
    "ScheduleError",
    "parse_schedule",
    "resolve_setting_references",
]

_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_TIMESPAN_RE = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?$")
_SETTING_RE = re.compile(r"%([^%\s]+)%")


class ScheduleError(ValueError):
    """An unreadable schedule, or a ``%NAME%`` reference to a missing app setting."""


def resolve_setting_references(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace each ``%NAME%`` by the app setting (environment variable) ``NAME``, like the host."""
    env = os.environ if environ is None else environ

    def _sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ScheduleError(f"'%{name}%' does not resolve to a value: app setting {name} is not set")
        return env[name]

    return _SETTING_RE.sub(_sub, text)


def _parse_value(token: str, low: int, names: Mapping[str, int] | None) -> int:
    upper = token.upper()
    if names and upper in names:
        return names[upper]
    if not token.isdigit():
        raise ScheduleError(f"invalid value {token!r}")
    return int(token)


def _parse_field(text: str, low: int, high: int, names: Mapping[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ScheduleError(f"empty list item in {text!r}")
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"invalid step in {item!r}")
            step = int(step_text)
        if base in ("*", "?"):
            start, stop = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, stop = _parse_value(first, low, names), _parse_value(last, low, names)
        else:
            start = _parse_value(base, low, names)
            stop = high if step_text else start
        if not (low <= start <= high and low <= stop <= high):
            raise ScheduleError(f"{item!r} is out of range {low}-{high}")
        if start > stop:
            raise ScheduleError(f"{item!r} is a reversed range")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


class Schedule:
    """Base of the schedules: ``next_after(t)`` is the first occurrence strictly after ``t``."""

    def next_after(self, moment: datetime) -> datetime:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """A parsed NCRONTAB expression."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        fields = expression.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise ScheduleError(
                f"{expression!r} is not an NCRONTAB expression: it must have 6 fields "
                "({second} {minute} {hour} {day} {month} {day-of-week})"
            )
        try:
            dow = _parse_field(fields[5], 0, 7, _DAYS)
            return cls(
                expression=expression,
                seconds=_parse_field(fields[0], 0, 59),
                minutes=_parse_field(fields[1], 0, 59),
                hours=_parse_field(fields[2], 0, 23),
                days=_parse_field(fields[3], 1, 31),
                months=_parse_field(fields[4], 1, 12, _MONTHS),
                days_of_week=frozenset(d % 7 for d in dow),
            )
        except ScheduleError as exc:
            raise ScheduleError(f"invalid NCRONTAB expression {expression!r}: {exc}") from exc

    def matches(self, moment: datetime) -> bool:
        return (
            moment.second in self.seconds
            and moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.day in self.days
            and moment.month in self.months
            and (moment.weekday() + 1) % 7 in self.days_of_week
        )

    def next_after(self, moment: datetime) -> datetime:
        # Field-by-field search: advance the coarsest field that does not match, reset the finer ones.
        t = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = t.year + 8  # beyond any leap-year cycle: nothing found means it never fires
        while t.year <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0)
                continue
            if t.day not in self.days or (t.weekday() + 1) % 7 not in self.days_of_week:
                t = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0, second=0)
                continue
            if t.minute not in self.minutes:
                t = (t + timedelta(minutes=1)).replace(second=0)
                continue
            if t.second not in self.seconds:
                t += timedelta(seconds=1)
                continue
            return t
        raise ScheduleError(f"NCRONTAB expression {self.expression!r} never occurs")


@dataclass(frozen=True)
class IntervalSchedule(Schedule):
    """A TimeSpan schedule (``hh:mm:ss``), or the ``--timer-interval`` override."""

    interval: timedelta

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0):
            raise ScheduleError("a timer interval must be positive")

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(expression: str) -> Schedule:
    """Parse a (setting-resolved) timer schedule: NCRONTAB or TimeSpan."""
    text = expression.strip()
    span = _TIMESPAN_RE.match(text)
    if span:
        days, hours, minutes, seconds = (int(g) if g else 0 for g in span.groups())
        if hours > 23 or minutes > 59 or seconds > 59:
            raise ScheduleError(f"invalid TimeSpan schedule {expression!r}")
        return IntervalSchedule(timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds))
    return CronSchedule.parse(text)
