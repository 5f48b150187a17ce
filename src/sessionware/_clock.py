"""``SteadyClock``: the wall clock for session timeouts, without its sudden steps.

Timeouts are elapsed time. A system clock stepped by an hour (a bad NTP sync, an
operator's ``date -s``, a container restored with a stale clock) would otherwise log
every user out (a step forward) or let sessions outlive their absolute timeout (a step
back). Between two readings this clock advances by the kernel's boot-time clock,
which counts suspended time too (a resumed VM has really been away); it follows the
wall clock's small corrections and refuses a larger difference, with a log line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial

__all__ = ["SteadyClock"]

log = logging.getLogger("sessionware")


def _elapsed_source() -> Callable[[], float]:
    boot = getattr(time, "CLOCK_BOOTTIME", None)  # Linux: monotonic, counts suspend
    if boot is None:
        return time.monotonic
    return partial(time.clock_gettime, boot)  # a C call, no Python frame (per request)


class SteadyClock:
    """Epoch seconds that follow ``wall()`` within ``max_step`` and otherwise keep counting.

    The default clock of every session core. Each process keeps its own view: a worker
    started after a step reads the stepped clock, so restart workers together after
    fixing a clock (the log line says so).
    """

    __slots__ = ("_elapsed", "_lock", "_offset", "_reported", "_wall", "max_step")

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        *,
        max_step: float = 120.0,
        elapsed: Callable[[], float] | None = None,
    ) -> None:
        if max_step <= 0:
            raise ValueError("max_step must be positive seconds")
        self._wall = wall
        self._elapsed = elapsed or _elapsed_source()
        self.max_step = max_step
        self._offset = wall() - self._elapsed()
        self._reported = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        steady = self._offset + self._elapsed()
        drift = self._wall() - steady
        if -self.max_step <= drift <= self.max_step:
            if drift:
                self._offset += drift  # slews and small corrections: follow the wall clock
            return steady + drift
        with self._lock:
            if abs(drift - self._reported) > self.max_step:  # once per step, not per call
                self._reported = drift
                log.warning(
                    "the system clock stepped %+.0f s away from the time sessionware keeps "
                    "counting; session timeouts go on by elapsed time in this process. "
                    "Restart the app's workers together once the clock is right",
                    drift,
                )
        return steady
