"""The trio engine: ordering, bounds, timeouts, policies, lifecycle."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import pytest
import trio
import trio.testing
from fake_plugins import HANG, Delay, ScriptedHandle, bodies

import router
from plugin_sdk import (
    Message,
    OnError,
    Plugin,
    PluginInfo,
    Reply,
    drop,
    emit,
    error,
    handles,
    replace,
)
from router import PlanError, Result, Status


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def _items(messages: Sequence[Message | Result]) -> AsyncIterator[Message | Result]:
    for message in messages:
        yield message


def _inputs(n: int, mtype: str = "t") -> list[Message]:
    return [Message(mtype, f"in{i}") for i in range(n)]


async def test_results_come_out_in_input_order_when_calls_finish_out_of_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    delays = {("t", "in0"): Delay(5), ("t", "in1"): Delay(1), ("t", "in2"): Delay(3)}
    slow = ScriptedHandle("slow", script=delays, concurrency=3)
    done_order: list[str] = []

    def note(message: Message) -> Reply:
        done_order.append(message.body)
        return emit()

    tail = ScriptedHandle("tail", default=note)
    messages = _inputs(3)
    async with router.open([slow, tail]) as r:
        results = [res async for res in r.route_stream(_items(messages))]
    assert done_order == ["in1", "in2", "in0"]
    assert [res.input_id for res in results] == [m.id for m in messages]
    assert all(res.status == Status.DELIVERED for res in results)


async def test_no_more_than_max_in_flight_inputs_are_routed_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wide = ScriptedHandle("wide", default=Delay(1), concurrency=100)
    async with router.open([wide], max_in_flight=3) as r:
        results = [res async for res in r.route_stream(_items(_inputs(10)))]
    assert len(results) == 10
    assert wide.max_active == 3


async def test_route_stream_stops_pulling_input_while_max_in_flight_are_unconsumed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pulled = 0
    consumed = 0
    gaps: list[int] = []

    async def counting() -> AsyncIterator[Message]:
        nonlocal pulled
        for message in _inputs(12):
            pulled += 1
            gaps.append(pulled - consumed)
            yield message

    async with router.open([ScriptedHandle("p")], max_in_flight=4) as r:
        async for _ in r.route_stream(counting()):
            consumed += 1
            await trio.sleep(1)  # a slow consumer
    assert consumed == 12
    assert max(gaps) == 4


async def test_a_concurrency_one_plugin_sees_inputs_in_input_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Later inputs are faster at the first plugin; order must hold at both plugins.
    script = {("t", f"in{i}"): Delay(10 - i) for i in range(10)}
    first = ScriptedHandle("first", script=script, timeout=60)
    second = ScriptedHandle("second", script={("t", "in3"): Delay(20)}, timeout=60)
    messages = _inputs(10)
    async with router.open([first, second], max_in_flight=8) as r:
        results = [res async for res in r.route_stream(_items(messages))]
    assert bodies(first.calls) == bodies(messages)
    assert bodies(second.calls) == bodies(messages)
    assert first.max_active == second.max_active == 1
    assert [res.input_id for res in results] == [m.id for m in messages]


async def test_a_plugin_with_concurrency_n_handles_at_most_n_calls_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    two = ScriptedHandle("two", default=Delay(1), concurrency=2)
    async with router.open([two], max_in_flight=10) as r:
        results = [res async for res in r.route_stream(_items(_inputs(7)))]
    assert len(results) == 7
    assert two.max_active == 2


async def test_a_call_that_times_out_fails_the_input_and_the_plugin_stays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hanging = ScriptedHandle("hanging", script={("t", "stuck"): HANG}, timeout=2)
    async with router.open([hanging]) as r:
        stuck = await r.route(Message("t", "stuck"))
        fine = await r.route(Message("t", "fine"))
        assert "hanging" in r.plan
        assert r.stats()["hanging"].timed_out == 1
    assert stuck.status == Status.FAILED
    assert (stuck.by, stuck.reason) == ("hanging", "timed out after 2s")
    assert [(h.verdict, h.duration) for h in stuck.trace] == [("timeout", 2.0)]
    assert fine.status == Status.DELIVERED


async def test_a_timed_out_call_is_retried_under_the_retry_policy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = ScriptedHandle(
        "flaky",
        script={"t": [HANG, replace(Message("t", "second try"))]},
        on_error=OnError.RETRY,
        timeout=1.5,
    )
    async with router.open([flaky]) as r:
        result = await r.route(Message("t", "x"))
    assert result.status == Status.DELIVERED
    assert bodies(result.messages) == ["second try"]
    assert [h.verdict for h in result.trace] == ["retry", "replace"]
    assert result.trace[0].reason == "timed out after 1.5s"


async def test_retry_calls_again_up_to_max_attempts_then_fails() -> None:
    flaky = ScriptedHandle(
        "flaky",
        ["t"],
        {"t": [RuntimeError("boom"), error("nope"), replace(Message("t", "ok"))]},
        on_error=OnError.RETRY,
        max_attempts=3,
    )
    broken = ScriptedHandle(
        "broken", ["u"], {"u": error("nope")}, on_error=OnError.RETRY, max_attempts=2
    )
    async with router.open([flaky, broken]) as r:
        ok = await r.route(Message("t", "x"))
        bad = await r.route(Message("u", "x"))
    assert ok.status == Status.DELIVERED
    assert [(h.verdict, h.reason) for h in ok.trace] == [
        ("retry", "RuntimeError: boom"),
        ("retry", "nope"),
        ("replace", ""),
    ]
    assert len(flaky.calls) == 3
    assert bad.status == Status.FAILED
    assert (bad.by, bad.reason) == ("broken", "nope (gave up after 2 attempts)")
    assert len(broken.calls) == 2


async def test_an_exception_in_a_plugin_fails_the_input_naming_plugin_and_exception() -> None:
    raising = ScriptedHandle("raising", default=ValueError("bad body"))
    async with router.open([raising]) as r:
        result = await r.route(Message("t", "x"))
    assert (result.status, result.by, result.reason) == (
        Status.FAILED,
        "raising",
        "ValueError: bad body",
    )
    assert result.messages == ()


async def test_skip_policy_passes_the_message_on_and_says_so_in_the_trace() -> None:
    skipping = ScriptedHandle("skipping", default=error("meh"), on_error=OnError.SKIP)
    after = ScriptedHandle("after")
    async with router.open([skipping, after]) as r:
        result = await r.route(Message("t", "x"))
    assert result.status == Status.DELIVERED
    assert [(h.plugin, h.verdict, h.reason) for h in result.trace] == [
        ("skipping", "skip", "meh"),
        ("after", "pass", ""),
    ]
    assert bodies(after.calls) == ["x"]


async def test_fan_out_branches_run_concurrently_and_outputs_keep_reply_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fan = ScriptedHandle("fan", script={"t": emit(Message("t", "slow"), Message("t", "fast"))})
    work = ScriptedHandle(
        "work", script={("t", "slow"): Delay(5), ("t", "fast"): Delay(1)}, concurrency=2
    )
    async with router.open([fan, work]) as r:
        start = trio.current_time()
        result = await r.route(Message("t", "x"))
        took = trio.current_time() - start
    assert bodies(result.messages) == ["slow", "fast"]
    assert work.max_active == 2
    assert took == 5


async def test_a_failure_cancels_sibling_branches_that_can_no_longer_matter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fan = ScriptedHandle("fan", script={"t": emit(Message("t", "fails"), Message("t", "hangs"))})
    work = ScriptedHandle(
        "work", script={("t", "fails"): error("no"), ("t", "hangs"): HANG}, concurrency=2
    )
    async with router.open([fan, work]) as r:
        result = await r.route(Message("t", "x"))
    assert (result.status, result.by, result.reason) == (Status.FAILED, "work", "no")
    assert work.active == 0


async def test_a_type_no_plugin_accepts_is_delivered_unchanged_with_an_empty_trace() -> None:
    async with router.open([ScriptedHandle("only-a", accepts=["a.*"])]) as r:
        message = Message("b.x", {"k": 1})
        result = await r.route(message)
    assert result.status == Status.DELIVERED
    assert result.messages == (message,)
    assert result.trace == ()


async def test_route_stream_passes_already_failed_inputs_through_in_their_place() -> None:
    failed = Result.failed_input("line-2", "line 2: not JSON")
    messages: list[Message | Result] = [Message("t", "a"), failed, Message("t", "b")]
    async with router.open([ScriptedHandle("p")]) as r:
        results = [res async for res in r.route_stream(_items(messages))]
    assert [res.status for res in results] == ["delivered", "failed", "delivered"]
    assert results[1] is failed


async def test_an_input_stream_error_comes_out_after_the_results_before_it() -> None:
    async def broken() -> AsyncIterator[Message]:
        yield Message("t", "a")
        yield Message("t", "b")
        raise OSError("stdin went away")

    seen: list[Result] = []
    async with router.open([ScriptedHandle("p")]) as r:
        with pytest.raises(OSError, match="stdin went away"):
            async for res in r.route_stream(broken()):
                seen.append(res)
    assert [bodies(res.messages) for res in seen] == [["a"], ["b"]]


async def test_stats_count_calls_drops_failures_and_latency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plugin = ScriptedHandle(
        "p",
        script={("t", "drop"): drop("no"), ("t", "fail"): error("x"), ("t", "slow"): Delay(2)},
    )
    async with router.open([plugin]) as r:
        for body in ("drop", "fail", "slow", "ok"):
            await r.route(Message("t", body))
        stats = r.stats()["p"]
    assert (stats.handled, stats.dropped, stats.failed, stats.timed_out) == (4, 1, 1, 0)
    assert stats.p50 == 0
    assert stats.p99 == 2
    assert stats.to_wire()["handled"] == 4


# -- lifecycle ---------------------------------------------------------------


async def test_open_starts_plugins_in_order_and_stops_them_in_reverse() -> None:
    log: list[str] = []
    handles = [ScriptedHandle(n, log=log) for n in ("a", "b", "c")]
    async with router.open(handles):
        assert log == ["start a", "start b", "start c"]
    assert log[3:] == ["stop c", "stop b", "stop a"]


async def test_open_refuses_duplicate_names_before_starting_anything() -> None:
    log: list[str] = []
    first, second = ScriptedHandle("same", log=log), ScriptedHandle("same", log=log)
    with pytest.raises(PlanError, match=r"'same'.*ScriptedHandle.*ScriptedHandle"):
        async with router.open([first, second]):
            pass  # pragma: no cover
    assert log == []


async def test_a_failing_start_stops_the_plugins_already_started() -> None:
    log: list[str] = []

    class FailsToStart(ScriptedHandle):
        async def start(self) -> None:
            raise RuntimeError("cannot start")

    handles = [ScriptedHandle("a", log=log), ScriptedHandle("b", log=log), FailsToStart("c")]
    with pytest.raises(RuntimeError, match="cannot start"):
        async with router.open(handles):
            pass  # pragma: no cover
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_an_error_in_the_body_comes_out_as_itself_and_plugins_still_stop() -> None:
    handle = ScriptedHandle("p")
    with pytest.raises(KeyError, match="mine"):
        async with router.open([handle]):
            raise KeyError("mine")
    assert handle.stopped


async def test_open_wraps_sdk_plugin_objects_in_process_handles() -> None:
    class Upper:
        """The plugin_sdk plugin API, duck-typed."""

        def __init__(self) -> None:
            self.events: list[str] = []

        def info(self) -> PluginInfo:
            return PluginInfo("upper", ("text",))

        async def start(self) -> None:
            self.events.append("start")

        async def handle(self, message: Message) -> Reply:
            return replace(Message("text", str(message.body).upper()))

        async def stop(self) -> None:
            self.events.append("stop")

    plugin = Upper()
    async with router.open(plugins=[plugin]) as r:
        assert isinstance(r.handles["upper"], router.InProcessHandle)
        result = await r.route(Message("text", "hi"))
    assert bodies(result.messages) == ["HI"]
    assert plugin.events == ["start", "stop"]


async def test_routing_needs_a_running_router() -> None:
    r = router.Router([ScriptedHandle("p")])
    with pytest.raises(RuntimeError, match="not running"):
        await r.route(Message("t"))


# -- editing the plugin set while messages flow --------------------------------


async def test_removing_a_plugin_lets_messages_in_flight_finish_with_their_plan(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    first = ScriptedHandle("first", script={("t", "early"): Delay(5)}, log=log)
    second = ScriptedHandle("second", log=log)
    async with router.open([first, second]) as r:
        results: list[Result] = []

        async def route_early() -> None:
            results.append(await r.route(Message("t", "early")))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(route_early)
            await trio.sleep(1)  # "early" is now inside "first"
            await r.remove("second")
            log.append("removed")
        late = await r.route(Message("t", "late"))
        assert r.plan.names == ("first",)
    assert [h.plugin for h in results[0].trace] == ["first", "second"]
    assert [h.plugin for h in late.trace] == ["first"]
    # "second" handled the early message before it was stopped.
    assert log.index("call second t early") < log.index("stop second") < log.index("removed")


async def test_adding_a_plugin_affects_only_messages_that_start_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    first = ScriptedHandle("first", script={("t", "early"): Delay(5)})
    async with router.open([first]) as r:
        results: list[Result] = []

        async def route_early() -> None:
            results.append(await r.route(Message("t", "early")))

        added = ScriptedHandle("added")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(route_early)
            await trio.sleep(1)
            await r.add(added, position=0)
            assert added.started
        late = await r.route(Message("t", "late"))
        assert r.plan.names == ("added", "first")
    assert [h.plugin for h in results[0].trace] == ["first"]
    assert [h.plugin for h in late.trace] == ["added", "first"]
    assert added.stopped


async def test_adding_a_duplicate_name_is_refused_without_starting_it() -> None:
    async with router.open([ScriptedHandle("p")]) as r:
        dup = ScriptedHandle("p")
        with pytest.raises(PlanError, match="already registered"):
            await r.add(dup)
    assert not dup.started


async def test_reorder_changes_the_plan_for_new_messages_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a = ScriptedHandle("a", script={("t", "early"): Delay(5)})
    b = ScriptedHandle("b")
    async with router.open([a, b]) as r:
        results: list[Result] = []

        async def route_early() -> None:
            results.append(await r.route(Message("t", "early")))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(route_early)
            await trio.sleep(1)
            assert r.reorder(["b", "a"]).names == ("b", "a")
        late = await r.route(Message("t", "late"))
    assert [h.plugin for h in results[0].trace] == ["a", "b"]
    assert [h.plugin for h in late.trace] == ["b", "a"]


async def test_replace_swaps_a_plugin_and_stops_the_old_one_once_unused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    old = ScriptedHandle("p", script={("t", "early"): Delay(5)}, default=drop("old"))
    new = ScriptedHandle("p", default=drop("new"))
    async with router.open([old]) as r:
        results: list[Result] = []

        async def route_early() -> None:
            results.append(await r.route(Message("t", "early")))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(route_early)
            await trio.sleep(1)
            assert await r.replace("p", new) is old
            assert old.stopped
        late = await r.route(Message("t", "late"))
        assert r.handles["p"] is new
    assert results[0].status == Status.DELIVERED  # the old plugin passed "early"
    assert (late.status, late.reason) == (Status.DROPPED, "new")
    assert new.stopped


async def test_edits_while_a_stream_flows_lose_no_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a = ScriptedHandle("a", default=Delay(1), concurrency=4)
    b = ScriptedHandle("b")
    messages = _inputs(40)
    async with router.open([a, b], max_in_flight=8) as r:

        async def edit() -> None:
            await trio.sleep(2)
            await r.add(ScriptedHandle("c"))
            await trio.sleep(2)
            await r.remove("b")
            await trio.sleep(1)
            r.reorder(["c", "a"])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(edit)
            results = [res async for res in r.route_stream(_items(messages))]
    assert [res.input_id for res in results] == [m.id for m in messages]
    assert all(res.status == Status.DELIVERED for res in results)
    orders = {tuple(h.plugin for h in res.trace) for res in results}
    assert orders <= {("a", "b"), ("a", "b", "c"), ("a", "c"), ("c", "a")}
    assert ("c", "a") in orders and ("a", "b") in orders


async def test_fan_out_branches_reach_a_concurrency_one_plugin_in_reply_order() -> None:
    fan = ScriptedHandle("fan", script={"t": emit(*(Message("t", f"b{i}") for i in range(8)))})
    seq = ScriptedHandle("seq", ["t"])
    async with router.open([fan, seq]) as r:
        for _ in range(5):
            seq.calls.clear()
            result = await r.route(Message("t", "x"))
            assert bodies(seq.calls) == [f"b{i}" for i in range(8)]
            assert bodies(result.messages) == [f"b{i}" for i in range(8)]


async def test_stopping_a_stream_early_releases_its_in_flight_slots(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = ScriptedHandle("slow", default=Delay(1), concurrency=10)
    async with router.open([slow], max_in_flight=2) as r:
        async with contextlib.aclosing(r.route_stream(_items(_inputs(10)))) as stream:
            async for _ in stream:
                break
        results = [res async for res in r.route_stream(_items(_inputs(4)))]
        assert len(results) == 4
        assert slow.max_active == 2


async def test_cancelling_around_an_open_router_stops_its_plugins_quietly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handle = ScriptedHandle("p", default=HANG)
    with trio.move_on_after(5) as scope:
        async with router.open([handle]) as r:
            await r.route(Message("t"))
    assert scope.cancelled_caught
    assert handle.stopped


class LateInfoHandle(ScriptedHandle):
    """Like a subprocess handle: its info is known only once started (handshake)."""

    @property
    def info(self) -> PluginInfo:
        if not self.started:
            raise RuntimeError("info is known only after start()")
        return super().info


async def test_open_takes_handles_whose_info_is_known_only_after_start() -> None:
    late = LateInfoHandle("late")
    async with router.open([late, ScriptedHandle("early")]) as r:
        assert r.plan.names == ("late", "early")
        result = await r.route(Message("t"))
    assert [h.plugin for h in result.trace] == ["late", "early"]


async def test_a_duplicate_name_learnt_at_start_stops_everything_started() -> None:
    log: list[str] = []
    handles = [LateInfoHandle("same", log=log), LateInfoHandle("same", log=log)]
    with pytest.raises(PlanError, match="'same'"):
        async with router.open(handles):
            pass  # pragma: no cover
    assert log == ["start same", "start same", "stop same", "stop same"]


async def test_a_failing_stop_does_not_hide_the_error_that_ended_the_body() -> None:
    class FailsToStop(ScriptedHandle):
        async def stop(self) -> None:
            raise OSError("stuck")

    other = ScriptedHandle("other")
    with pytest.raises(KeyError) as caught:
        async with router.open([other, FailsToStop("bad")]):
            raise KeyError("body")
    assert other.stopped
    assert caught.value.__notes__ == ["stopping a plugin also failed: OSError: stuck"]
    with pytest.raises(OSError, match="stuck"):
        async with router.open([FailsToStop("bad")]):
            pass


async def test_a_stream_item_that_is_not_a_message_is_an_error_in_its_place() -> None:
    items: list[object] = [Message("t", "a"), {"type": "t"}]
    seen: list[Result] = []
    async with router.open([ScriptedHandle("p")]) as r:
        with pytest.raises(TypeError, match="got dict, not a Message"):
            async for res in r.route_stream(_items(items)):  # type: ignore[arg-type]
                seen.append(res)
        assert len(seen) == 1
        assert (await r.route(Message("t"))).status == Status.DELIVERED


async def test_a_message_deadline_fails_it_mid_call_whatever_the_policy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hung = ScriptedHandle("hung", default=HANG, on_error=OnError.RETRY, timeout=60)
    after = ScriptedHandle("after")
    async with router.open([hung, after]) as r:
        soon = await r.route(Message("t", "x", headers={"deadline": time.time() + 5}))
        later = await r.route(Message("t", "y", headers={"deadline": time.time() + 1000}))
    assert (soon.status, soon.by, soon.reason) == (
        Status.FAILED,
        "hung",
        "the message's deadline passed",
    )
    assert [h.verdict for h in soon.trace] == ["timeout"]  # no retry: the deadline is gone
    assert 4 < soon.trace[0].duration < 6
    # The plugin's own timeout (60 s) comes first for a far deadline: retried, then failed.
    assert later.status == Status.FAILED and "timed out after 60s" in later.reason
    assert [h.verdict for h in later.trace] == ["retry", "retry", "timeout"]
    assert after.calls == []


async def test_a_message_past_its_deadline_is_not_handed_to_the_next_plugin() -> None:
    skipper = ScriptedHandle("skipper", on_error=OnError.SKIP)
    stale = Message("t", "x", headers={"deadline": time.time() - 1})
    async with router.open([skipper]) as r:
        result = await r.route(stale)
    assert (result.status, result.by) == (Status.FAILED, "skipper")
    assert "deadline passed" in result.reason
    assert skipper.calls == []
    # A deadline that is not a number is not a deadline: the message routes as usual.
    async with router.open([skipper]) as r:
        fine = await r.route(Message("t", "x", headers={"deadline": "tomorrow"}))
    assert fine.status == Status.DELIVERED


async def test_the_router_keeps_a_bounded_number_of_lanes_however_many_types_it_routes() -> None:
    # Types come from the outside world; a daemon fed ever new ones must not grow.
    class Everything(Plugin):
        name = "everything"

        @handles("*")
        def seen(self, msg: Message) -> None:
            return None

    inputs = [Message(f"t{n}", n) for n in range(9000)]
    async with router.open([Everything()]) as r:
        results = [res async for res in r.route_stream(_items(inputs))]
        assert len(r._current.lanes) <= 4096
        assert len(r.plan._cache) <= 4096
    assert {res.status for res in results} == {Status.DELIVERED}
