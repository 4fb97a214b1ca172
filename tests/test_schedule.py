"""The scheduler's check instants: few status queries per capture, early stops still found, none lost."""

from __future__ import annotations

import pytest

from capture.schedule import check_instants, is_due

MAX_INTERVAL, GRACE, WINDOW = 600.0, 300.0, 60.0


def checks_over_life(time_limit: float) -> int:
    """Status queries of one capture until the check that finds it ended (at its limit + 30 s)."""
    return len(set(check_instants(time_limit, MAX_INTERVAL, GRACE, time_limit + 30)))


def test_a_five_hour_capture_is_queried_a_few_dozen_times_not_three_hundred():
    assert 20 <= checks_over_life(18000) <= 40


def test_a_one_minute_capture_is_queried_about_twice():
    assert checks_over_life(60) <= 3


@pytest.mark.parametrize("time_limit", [60, 300, 3600, 18000])
def test_no_gap_between_checks_is_longer_than_the_bound(time_limit):
    instants = sorted(set(check_instants(time_limit, MAX_INTERVAL, GRACE, time_limit + 7200)))
    gaps = [b - a for a, b in zip([0.0, *instants], instants, strict=False)]
    assert max(gaps) <= MAX_INTERVAL
    assert time_limit + 30 in instants  # at the expected end
    assert GRACE + 30 in instants  # at the end of the start grace


@pytest.mark.parametrize("time_limit", [60, 1000, 18000])
def test_runs_a_minute_apart_see_every_instant_once(time_limit):
    """Wherever the runs fall relative to the start, each check instant is due in exactly one run."""
    horizon = time_limit + 3600
    for offset in (0.0, 17.5, 59.9):
        ages = [offset + 60 * k for k in range(int(horizon // 60))]
        due = [age for age in ages if is_due(age, time_limit, window=60, max_interval=600, grace=300)]
        expected = [at for at in set(check_instants(time_limit, 600, 300, ages[-1])) if at > ages[0]]
        assert len(due) <= len(expected)
        # every instant lies in the window of some run that was due
        assert all(any(age - 60 < at <= age for age in due) for at in expected)


def test_nothing_is_due_before_the_start():
    assert not is_due(-5, 60, window=60, max_interval=600, grace=300)
