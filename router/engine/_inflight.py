"""The router's bound on inputs in flight: a counter with a FIFO line of waiters.

trio's CapacityLimiter does this with a set of named borrowers, which costs about a
microsecond per input in and out; the engine does not need the names (a stream
knows which of its inputs hold a place), so a plain counter does it for a few
attribute reads. The line is a deque of parked tasks rather than a ParkingLot, whose
truth value is a Python call: a place is taken and given back once per input.
"""

from __future__ import annotations

from collections import deque

from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

__all__ = ["InFlight"]


class InFlight:
    """At most ``limit`` places taken at once; waiters get freed places in FIFO order."""

    __slots__ = ("_waiters", "limit", "used")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self.used = 0
        """Places taken now."""
        self._waiters: deque[Task] = deque()

    @property
    def waiting(self) -> int:
        """Tasks waiting for a place."""
        return len(self._waiters)

    def try_take(self) -> bool:
        """Take a place if one is free and nobody waits for one (never yields)."""
        if self.used < self.limit and not self._waiters:
            self.used += 1
            return True
        return False

    async def take(self) -> None:
        """Take a place, waiting in line for one; cancelled, it takes none.

        Returns without a checkpoint when a place is free: callers checkpoint where
        they wait anyway.
        """
        if self.try_take():
            return
        task = current_task()
        waiters = self._waiters
        waiters.append(task)

        def abort(_: object) -> Abort:
            waiters.remove(task)  # cancelled while waiting: it was handed nothing
            return Abort.SUCCEEDED

        # A freed place is handed straight to us (``used`` does not change).
        await wait_task_rescheduled(abort)

    def give_back(self) -> None:
        """Free one place: hand it to the first waiter, if any."""
        if self._waiters:
            reschedule(self._waiters.popleft())
        else:
            self.used -= 1
