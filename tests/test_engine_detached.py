"""Stream inputs waiting on a submitting plugin detach: same results, no task per input."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
import trio
import trio.testing
from fake_plugins import Delay, ModelHandle, ScriptedHandle
from hypothesis import given, settings
from hypothesis import strategies as st
from routing_model import (
    TYPES,
    ScriptedPlugin,
    assert_agrees,
    model_route,
    observed,
    scripted_plugins,
)
from submit_handles import BareSyncHandle, Done, SubmitHandle, SyncHandle

import router
from plugin_sdk import Headers, Message, OnError, PluginInfo, Reply
from router.handle import PluginHandle
from router.result import Result, Status


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


KINDS = ("submit", "submit-reversed", "awaited", "sync", "bare")


def _handle(plugin: ScriptedPlugin, kind: str) -> PluginHandle:
    if kind == "sync":
        return SyncHandle(plugin)
    if kind == "bare":
        return BareSyncHandle(plugin)
    if kind == "awaited":
        return ModelHandle(plugin)
    return SubmitHandle(plugin, reverse=kind == "submit-reversed")


async def _items(messages: Sequence[Message]) -> AsyncIterator[Message]:
    for message in messages:
        yield message


async def _stream(
    handles: Sequence[PluginHandle], messages: Sequence[Message], max_in_flight: int = 64
) -> list[Result]:
    async with router.open(handles, hop_limit=4, max_messages=30, max_in_flight=max_in_flight) as r:
        return [result async for result in r.route_stream(_items(messages))]


@settings(max_examples=80, deadline=None)
@given(
    scripted_plugins(),
    st.lists(st.sampled_from(KINDS), min_size=5, max_size=5),
    st.lists(st.sampled_from(TYPES), min_size=1, max_size=8),
    st.integers(1, 5),
)
def test_streamed_results_match_the_model_whatever_kind_each_plugin_is(
    plugins: list[ScriptedPlugin], kinds: list[str], types: list[str], max_in_flight: int
) -> None:
    messages = [Message(t, f"in{i}") for i, t in enumerate(types)]
    handles = [_handle(p, k) for p, k in zip(plugins, kinds, strict=False)]
    results = trio.run(_stream, handles, messages, max_in_flight)
    assert [r.input_id for r in results] == [m.id for m in messages]
    for message, result in zip(messages, results, strict=True):
        want = model_route(plugins, message, hop_limit=4, max_messages=30)
        assert_agrees(observed(result), want, exact_failure=False)


async def _one_at_a_time(
    handles: Sequence[PluginHandle], messages: Sequence[Message]
) -> list[Result]:
    async with router.open(handles, hop_limit=4, max_messages=30) as r:
        return [await r.route(message) for message in messages]


@settings(max_examples=80, deadline=None)
@given(
    scripted_plugins(),
    st.lists(st.sampled_from(KINDS), min_size=5, max_size=5),
    st.lists(st.sampled_from(TYPES), min_size=1, max_size=4),
)
def test_routed_one_at_a_time_results_match_the_model_whatever_kind_each_plugin_is(
    plugins: list[ScriptedPlugin], kinds: list[str], types: list[str]
) -> None:
    # route() walks an input straight while it can, then hands it to the general path.
    messages = [Message(t, f"in{i}") for i, t in enumerate(types)]
    handles = [_handle(p, k) for p, k in zip(plugins, kinds, strict=False)]
    results = trio.run(_one_at_a_time, handles, messages)
    for message, result in zip(messages, results, strict=True):
        assert result.input_id == message.id
        want = model_route(plugins, message, hop_limit=4, max_messages=30)
        assert_agrees(observed(result), want, exact_failure=False)


def _echo(name: str, **info: object) -> ScriptedPlugin:
    return ScriptedPlugin(PluginInfo(name, ("a.x",), **info))  # type: ignore[arg-type]


class _TaskCounter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.spawned = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1


async def test_inputs_waiting_on_a_submitting_plugin_spawn_no_task_each() -> None:
    plugins: list[PluginHandle] = [
        SubmitHandle(_echo("p1")),
        SyncHandle(_echo("p2")),
        SubmitHandle(_echo("p3")),
    ]
    counter = _TaskCounter()
    async with router.open(plugins, max_in_flight=64) as r:
        trio.lowlevel.add_instrument(counter)
        try:
            results = [res async for res in r.route_stream(_items(_messages(500)))]
        finally:
            trio.lowlevel.remove_instrument(counter)
    assert [res.status for res in results] == [Status.DELIVERED] * 500
    assert [hop.plugin for hop in results[0].trace] == ["p1", "p2", "p3"]
    # The stream's own task and one worker: straight inputs never make it wait, so
    # the pool never grows (it used to start max_in_flight workers up front).
    assert counter.spawned == 2


async def test_the_worker_pool_grows_to_as_many_inputs_as_must_be_awaited_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # An awaited plugin (call() only) holds a worker per input; ten places, ten at once.
    slow = ScriptedHandle("slow", default=Delay(1), concurrency=10)
    counter = _TaskCounter()
    async with router.open([slow], max_in_flight=10) as r:
        trio.lowlevel.add_instrument(counter)
        try:
            start = trio.current_time()
            results = [res async for res in r.route_stream(_items(_messages(30)))]
            took = trio.current_time() - start
        finally:
            trio.lowlevel.remove_instrument(counter)
    assert [res.status for res in results] == [Status.DELIVERED] * 30
    assert slow.max_active == 10
    assert took == pytest.approx(3.0)
    assert counter.spawned <= 1 + 10  # the stream's task and at most max_in_flight workers


def _messages(count: int, **headers: object) -> list[Message]:
    return [Message("a.x", i, id=f"m{i}", headers=dict(headers)) for i in range(count)]


async def test_a_concurrency_one_submitting_plugin_gets_inputs_in_order_one_at_a_time() -> None:
    first = SubmitHandle(_echo("first", concurrency=1), reverse=True)
    second = SubmitHandle(_echo("second", concurrency=1))
    results = await _stream([first, second], _messages(50))
    assert all(res.status is Status.DELIVERED for res in results)
    assert first.seen == second.seen == [f"m{i}" for i in range(50)]
    assert first.most_in_flight == second.most_in_flight == 1


async def test_a_submitted_call_past_its_timeout_fails_the_input_and_counts_a_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = SubmitHandle(_echo("slow", timeout=2.0), held=True)
    async with router.open([slow]) as r:
        results = [res async for res in r.route_stream(_items(_messages(3)))]
        stats = r.stats()["slow"]
    assert [res.status for res in results] == [Status.FAILED] * 3
    assert all(res.reason == "timed out after 2s" for res in results)
    assert stats.timed_out == 3 and slow.in_flight == 0


async def test_a_submitted_call_stops_at_the_message_deadline_whatever_the_policy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = SubmitHandle(_echo("slow", timeout=60.0, on_error=OnError.SKIP), held=True)
    soon = _messages(2, **{Headers.DEADLINE: time.time() + 5})
    gone = _messages(1, **{Headers.DEADLINE: time.time() - 1})
    async with router.open([slow]) as r:
        results = [res async for res in r.route_stream(_items(soon + gone))]
    assert [(res.status, res.by) for res in results] == [(Status.FAILED, "slow")] * 3
    assert all(res.reason == "the message's deadline passed" for res in results)
    assert [h.verdict for h in results[0].trace] == ["timeout"]
    assert 4 < results[0].trace[0].duration < 6
    assert slow.submitted == 2  # the one already past its deadline was never handed over


async def test_a_consumer_leaving_early_leaves_no_input_behind() -> None:
    held = SubmitHandle(_echo("held", concurrency=8), held=True)
    async with router.open([held], max_in_flight=8) as r:
        async with contextlib.aclosing(r.route_stream(_items(_messages(100)))) as results:
            with trio.move_on_after(0.05):
                async for _ in results:
                    pytest.fail("nothing can be delivered while answers are held")
        assert held.submitted == 8
        held.release()
        await trio.testing.wait_all_tasks_blocked()
        assert held.in_flight == 0
        assert r._in_flight.used == 0  # every in-flight place came back
        result = await r.route(Message("a.x", "after"))
    assert result.status is Status.DELIVERED


async def test_removing_a_plugin_waits_for_detached_inputs_still_using_it() -> None:
    held = SubmitHandle(_echo("held", concurrency=4), held=True)
    async with router.open([held], max_in_flight=4) as r:
        out: list[Result] = []

        async def consume() -> None:
            out.extend([res async for res in r.route_stream(_items(_messages(4)))])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()
            assert held.submitted == 4
            nursery.start_soon(r.remove, "held")
            await trio.testing.wait_all_tasks_blocked()
            assert held._stopped is False  # still in use by the detached inputs
            held.release()
    assert [res.status for res in out] == [Status.DELIVERED] * 4
    assert held._stopped


async def test_stopping_the_router_under_detached_inputs_ends_the_stream() -> None:
    held = SubmitHandle(_echo("held"), held=True)
    got: list[Result] = []
    with trio.move_on_after(5):
        async with router.open([held], max_in_flight=4) as r, trio.open_nursery() as nursery:

            async def consume() -> None:
                got.extend([res async for res in r.route_stream(_items(_messages(4)))])

            nursery.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert held._stopped and held.in_flight == 0
    assert got == []


async def test_route_waits_on_a_submitted_call_and_its_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    quick = SubmitHandle(_echo("quick"))
    slow = SubmitHandle(ScriptedPlugin(PluginInfo("slow", ("b.x",), timeout=3.0)), held=True)
    async with router.open([quick, slow]) as r:
        delivered = await r.route(Message("a.x", "x"))
        timed_out = await r.route(Message("b.x", "y"))
    assert delivered.status is Status.DELIVERED and quick.submitted == 1
    assert (timed_out.status, timed_out.reason) == (Status.FAILED, "timed out after 3s")
    assert timed_out.trace[0].duration == pytest.approx(3.0)


async def test_a_cancelled_route_drops_the_late_answer_and_frees_the_plugins_turn() -> None:
    held = SubmitHandle(_echo("held"), held=True)  # concurrency 1
    async with router.open([held]) as r:
        with trio.move_on_after(0.01):
            await r.route(Message("a.x", "given up", id="given-up"))
        assert held.abandoned == ["given-up"]  # the handle was told at once
        assert held.in_flight == 1
        held.release()
        result = await r.route(Message("a.x", "next"))
    assert result.status is Status.DELIVERED and held.in_flight == 0
    assert held.seen[-1] == result.input_id
    assert held.abandoned == ["given-up"]  # an answered call is not abandoned


async def test_stream_inputs_and_answered_routes_abandon_nothing() -> None:
    handle = SubmitHandle(_echo("echo", concurrency=4))
    async with router.open([handle]) as r:
        results = [res async for res in r.route_stream(_items(_messages(8)))]
        results.append(await r.route(Message("a.x", "alone")))
    assert [res.status for res in results] == [Status.DELIVERED] * 9
    assert handle.abandoned == []


class _AsyncAfterAll(SyncHandle):
    """``call_now`` hands back an awaitable: an async handler behind a sync-looking call."""

    def call_now(self, message: Message) -> Reply:
        async def later() -> Reply:
            await trio.sleep(1)
            return SyncHandle.call_now(self, message)

        return later()  # type: ignore[return-value]


async def test_a_lone_next_call_that_turns_out_async_is_awaited_under_its_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    first = SyncHandle(_echo("first"))
    slow = _AsyncAfterAll(_echo("slow", timeout=0.5))
    fine = _AsyncAfterAll(_echo("fine", timeout=5.0))
    after = SyncHandle(_echo("after", concurrency=1))
    async with router.open([first, slow], max_in_flight=4) as r:
        timed_out = [res async for res in r.route_stream(_items(_messages(3)))]
    async with router.open([first, fine, after], max_in_flight=4) as r:
        delivered = [res async for res in r.route_stream(_items(_messages(3)))]
        one = await r.route(Message("a.x", "one"))
    assert [res.reason for res in timed_out] == ["timed out after 0.5s"] * 3
    assert [res.status for res in delivered] == [Status.DELIVERED] * 3
    assert [h.plugin for h in one.trace] == ["first", "fine", "after"]
    assert after.seen == [*(f"m{i}" for i in range(3)), one.input_id]


class _SubmitRaises(SubmitHandle):
    """A buggy handle: ``submit`` raises for odd bodies instead of starting the call."""

    def submit(self, message: Message, expires: float, done: Done) -> Callable[[], None]:
        if message.body % 2:
            raise RuntimeError(f"submit broke on {message.id}")
        return super().submit(message, expires, done)


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("deadline", [False, True], ids=["straight", "general"])
async def test_a_submit_that_raises_is_a_failed_call_and_frees_its_place(
    concurrency: int, deadline: bool
) -> None:
    # Streamed and one at a time, straight or (with a deadline header) on the general
    # path: every input still gets its one result, the place at the plugin's gate is
    # given back, and the stream ends (nothing left detached).
    headers = {Headers.DEADLINE: time.time() + 3600} if deadline else {}
    failing = _SubmitRaises(_echo("failing", concurrency=concurrency))
    skipping = _SubmitRaises(_echo("skipping", concurrency=concurrency, on_error=OnError.SKIP))
    for handle in (failing, skipping):
        async with router.open([handle], max_in_flight=8) as r:
            with trio.fail_after(5):
                inputs = _messages(6, **headers)
                streamed = [res async for res in r.route_stream(_items(inputs))]
                one = [await r.route(m) for m in _messages(2, **headers)]
        for result in [*streamed, *one]:
            odd = int(result.input_id[1:]) % 2
            if not odd:
                assert result.status is Status.DELIVERED
            elif handle is failing:
                assert result.status is Status.FAILED
                assert result.reason == f"RuntimeError: submit broke on {result.input_id}"
            else:
                assert result.status is Status.DELIVERED
                assert [h.verdict for h in result.trace] == ["skip"]
        assert r.stats()[handle.info.name].handled == 8
