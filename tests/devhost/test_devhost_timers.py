"""Timer-triggered functions: trigger_timer(), schedules (%SETTING%), --timers, the admin endpoint."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

from devhost import LocalHost, ScheduleError
from tests.devhost.devhost_support import SAMPLE_APP, call, write_app

KEY = "timer-key-0c1d"


@pytest.fixture
def far_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMPLE_TICK_SCHEDULE", "0 0 0 1 1 *")


def sample(**kwargs: Any) -> LocalHost:
    return LocalHost(SAMPLE_APP, key=KEY, load_settings=False, **kwargs)


def test_trigger_timer_calls_the_function_with_a_timer_request(far_schedule: None) -> None:
    host = sample()
    try:
        host.trigger_timer("tick")
        calls = host.loaded.module.TIMER_CALLS
        assert [name for name, _ in calls] == ["tick"]
        request = calls[0][1]
        assert isinstance(request, TimerRequest)
        assert request.past_due is False
        assert set(request.schedule_status) == {"Last", "Next", "LastUpdated"}
        assert request.schedule_status["Next"].startswith(f"{datetime.now(UTC).year + 1}-01-01T00:00:00")
        host.trigger_timer("tick", past_due=True)
        assert calls[1][1].past_due is True
        assert calls[1][1].schedule_status["Last"] != "0001-01-01T00:00:00+00:00"
    finally:
        host.stop()


def test_trigger_timer_runs_async_functions(far_schedule: None) -> None:
    with sample() as host:
        host.trigger_timer("async_tick")
        assert host.loaded.module.ASYNC_TIMER_FIRED.is_set()


def test_trigger_timer_raises_the_function_error_and_logs_it(
    far_schedule: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devhost")
    with sample() as host:
        with pytest.raises(ValueError, match="timer failure"):
            host.trigger_timer("failing_timer")
        assert "Executed 'Functions.failing_timer' (Failed" in caplog.text
        with pytest.raises(KeyError, match="tick"):
            host.trigger_timer("health")


def test_schedule_setting_reference_is_resolved_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMPLE_TICK_SCHEDULE", "*/15 * * * * *")
    with sample() as host:
        info = {f.name: f for f in host.functions}
        assert info["tick"].schedule == "*/15 * * * * *"
        assert info["tick"].problem is None
        after = datetime(2024, 5, 1, 12, 0, 16, tzinfo=UTC)
        assert host.next_occurrence("tick", after) == datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)


def test_missing_schedule_setting_is_reported_and_blocks_run_timers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SAMPLE_TICK_SCHEDULE", raising=False)
    caplog.set_level(logging.ERROR, logger="devhost")
    host = sample(run_timers=True)
    try:
        info = {f.name: f for f in host.functions}
        assert "SAMPLE_TICK_SCHEDULE" in (info["tick"].problem or "")
        assert "SAMPLE_TICK_SCHEDULE" in caplog.text
        host.trigger_timer("tick")  # firing by hand needs no schedule
        with pytest.raises(ScheduleError, match="SAMPLE_TICK_SCHEDULE"):
            host.start()
    finally:
        host.stop()


def test_timer_interval_override_runs_every_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAMPLE_TICK_SCHEDULE", raising=False)  # not needed with the override
    with sample(run_timers=True, timer_interval=0.05) as host:
        module = host.loaded.module
        assert module.TIMER_FIRED.wait(10)
        assert module.ASYNC_TIMER_FIRED.wait(10)


def test_run_timers_follows_the_ncrontab_schedule(far_schedule: None) -> None:
    with sample(run_timers=True) as host:  # async_tick: "*/1 * * * * *"
        module = host.loaded.module
        assert module.ASYNC_TIMER_FIRED.wait(10)
        assert not module.TIMER_FIRED.is_set()  # "0 0 0 1 1 *" is not due
        assert "next " in host.banner()


def test_admin_endpoint_runs_a_timer_function(far_schedule: None) -> None:
    with sample() as host:
        assert call(host.url, "/admin/functions/tick", "POST", body=b"{}").status == 401
        assert call(host.url, "/admin/functions/nope", "POST", headers={"x-functions-key": KEY}).status == 404
        assert call(host.url, "/admin/functions/tick", headers={"x-functions-key": KEY}).status == 405
        reply = call(
            host.url, "/admin/functions/tick", "POST", body=b'{"input": ""}', headers={"x-functions-key": KEY}
        )
        assert (reply.status, reply.body) == (202, b"")
        assert host.loaded.module.TIMER_FIRED.wait(10)


def test_admin_ping_and_status(far_schedule: None) -> None:
    with sample() as host:
        assert call(host.url, "/admin/host/ping").status == 200
        assert call(host.url, "/admin/host/status").status == 401
        status = call(host.url, f"/admin/host/status?code={KEY}")
        assert status.json()["state"] == "Running"
        assert call(host.url, f"/admin/other?code={KEY}").status == 404


def test_run_on_startup_runs_the_timer_once_at_start(tmp_path: Path) -> None:
    source = """
import threading

import azure.functions as func

app = func.FunctionApp()
STARTED = threading.Event()


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def warm(timer: func.TimerRequest) -> None:
    STARTED.set()
"""
    app = write_app(tmp_path, source)
    with LocalHost(app, key="k", load_settings=False) as idle:
        assert not idle.loaded.module.STARTED.is_set()  # timers off: nothing runs by itself
    with LocalHost(app, key="k", load_settings=False, run_timers=True) as host:
        assert host.loaded.module.STARTED.wait(10)


def test_scheduled_runs_log_executing_and_executed_at_info_only_when_the_function_did_something(
    far_schedule: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with sample(run_timers=True, timer_interval=0.05) as host:
        module = host.loaded.module
        assert module.TIMER_FIRED.wait(10)  # tick logs nothing: an idle run
        assert module.BUSY_TIMER_FIRED.wait(10)  # busy_tick logs at INFO
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    tick = [(level, text) for level, text in lines if "'Functions.tick'" in text]
    assert tick, "the scheduled tick ran"
    assert {level for level, _ in tick} == {logging.DEBUG}
    busy = [text for level, text in lines if level >= logging.INFO and ("busy" in text)]
    assert busy[0].startswith("Executing 'Functions.busy_tick'")
    assert busy[1] == "busy_tick did some work"
    assert busy[2].startswith("Executed 'Functions.busy_tick' (Succeeded")


def test_manual_runs_always_log_at_info(far_schedule: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devhost")
    with sample() as host:
        host.trigger_timer("tick")
    assert "Executing 'Functions.tick' (Reason='Manual trigger')" in caplog.text
    assert "Executed 'Functions.tick' (Succeeded" in caplog.text
