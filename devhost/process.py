"""Start the local host as a separate process running an app's queue triggers (for tests and benchmarks).

Several worker processes on one queue is how the follow-through scales out; the flow tests, the devhost
tests and the follow-through benchmark all start them the same way, through `start_queue_host`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["REPO_ROOT", "start_queue_host"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def start_queue_host(
    app_dir: Path, *args: str, key: str, poll_interval: str, keep_stderr: bool = False
) -> subprocess.Popen[str]:
    """A `python -m devhost` process serving `app_dir`'s queue triggers (no local.settings.json),
    returned once it prints its banner. Its environment is this process's, with the repository on
    PYTHONPATH. With `keep_stderr` its stderr is piped (and quoted when it fails to start); otherwise
    discarded."""
    proc = subprocess.Popen(  # noqa: S603 - our own argv: this interpreter running the devhost package
        [
            *(sys.executable, "-m", "devhost", "--app-dir", str(app_dir), "--port", "0", "--key", key),
            *("--no-local-settings", "--queues", "--queue-poll-interval", poll_interval, *args),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if keep_stderr else subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Press Ctrl-C"):
            return proc
    proc.kill()
    detail = f": {proc.communicate(timeout=30)[1]}" if keep_stderr else ""
    raise RuntimeError(f"the host did not start{detail}")
