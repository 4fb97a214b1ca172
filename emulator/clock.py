"""The emulated clock: real time scaled by ``time_scale`` plus manual ``advance()`` steps.

``now() = start + (monotonic elapsed) * time_scale + sum(advance)``. ``time_scale=0`` freezes time so tests
move it only with ``advance()`` (fully deterministic); ``time_scale=1000`` lets a 60 s capture end in 60 ms.
"""

from __future__ import annotations

import datetime as dt
import threading
import time


class Clock:
    def __init__(self, time_scale: float = 1.0, *, start: float | None = None) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self._lock = threading.Lock()
        self._scale = float(time_scale)
        self._anchor_real = time.monotonic()
        self._anchor_emu = time.time() if start is None else float(start)

    @property
    def time_scale(self) -> float:
        return self._scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        if value < 0:
            raise ValueError("time_scale must be >= 0")
        with self._lock:
            real = time.monotonic()
            self._anchor_emu += (real - self._anchor_real) * self._scale
            self._anchor_real = real
            self._scale = float(value)

    def now(self) -> float:
        """Emulated time, epoch seconds (UTC)."""
        with self._lock:
            return self._anchor_emu + (time.monotonic() - self._anchor_real) * self._scale

    def now_datetime(self) -> dt.datetime:
        return to_datetime(self.now())

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the emulated clock only moves forward")
        with self._lock:
            self._anchor_emu += seconds

    def real_seconds_until(self, emulated: float) -> float | None:
        """Real seconds until the emulated instant (None when time is frozen)."""
        with self._lock:
            if self._scale == 0:
                return None
            now = self._anchor_emu + (time.monotonic() - self._anchor_real) * self._scale
            return max(0.0, (emulated - now) / self._scale)


def to_datetime(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def iso(epoch: float) -> str:
    """ISO-8601 / RFC 3339 with microseconds and ``Z`` (the [REC] form, e.g. 2020-06-01T03:28:55.445452Z)."""
    return to_datetime(epoch).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
