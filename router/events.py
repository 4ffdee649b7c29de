"""The event bus: what the router, the engine and plugin supervisors tell watchers.

Publishers (the engine for results, exec handles for plugin lifecycle, the admin
server for pipeline edits) call :meth:`EventBus.publish`; watchers (``routerctl
watch``) hold a :class:`Subscription` and iterate it. Publishing never blocks and
never fails: a subscriber that falls behind loses the oldest events and is told how
many it missed, so a slow watcher can never stall routing.

Publish from the trio thread (the thread that runs the router): waking a waiting
subscriber is a trio operation.
"""

from __future__ import annotations

import collections
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import trio

__all__ = ["Event", "EventBus", "EventKind", "Subscription", "result_event"]


class EventKind:
    """The event names in use (a plain string on the wire, so plugins may add their own)."""

    RESULT: Final = "result"
    """A message finished routing: ``data`` is ``Result.to_wire()``."""
    STARTED: Final = "plugin.started"
    CRASHED: Final = "plugin.crashed"
    RESTARTED: Final = "plugin.restarted"
    QUARANTINED: Final = "plugin.quarantined"
    STOPPED: Final = "plugin.stopped"
    ADDED: Final = "plugin.added"
    REMOVED: Final = "plugin.removed"
    REORDERED: Final = "pipeline.reordered"
    LAGGED: Final = "lagged"
    """Synthesised for one subscriber: ``data["missed"]`` events were lost to it."""


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened: a kind, the plugin it concerns (if any), and details."""

    kind: str
    plugin: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    """Seconds since the epoch, when the event was made."""

    def to_wire(self) -> dict[str, Any]:
        """The msgpack/JSON shape: ``{"event", "plugin", "time", **data}``."""
        wire: dict[str, Any] = dict(self.data)
        wire["event"] = self.kind
        wire["plugin"] = self.plugin
        wire["time"] = self.time
        return wire


class _HasWire(Protocol):
    def to_wire(self) -> dict[str, Any]: ...


def result_event(result: _HasWire) -> Event:
    """The ``result`` event for a routed :class:`~router.result.Result`."""
    return Event(EventKind.RESULT, None, result.to_wire())


class Subscription:
    """One watcher's queue of events; iterate it with ``async for``."""

    def __init__(self, bus: EventBus, buffer: int) -> None:
        if buffer < 1:
            raise ValueError(f"a subscription buffer must hold at least 1 event, got {buffer}")
        self._bus = bus
        self._queue: collections.deque[Event] = collections.deque()
        self._buffer = buffer
        self._missed = 0
        self._lot = trio.lowlevel.ParkingLot()
        self.closed = False
        """True once unsubscribed; iteration then ends."""

    def _push(self, event: Event) -> None:
        if len(self._queue) >= self._buffer:
            # Drop the oldest: a watcher cares more about what is happening now.
            self._queue.popleft()
            self._missed += 1
        self._queue.append(event)
        self._lot.unpark_all()

    def close(self) -> None:
        """End this subscription: iteration stops once the queued events are read."""
        self.closed = True
        self._lot.unpark_all()

    @property
    def missed(self) -> int:
        """Events lost so far because this subscriber fell behind."""
        return self._missed

    def get_nowait(self) -> Event | None:
        """The next event, or None when none is queued (a LAGGED event comes first if due)."""
        if self._missed and self._queue:
            missed, self._missed = self._missed, 0
            return Event(EventKind.LAGGED, data={"missed": missed})
        return self._queue.popleft() if self._queue else None

    async def get(self) -> Event:
        """Wait for the next event; raise ``trio.EndOfChannel`` once unsubscribed."""
        while True:
            event = self.get_nowait()
            if event is not None:
                await trio.lowlevel.checkpoint()
                return event
            if self.closed:
                raise trio.EndOfChannel("unsubscribed from the event bus")
            await self._lot.park()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            try:
                yield await self.get()
            except trio.EndOfChannel:
                return


class EventBus:
    """Fan-out of events to any number of subscribers; publishing never blocks."""

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self.published = 0
        """Events published since the bus was made."""

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber (from the trio thread)."""
        self.published += 1
        for sub in self._subscribers:
            sub._push(event)

    def publish_result(self, wire: dict[str, Any]) -> None:
        """Publish a ``result`` event for ``Result.to_wire()`` (made only if anyone listens).

        routerd publishes one per message it routes; with no watcher, making the
        event would be most of the cost.
        """
        if self._subscribers:
            self.publish(Event(EventKind.RESULT, None, wire))
        else:
            self.published += 1

    def emit(self, kind: str, plugin: str | None = None, /, **data: Any) -> None:
        """Shorthand: ``publish(Event(kind, plugin, data))``."""
        self.publish(Event(kind, plugin, data))

    @contextmanager
    def subscribe(self, *, buffer: int = 1024) -> Iterator[Subscription]:
        """Receive every event published while the block runs (at most ``buffer`` queued)."""
        sub = Subscription(self, buffer)
        self._subscribers.append(sub)
        try:
            yield sub
        finally:
            self._subscribers.remove(sub)
            sub.close()
