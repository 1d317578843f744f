"""Pauses of the whole machine, seen from a watcher process, to subtract from wall times.

On a shared virtual machine the hypervisor can stop every virtual CPU at once for
hundreds of milliseconds ("steal"). Both wall-clock and process CPU time count those
pauses, so a measurement of several seconds is inflated by whatever pauses fell
inside it. :class:`StallWatch` starts a small process that sleeps 1 ms at a time and
writes down every gap between wake-ups longer than ``threshold`` seconds; since the
pauses stop the whole machine, it sees the same ones the measured code suffers.
``stalled(t0, t1)`` is the paused time inside ``[t0, t1]`` (``time.perf_counter``,
one monotonic clock for every process on Linux).

The estimate is rough: a watcher that is itself descheduled because every core is
busy reports a pause that the measured code may not have had. The runner prints wall
times and the stall-corrected times side by side, and the share of time paused.

>>> with StallWatch() as watch:
...     watch.stalled(0.0, 0.0)
0.0
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from types import TracebackType

WATCHER = r"""
import sys, time
threshold = float(sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
prev = time.perf_counter()
while True:
    time.sleep(0.001)
    now = time.perf_counter()
    if now - prev > threshold:
        out.write(f"{prev!r} {now!r}\n")
    prev = now
"""


class StallWatch:
    """Context manager: a watcher process recording machine-wide pauses."""

    def __init__(self, threshold: float = 0.02) -> None:
        self.threshold = threshold
        self._proc: subprocess.Popen[bytes] | None = None
        self._path = ""

    def __enter__(self) -> StallWatch:
        fd, self._path = tempfile.mkstemp(prefix="graphc-stalls-", suffix=".txt")
        os.close(fd)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", WATCHER, repr(self.threshold), self._path],
            stdin=subprocess.DEVNULL,
        )
        time.sleep(0.05)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        if self._path:
            os.unlink(self._path)

    def gaps(self) -> list[tuple[float, float]]:
        """The pauses seen so far, as ``(start, end)`` perf_counter times."""
        try:
            with open(self._path) as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            parts = line.split()
            if len(parts) == 2:
                # the watcher slept 1 ms of each gap on purpose
                out.append((float(parts[0]) + 0.001, float(parts[1])))
        return out

    def stalled(self, t0: float, t1: float) -> float:
        """Seconds of pauses inside ``[t0, t1]``."""
        return sum((max(0.0, min(b, t1) - max(a, t0)) for a, b in self.gaps()), 0.0)


def measure(fn: object, watch: StallWatch | None) -> tuple[float, float]:
    """``(wall, wall minus pauses)`` seconds of one call ``fn()``."""
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    t1 = time.perf_counter()
    time.sleep(0.01)  # let the watcher write down a pause that ended at t1
    return t1 - t0, t1 - t0 - (watch.stalled(t0, t1) if watch else 0.0)
