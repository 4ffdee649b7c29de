"""CPU time spent by this process and its helpers: the figure least moved by a noisy host.

Wall-clock rates on a shared machine swing with CPU placement and neighbours; the
CPU time a pass costs (this process plus the children it talks to) swings far less.
Children's time comes from ``/proc/PID/task/*/schedstat`` (nanoseconds on CPU);
ours from ``time.process_time_ns``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CpuMeter", "process_cpu_ns"]


def process_cpu_ns(pid: int) -> int:
    """Nanoseconds ``pid``'s threads have run on a CPU (0 if it is gone or unreadable)."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total


class CpuMeter:
    """CPU time of this process plus ``pids`` between construction and :meth:`stop`."""

    def __init__(self, pids: Iterable[int]) -> None:
        self._pids = list(pids)
        self._start = self._now()

    def _now(self) -> int:
        return time.process_time_ns() + sum(process_cpu_ns(p) for p in self._pids)

    def stop(self) -> int:
        """Nanoseconds of CPU used by all of them since the meter started."""
        return self._now() - self._start
