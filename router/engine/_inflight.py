"""The router's bound on inputs in flight: a counter with a FIFO line of waiters.

trio's CapacityLimiter does this with a set of named borrowers, which costs about a
microsecond per input in and out; the engine does not need the names (a stream
knows which of its inputs hold a place), so a plain counter does it for a few
attribute reads.
"""

from __future__ import annotations

from trio.lowlevel import ParkingLot

__all__ = ["InFlight"]


class InFlight:
    """At most ``limit`` places taken at once; waiters get freed places in FIFO order."""

    __slots__ = ("_lot", "limit", "used")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self.used = 0
        """Places taken now."""
        self._lot = ParkingLot()

    def try_take(self) -> bool:
        """Take a place if one is free and nobody waits for one (never yields)."""
        if self.used < self.limit and not self._lot:
            self.used += 1
            return True
        return False

    async def take(self) -> None:
        """Take a place, waiting in line for one; cancelled, it takes none.

        Returns without a checkpoint when a place is free: callers checkpoint where
        they wait anyway.
        """
        if not self.try_take():
            # A freed place is handed straight to us (``used`` does not change).
            await self._lot.park()

    def give_back(self) -> None:
        """Free one place: hand it to the first waiter, if any."""
        if self._lot:
            self._lot.unpark()
        else:
            self.used -= 1
