"""A FIFO gate: at most ``capacity`` holders, admitted strictly in reservation order.

Reserving is synchronous, so a task takes its place in line before it first
yields to the scheduler. The engine reserves a plugin's gate in the order messages
reach that plugin (input order, for the first plugin), which is what keeps a
``concurrency=1`` plugin's calls in order even though trio may run woken tasks in
any order.

A ticket admitted at once costs no wakeup: :meth:`Ticket.enter` returns without
yielding, and an event to wait on is made only for a ticket that has to queue. A
queued ticket may instead name a callback (:meth:`Ticket.when_admitted`), so that an
input waiting for its turn needs no task of its own.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable

import trio

__all__ = ["FifoGate", "Ticket"]


class _State(enum.Enum):
    QUEUED = enum.auto()
    ADMITTED = enum.auto()
    RELEASED = enum.auto()


class Ticket:
    """A place in line at one :class:`FifoGate`."""

    __slots__ = ("_admitted", "_gate", "_on_admit", "_state")

    def __init__(self, gate: FifoGate, state: _State) -> None:
        self._gate = gate
        self._state = state
        self._admitted: trio.Event | None = None
        self._on_admit: Callable[[], None] | None = None

    def when_admitted(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once this queued ticket is admitted, instead of a task waiting.

        It runs inside the :meth:`release` that admits it, after the gate's own state is
        settled: it must be short (the engine only queues work with it).
        """
        if self._state is not _State.QUEUED:
            raise RuntimeError("when_admitted() is for a ticket still in line")
        self._on_admit = callback

    @property
    def admitted(self) -> bool:
        """True once this ticket holds a place in the gate (until released)."""
        return self._state is _State.ADMITTED

    async def enter(self) -> None:
        """Wait until admitted; on cancellation the place in line is given up.

        Returns at once, without a checkpoint, when the ticket is already admitted:
        the caller goes on to a plugin call, which is where waiting belongs.
        """
        if self._state is _State.ADMITTED:
            return
        if self._admitted is None:
            self._admitted = trio.Event()
        try:
            await self._admitted.wait()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Leave the gate (or the line); idempotent, so cleanup paths may always call it."""
        state, self._state = self._state, _State.RELEASED
        if state is _State.ADMITTED:
            gate = self._gate
            gate._active -= 1
            if gate._queue:
                gate._admit()
        elif state is _State.QUEUED:
            self._gate._queue.remove(self)


class FifoGate:
    """Admits at most ``capacity`` tickets at once, in the order they were reserved."""

    __slots__ = ("_active", "_queue", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a gate needs a capacity >= 1, got {capacity}")
        self.capacity = capacity
        self._active = 0
        self._queue: collections.deque[Ticket] = collections.deque()

    @property
    def active(self) -> int:
        """How many tickets are admitted right now."""
        return self._active

    @property
    def waiting(self) -> int:
        """How many tickets are in line."""
        return len(self._queue)

    def reserve(self) -> Ticket:
        """Take a place at the end of the line (admitted at once if there is room)."""
        if not self._queue and self._active < self.capacity:
            self._active += 1
            return Ticket(self, _State.ADMITTED)
        ticket = Ticket(self, _State.QUEUED)
        self._queue.append(ticket)
        self._admit()
        return ticket

    def _admit(self) -> None:
        callbacks: list[Callable[[], None]] = []
        while self._active < self.capacity and self._queue:
            ticket = self._queue.popleft()
            ticket._state = _State.ADMITTED
            self._active += 1
            if ticket._admitted is not None:
                ticket._admitted.set()
            if ticket._on_admit is not None:
                callbacks.append(ticket._on_admit)
                ticket._on_admit = None
        for callback in callbacks:  # once the gate is consistent: they may use it again
            callback()
