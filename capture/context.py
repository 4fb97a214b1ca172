"""The one owner of process-wide state: settings, Azure access, reservations, blob access, the report
queue, and the orchestrator and monitor built on them.

A Functions worker process serves many invocations; everything worth keeping between them (clients
with warm connection pools, region and watcher caches, the per-watcher reservations, the monitor's
no-overlap lock) lives in one `AppContext`, built on first use from the environment. `reset()` forgets
it, as a new worker process would: tests, benchmarks and the local host call it after changing the
environment. Per-call state (a webhook target's deadline and ARM call count) is not here: it lives in
`capture.arm.call_scope()`, for as long as the call.
"""

from __future__ import annotations

import threading

from capture.arm import Arm
from capture.blobs import Blobs
from capture.monitor import Monitor
from capture.orchestrator import Orchestrator, Reservations
from capture.queueing import ReportQueue
from capture.recorder import Recorder
from capture.settings import Settings, load_settings

__all__ = ["AppContext", "app_context", "reset"]


class AppContext:
    """Everything that lives as long as the worker process, built once from one Settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.arm = Arm(settings)
        self.reservations = Reservations()
        self.blobs = Blobs(settings, self.arm.credential)
        self.reports = ReportQueue(settings, self.arm.credential, self.blobs)
        self.recorder = Recorder(self.arm, settings, self.reservations, self.blobs, queue=self.reports)
        self.orchestrator = Orchestrator(self.arm, settings, self.reservations, self.recorder)
        self.monitor = Monitor(
            self.arm, settings, analyzer=self.blobs.analyzer(), queue=self.reports, recorder=self.recorder
        )


_current: AppContext | None = None
_lock = threading.Lock()


def app_context() -> AppContext:
    """The process's context, built on first use; raises SettingsError while the settings are invalid."""
    global _current
    with _lock:
        if _current is None:
            _current = AppContext(load_settings())
        return _current


def reset() -> None:
    """Forget settings, clients, caches and reservations, as a new worker process would."""
    global _current
    with _lock:
        _current = None
