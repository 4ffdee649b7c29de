"""The event bus: fan-out to every subscriber, never blocking, telling laggards what they lost."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from router.events import Event, EventBus, EventKind


async def test_every_subscriber_gets_every_event_in_order() -> None:
    bus = EventBus()
    with bus.subscribe() as a, bus.subscribe() as b:
        bus.emit(EventKind.STARTED, "p1", pid=5)
        bus.emit(EventKind.CRASHED, "p1", status=1)
        for sub in (a, b):
            first = await sub.get()
            second = await sub.get()
            assert (first.kind, first.plugin, first.data) == ("plugin.started", "p1", {"pid": 5})
            assert second.kind == "plugin.crashed"
    assert bus.subscribers == 0


async def test_a_waiting_subscriber_wakes_on_publish() -> None:
    bus = EventBus()
    got: list[Event] = []
    with bus.subscribe() as sub:
        async with trio.open_nursery() as nursery:

            async def wait_one() -> None:
                got.append(await sub.get())

            nursery.start_soon(wait_one)
            await trio.testing.wait_all_tasks_blocked()
            bus.emit(EventKind.RESULT, None, status="delivered")
    assert [e.data for e in got] == [{"status": "delivered"}]


async def test_unsubscribing_ends_iteration() -> None:
    bus = EventBus()
    seen: list[str] = []
    with bus.subscribe() as sub:
        bus.emit("x")
        async with trio.open_nursery() as nursery:

            async def drain() -> None:
                async for event in sub:
                    seen.append(event.kind)

            nursery.start_soon(drain)
            await trio.testing.wait_all_tasks_blocked()
            sub.close()
    assert seen == ["x"]
    with pytest.raises(trio.EndOfChannel):
        await sub.get()


def test_events_published_before_subscribing_are_not_seen() -> None:
    bus = EventBus()
    bus.emit("early")
    with bus.subscribe() as sub:
        assert sub.get_nowait() is None
    assert bus.published == 1


def test_event_wire_shape() -> None:
    event = Event("plugin.crashed", "p", {"status": 1}, time=12.5)
    assert event.to_wire() == {"event": "plugin.crashed", "plugin": "p", "time": 12.5, "status": 1}


def test_zero_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"), EventBus().subscribe(buffer=0):
        pass


@settings(max_examples=100)
@given(buffer=st.integers(1, 8), count=st.integers(0, 40))
def test_a_slow_subscriber_keeps_the_newest_events_and_counts_the_rest(
    buffer: int, count: int
) -> None:
    bus = EventBus()
    with bus.subscribe(buffer=buffer) as sub:
        for i in range(count):
            bus.emit("n", None, i=i)
        drained: list[Event] = []
        while (event := sub.get_nowait()) is not None:
            drained.append(event)
    lost = max(0, count - buffer)
    kept = [e.data["i"] for e in drained if e.kind == "n"]
    assert kept == list(range(lost, count))
    lagged = [e.data["missed"] for e in drained if e.kind == EventKind.LAGGED]
    assert lagged == ([lost] if lost else [])
    if lost:
        assert drained[0].kind == EventKind.LAGGED
