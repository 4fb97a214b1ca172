"""When the scheduler asks Azure for a capture's status: a pure function of the capture's age.

No state is kept between runs. A capture's start is in the storage path the app chose and its time
limit is on the resource, so every run computes the same check instants (seconds after the start):

* before the time limit L, a backoff: at 60 s, then after steps of 120, 240, 480 … s, the step
  doubling up to M (CAPTURE_CHECK_MAX_INTERVAL_SECONDS), then every M (60, 180, 420, 900, 1500 … with
  the default 600): early stops (bytes limit, agent stopped, an error) are found within M;
* the start grace G + 30 s: a capture still NotStarted then is reported as failed;
* L + 30 s, when Network Watcher has stopped it and flushed the file, then again with the same backoff
  counted from there (a capture that outlives its limit is checked every M at the latest).

A run at time `now` checks a capture when an instant falls in (now - window, now], the window being
the timer's period: with the default schedule (every minute) each instant is seen by exactly one run.
A run that is late or skipped only delays a check to the next instant, never loses it.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["END_SLACK_SECONDS", "FIRST_CHECK_SECONDS", "check_instants", "is_due"]

FIRST_CHECK_SECONDS = 60.0
END_SLACK_SECONDS = 30.0


def _backoff(origin: float, until: float, max_interval: float) -> Iterator[float]:
    """origin + 60, + 120, + 240 … (the step capped at max_interval), below `until`."""
    step = FIRST_CHECK_SECONDS
    at = origin + step
    while at < until:
        yield at
        step = min(step * 2, max_interval)
        at += step


def check_instants(time_limit: float, max_interval: float, grace: float, horizon: float) -> Iterator[float]:
    """The ages (seconds since the start) at which the capture's status is checked, up to `horizon`."""
    end = time_limit + END_SLACK_SECONDS
    instants = {*_backoff(0.0, min(end, horizon + 1), max_interval), end, grace + END_SLACK_SECONDS}
    yield from sorted(at for at in instants if at <= horizon)
    # After the expected end the backoff starts again, so a late stop is still found within max_interval.
    yield from _backoff(end, horizon + 1, max_interval)


def is_due(age: float, time_limit: float, *, window: float, max_interval: float, grace: float) -> bool:
    """True when a check instant falls in (age - window, age]."""
    if age < 0:
        return False
    low = age - window
    return any(at > low for at in check_instants(time_limit, max_interval, grace, age))
