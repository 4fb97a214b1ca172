"""`python -m devhost` as a subprocess: banner with URLs, serving, clean stop on SIGTERM / Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.devhost.devhost_support import REPO_ROOT, SAMPLE_APP, call

KEY = "cli-key-9b7e41"


def start_cli(*args: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    env = {**os.environ, "SAMPLE_TICK_SCHEDULE": "0 0 0 1 1 *", "PYTHONPATH": str(REPO_ROOT)}
    env.pop("FUNCTIONS_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--app-dir", str(SAMPLE_APP), "--port", "0", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, proc.kill)  # never let a broken CLI hang the suite
    watchdog.start()
    banner: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            banner.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
    finally:
        watchdog.cancel()
    text = "\n".join(banner)
    match = re.search(r"Listening on (http://\S+)", text)
    assert match, f"no URL in the banner:\n{text}\n{proc.stderr.read() if proc.stderr else ''}"
    return proc, match.group(1), banner


def stop_cli(proc: subprocess.Popen[str], signum: int) -> tuple[str, str]:
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    return out, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_serves_prints_urls_and_stops_cleanly(signum: int) -> None:
    proc, url, banner = start_cli("--key", KEY)
    try:
        text = "\n".join(banner)
        assert f"Function key (--key): {KEY}" in text
        assert f"{url}/sample/alerts?code={KEY}" in text
        assert f"{url}/sample/health\n" in text + "\n"
        assert call(url, "/sample/health").body == b"ok"
        assert call(url, f"/sample/echo/1?code={KEY}").status == 200
        assert call(url, "/sample/echo/1").status == 401
    finally:
        out, err = stop_cli(proc, signum)
    assert proc.returncode == 0, err
    assert "GET /sample/health -> 200" in err
    assert KEY not in err  # the key is shown once, in the banner on stdout, never logged
    assert "shutting down" in out


def test_cli_generates_a_key_and_runs_timers() -> None:
    proc, url, banner = start_cli("--timers", "--timer-interval", "3600")
    try:
        text = "\n".join(banner)
        key = re.search(r"Function key \(generated\): (\S+)", text)
        assert key
        assert "every 3600 s (--timer-interval)" in text
        assert call(url, f"/sample/echo/1?code={key.group(1)}").status == 200
    finally:
        _, err = stop_cli(proc, signal.SIGTERM)
    assert proc.returncode == 0, err


def test_cli_reports_an_unloadable_app(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "--app-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot load the app" in result.stderr
