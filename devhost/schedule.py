"""Timer-trigger schedules: the NCRONTAB forms Functions apps use, read as the host reads them.

Six fields, ``{second} {minute} {hour} {day} {month} {day-of-week}``; each takes ``*``, a number, a
range ``a-b``, a list ``a,b`` and steps ``*/n``, ``a-b/n``. Day of week is ``0``-``6`` from Sunday.
As in NCrontab (the host's parser), a time matches only if the day of month **and** the day of week
match. Times are UTC (``WEBSITE_TIME_ZONE`` is not emulated). Month/day names and TimeSpan schedules
are not supported (no function here uses them; such a schedule is reported as a problem).
``%NAME%`` app-setting references are resolved by :func:`resolve_setting_references`.
"""

from __future__ import annotations

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

_SETTING_RE = re.compile(r"%([^%\s]+)%")
_ITEM_RE = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")
_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


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


def _parse_field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM_RE.match(item)
        if not match or match.group(2) == "0":
            raise ScheduleError(f"cannot read {item!r}")
        base, step = match.group(1), int(match.group(2) or 1)
        first, _, last = base.partition("-")
        start, stop = (low, high) if base == "*" else (int(first), int(last or first))
        if not low <= start <= stop <= high:
            raise ScheduleError(f"{item!r} is outside {low}-{high} or reversed")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


class Schedule:
    """Base of the schedules: ``next_after(t)`` is the first occurrence strictly after ``t``."""

    def next_after(self, moment: datetime) -> datetime:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """A parsed six-field NCRONTAB expression."""

    expression: str
    fields: tuple[frozenset[int], ...]  # second, minute, hour, day, month, day-of-week

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        texts = expression.split()
        if len(texts) != 6:
            raise ScheduleError(
                f"{expression!r} is not an NCRONTAB expression: it must have 6 fields "
                "({second} {minute} {hour} {day} {month} {day-of-week})"
            )
        try:
            fields = tuple(_parse_field(t, *b) for t, b in zip(texts, _BOUNDS, strict=True))
        except ScheduleError as exc:
            raise ScheduleError(f"invalid NCRONTAB expression {expression!r}: {exc}") from exc
        return cls(expression, fields)

    def next_after(self, moment: datetime) -> datetime:
        # Field by field: advance the coarsest field that does not match, reset the finer ones.
        seconds, minutes, hours, days, months, weekdays = self.fields
        t = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = t.year + 8  # beyond any leap-year cycle: nothing found means it never fires
        while t.year <= limit:
            if t.month not in months:
                t = (t.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0)
            elif t.day not in days or (t.weekday() + 1) % 7 not in weekdays:
                t = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif t.hour not in hours:
                t = (t + timedelta(hours=1)).replace(minute=0, second=0)
            elif t.minute not in minutes:
                t = (t + timedelta(minutes=1)).replace(second=0)
            elif t.second not in seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise ScheduleError(f"NCRONTAB expression {self.expression!r} never occurs")


@dataclass(frozen=True)
class IntervalSchedule(Schedule):
    """The ``--timer-interval`` override: every timer runs at a fixed interval locally."""

    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(expression: str) -> Schedule:
    """Parse a (setting-resolved) timer schedule."""
    return CronSchedule.parse(expression.strip())
