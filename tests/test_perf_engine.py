"""Engine behaviours that the fast paths must keep: concurrent start-up, one shared
timeout scope per run of inline calls, and the hand-over of pulled inputs to idle
workers (results still in input order, one each)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import trio
import trio.testing
from fake_plugins import HANG, Delay, ScriptedHandle
from hypothesis import given, settings
from hypothesis import strategies as st

import router
from plugin_sdk import Message, OnError, Reply, passthrough, replace
from router import Status


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def _items(messages: Sequence[Message]) -> AsyncIterator[Message]:
    for message in messages:
        yield message


class WaitsForPeer(ScriptedHandle):
    """start() returns only once the other handle's start() has begun."""

    def __init__(self, name: str, mine: trio.Event, theirs: trio.Event, log: list[str]) -> None:
        super().__init__(name, log=log)
        self.mine = mine
        self.theirs = theirs

    async def start(self) -> None:
        await super().start()
        self.mine.set()
        await self.theirs.wait()


async def test_plugins_start_concurrently_but_begin_in_registration_order(
    autojump_clock: Any,
) -> None:
    log: list[str] = []
    a_started, b_started = trio.Event(), trio.Event()
    handles = [
        WaitsForPeer("a", a_started, b_started, log),
        WaitsForPeer("b", b_started, a_started, log),
    ]
    with trio.fail_after(5):  # one after the other, a would wait for b forever
        async with router.open(handles):
            assert log == ["start a", "start b"]


class FailsToStart(ScriptedHandle):
    async def start(self) -> None:
        await trio.sleep(1)
        raise RuntimeError(f"{self.info.name} cannot start")


async def test_when_several_starts_fail_the_first_in_order_is_raised_and_the_rest_noted(
    autojump_clock: Any,
) -> None:
    log: list[str] = []
    handles = [
        ScriptedHandle("ok", log=log),
        FailsToStart("first"),
        FailsToStart("second"),
    ]
    with pytest.raises(RuntimeError, match="first cannot start") as info:
        async with router.open(handles):
            pass  # pragma: no cover
    assert any("second cannot start" in note for note in info.value.__notes__)
    assert log == ["start ok", "stop ok"]


class Overruns(ScriptedHandle):
    """Moves the clock past its own timeout without ever yielding, then answers."""

    def __init__(self, name: str, clock: trio.testing.MockClock) -> None:
        super().__init__(name, timeout=1.0)
        self.clock = clock

    async def call(self, message: Message) -> Reply:
        self.clock.jump(5)
        return passthrough()


async def test_a_call_that_overran_without_yielding_is_not_blamed_on_the_next_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow_but_done = Overruns("a", autojump_clock)
    # b yields twice within its own timeout: an old deadline must not cancel it.
    b = ScriptedHandle("b", script={"t": replace(Message("t", "from b"))}, timeout=1.0)
    async with router.open([slow_but_done, b]) as r:
        result = await r.route(Message("t", "x"))
    assert result.status is Status.DELIVERED
    assert [hop.verdict for hop in result.trace] == ["pass", "replace"]


async def test_a_timeout_mid_chain_is_the_hanging_plugins_and_the_chain_goes_on(
    autojump_clock: Any,
) -> None:
    first = ScriptedHandle("first")
    hangs = ScriptedHandle("hangs", default=HANG, timeout=2.0, on_error=OnError.SKIP)
    last = ScriptedHandle("last", script={"t": replace(Message("t", "done"))}, timeout=1.0)
    async with router.open([first, hangs, last]) as r:
        start = trio.current_time()
        result = await r.route(Message("t", "x"))
        took = trio.current_time() - start
    assert result.status is Status.DELIVERED
    assert [m.body for m in result.messages] == ["done"]
    assert [(h.plugin, h.verdict) for h in result.trace] == [
        ("first", "pass"),
        ("hangs", "skip"),
        ("last", "replace"),
    ]
    assert "timed out after 2s" in result.trace[1].reason
    assert took == pytest.approx(2.0)
    assert r.stats()["hangs"].timed_out == 1


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=40),
    window=st.integers(min_value=1, max_value=8),
    concurrency=st.integers(min_value=1, max_value=4),
    delays=st.lists(st.sampled_from([0.0, 0.1, 0.3]), min_size=1, max_size=5),
)
def test_a_stream_yields_one_result_per_input_in_order_whatever_the_timing(
    n: int, window: int, concurrency: int, delays: list[float]
) -> None:
    async def scenario() -> list[Any]:
        # Each input's call takes its own time, so calls finish out of input order.
        script = {
            ("t", f"in{i}"): Delay(delays[i % len(delays)], replace(Message("t", f"in{i}!")))
            for i in range(n)
        }
        plugin = ScriptedHandle("p", script=script, concurrency=concurrency)
        inputs = [Message("t", f"in{i}") for i in range(n)]
        async with router.open([plugin], max_in_flight=window) as r:
            out = [res async for res in r.route_stream(_items(inputs))]
        assert plugin.max_active <= concurrency
        return [res.messages[0].body for res in out]

    clock = trio.testing.MockClock(autojump_threshold=0)
    assert trio.run(scenario, clock=clock) == [f"in{i}!" for i in range(n)]
