"""serve(): the plugin side of the application protocol, over in-memory streams."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
import trio
import trio.testing
from app_host import AppHost
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, OptionError, Plugin, PluginInfo, Reply, Verdict, handles, replace
from plugin_sdk.app import (
    FEATURE_CANCEL,
    Cancel,
    Fail,
    Ping,
    Ready,
    answer_entry,
    call_entry,
    calls_to_wire,
    check_pong,
    parse_answers,
    parse_handshake,
)
from plugin_sdk.runner import EXIT_FAILED, EXIT_OK, ServablePlugin, serve
from plugin_sdk.runner._serve import CANCELLED, _Dispatcher
from plugin_sdk.session import ChannelResetError, Receiver, Role, Session, open_session
from plugin_sdk.wire import Connection, MessageReceived


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class Recorder(Plugin):
    """Sleeps ``body`` seconds, records the order it handled messages in."""

    name = "recorder"

    def configure(self, option: str) -> None:
        if option == "bad":
            raise OptionError("bad on purpose")
        self.concurrency = int(option or 1)
        self.handled: list[str] = []
        self.started: list[str] = []
        self.stopped = False
        self.active = 0
        self.peak = 0

    @handles("work")
    async def work(self, msg: Message) -> Message:
        self.started.append(msg.id)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await trio.sleep(float(msg.body))
        finally:
            self.active -= 1
        self.handled.append(msg.id)
        return Message("work", {"done": msg.id}, id=msg.id)

    async def stop(self) -> None:
        self.stopped = True


class FailingStart(Recorder):
    async def start(self) -> None:
        raise RuntimeError("no database")


class FailingStop(Recorder):
    async def stop(self) -> None:
        raise RuntimeError("cannot flush")


@asynccontextmanager
async def serving(
    make: Callable[[], ServablePlugin], codes: list[int], **limits: Any
) -> AsyncIterator[tuple[Session, Receiver]]:
    """Run serve() on one end of an in-memory stream pair; yield the host's session
    (opened with the wire ``limits`` given, e.g. ``max_frame``)."""
    host_stream, plugin_stream = trio.testing.memory_stream_pair()

    async def run_plugin() -> None:
        codes.append(await serve(make, plugin_stream, plugin_stream))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_plugin)
        async with open_session(host_stream, host_stream, Role.INITIATOR, **limits) as session:
            control = await session.accept()
            yield session, control


async def ready_host(session: Session, control: Receiver) -> AppHost:
    return await AppHost.ready(session, control)


async def test_handshake_calls_ping_and_a_graceful_end(autojump_clock: Any) -> None:
    plugin = Recorder("2")
    codes: list[int] = []
    async with serving(lambda: plugin, codes) as (session, control):
        host = await ready_host(session, control)
        reply = await host.call(Message("work", 0.5, id="a"))
        assert reply.messages[0].body == {"done": "a"}
        receiver, ref = session.pipe()
        await host.calls.send(Ping(ref).to_wire())
        check_pong(await receiver.receive())
        await host.calls.aclose()
        with trio.fail_after(5):
            await session.wait_closed()
    assert codes == [EXIT_OK]
    assert plugin.stopped


async def test_the_handshake_carries_the_plugins_info_and_names_the_cancel_feature(
    autojump_clock: Any,
) -> None:
    plugin = Recorder("3")
    async with serving(lambda: plugin, []) as (_session, control):
        handshake = parse_handshake(await control.receive())
    assert handshake == Ready(plugin.info(), features=(FEATURE_CANCEL,))


async def test_concurrency_one_handles_calls_in_the_order_they_were_sent(
    autojump_clock: Any,
) -> None:
    plugin = Recorder("1")
    async with serving(lambda: plugin, []) as (session, control):
        host = await ready_host(session, control)
        messages = [Message("work", d, id=f"m{i}") for i, d in enumerate([0.5, 0.1, 0.3, 0, 0.2])]
        replies = await host.call_all(messages)
    assert plugin.handled == ["m0", "m1", "m2", "m3", "m4"]
    assert [r.messages[0].body for r in replies] == [{"done": m.id} for m in messages]
    answer_order = [call_id for answers in host.received for call_id, _ in answers]
    assert answer_order == [1, 2, 3, 4, 5]
    assert plugin.peak == 1


async def test_up_to_concurrency_calls_run_at_once_and_finish_out_of_order(
    autojump_clock: Any,
) -> None:
    plugin = Recorder("3")
    async with serving(lambda: plugin, []) as (session, control):
        host = await ready_host(session, control)
        messages = [Message("work", d, id=f"m{i}") for i, d in enumerate([0.5, 0.1, 0.3, 0, 0.2])]
        replies = await host.call_all(messages)
    # Answered out of order, yet each id carries the answer to its own call.
    assert [r.messages[0].body for r in replies] == [{"done": m.id} for m in messages]
    answer_order = [call_id for answers in host.received for call_id, _ in answers]
    assert answer_order != [1, 2, 3, 4, 5] and sorted(answer_order) == [1, 2, 3, 4, 5]
    assert plugin.peak == 3
    # m0..m2 start at once; m1 ends first; m0, the slowest, ends last.
    assert plugin.handled[0] == "m1"
    assert plugin.handled[-1] == "m0"
    assert sorted(plugin.handled) == ["m0", "m1", "m2", "m3", "m4"]


async def test_a_cancel_stops_a_running_handler_and_answers_its_call(
    autojump_clock: Any,
) -> None:
    plugin = Recorder("1")
    async with serving(lambda: plugin, []) as (session, control):
        host = await ready_host(session, control)
        [stuck] = await host.send_batch([Message("work", math.inf, id="stuck")])
        await trio.sleep(1)
        assert plugin.active == 1
        await host.calls.send(Cancel((stuck,)).to_wire())
        with trio.fail_after(10):
            assert await host.answers_to([stuck]) == [CANCELLED]
        assert plugin.active == 0 and plugin.handled == []
        # Its one place is free again: the next call is served by the same plugin.
        assert (await host.call(Message("work", 0, id="next"))).messages[0].body == {"done": "next"}


async def test_a_call_cancelled_while_waiting_for_a_worker_never_runs(
    autojump_clock: Any,
) -> None:
    plugin = Recorder("1")
    async with serving(lambda: plugin, []) as (session, control):
        host = await ready_host(session, control)
        stuck, waiting = await host.send_batch(
            [Message("work", math.inf, id="stuck"), Message("work", 0, id="waiting")]
        )
        await trio.sleep(1)
        await host.calls.send(Cancel((waiting, stuck)).to_wire())
        with trio.fail_after(10):
            assert await host.answers_to([stuck, waiting]) == [CANCELLED, CANCELLED]
    assert plugin.started == ["stuck"]


async def test_a_cancel_for_calls_answered_or_never_made_is_ignored(
    autojump_clock: Any,
) -> None:
    plugin = Recorder("2")
    async with serving(lambda: plugin, []) as (session, control):
        host = await ready_host(session, control)
        await host.call(Message("work", 0, id="done"))
        await host.calls.send(Cancel((1, 99)).to_wire())
        await host.calls.send({"op": "cancel", "ids": []})  # malformed: logged, ignored
        await host.call(Message("work", 0, id="after"))
    answered = [call_id for answers in host.received for call_id, _ in answers]
    assert answered == [1, 2]  # no second answer to call 1, none to 99


class Gated(Plugin):
    """``gate`` waits for :attr:`gate` and returns with no checkpoint after; ``work``
    checkpoints first."""

    name = "gated"

    def configure(self, option: str) -> None:
        self.gate = trio.Event()

    @handles("gate")
    async def gated(self, msg: Message) -> Message:
        await self.gate.wait()
        return msg

    @handles("work")
    async def work(self, msg: Message) -> Message:
        await trio.sleep(0)
        return msg


class Collected:
    """Stands for the answers queue: keeps each answer entry."""

    def __init__(self) -> None:
        self.entries: list[list[Any]] = []

    def add(self, entry: list[Any]) -> None:
        self.entries.append(entry)


async def test_a_cancel_landing_as_its_call_ends_does_not_reach_the_next_call() -> None:
    # The gate opens and the cancel comes in the same scheduling round: the gated call
    # ends with its reply, so the cancel meant for it must not stop the next call, which
    # the same worker runs (concurrency 1).
    plugin = Gated()
    answers = Collected()
    async with trio.open_nursery() as nursery:
        dispatcher = _Dispatcher(plugin, cast(Any, answers), nursery, 1)
        gated, after = Message("gate", id="gated"), Message("work", id="after")
        dispatcher.on_call(1, gated)
        dispatcher.on_call(2, after)
        await trio.testing.wait_all_tasks_blocked()
        plugin.gate.set()
        dispatcher.on_cancel((1,))
        with trio.fail_after(5):
            while len(answers.entries) < 2:
                await trio.testing.wait_all_tasks_blocked()
        dispatcher.queue.close()
    assert answers.entries == [answer_entry(1, replace(gated)), answer_entry(2, replace(after))]


class Quick(Plugin):
    """Plain handlers, several workers: answers come back without any waiting."""

    name = "quick"
    concurrency = 4

    @handles("text")
    def upper(self, msg: Message) -> Message:
        return Message("text", str(msg.body).upper(), id=msg.id)


async def test_a_batch_handled_without_waiting_is_answered_in_one_replies_message(
    autojump_clock: Any,
) -> None:
    async with serving(lambda: Quick(), []) as (session, control):
        host = await ready_host(session, control)
        # Once serving is under way (the workers wait for calls), that is:
        assert (await host.call(Message("text", "x"))).messages[0].body == "X"
        replies = await host.call_all([Message("text", c) for c in "abcdefgh"])
    assert [r.messages[0].body for r in replies] == list("ABCDEFGH")
    assert [sorted(call_id for call_id, _ in answers) for answers in host.received[1:]] == [
        [2, 3, 4, 5, 6, 7, 8, 9]
    ]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.integers(1, 4))
def test_with_concurrency_4_any_answer_order_keeps_each_id_with_its_call(
    delays: list[int], batches: int
) -> None:
    plugin = Recorder("4")

    async def scenario() -> list[Reply]:
        async with serving(lambda: plugin, []) as (session, control):
            host = await ready_host(session, control)
            messages = [Message("work", d / 10, id=f"m{i}") for i, d in enumerate(delays)]
            ids: list[int] = []
            for start in range(batches):
                ids += await host.send_batch(messages[start::batches])
            replies = await host.answers_to(ids)
            # Each id's answer is the one to the message sent with that id.
            sent = [m.id for start in range(batches) for m in messages[start::batches]]
            assert [r.messages[0].body["done"] for r in replies] == sent
            return replies

    replies = trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(replies) == len(delays)
    assert plugin.peak <= 4


@settings(max_examples=40, deadline=None)
@given(
    delays=st.lists(st.sampled_from([0, 1, 5, math.inf]), min_size=1, max_size=10),
    concurrency=st.integers(1, 3),
    steps=st.lists(
        st.tuples(st.sampled_from([0, 0.5, 2]), st.lists(st.integers(0, 20), max_size=3)),
        max_size=5,
    ),
)
def test_cancels_at_any_moment_leave_every_call_answered_exactly_once(
    delays: list[float], concurrency: int, steps: list[tuple[float, list[int]]]
) -> None:
    plugin = Recorder(str(concurrency))

    async def scenario() -> tuple[list[int], list[Reply], set[int], list[int]]:
        async with serving(lambda: plugin, []) as (session, control):
            host = await ready_host(session, control)
            messages = [Message("work", d, id=f"m{i}") for i, d in enumerate(delays)]
            ids = await host.send_batch(messages)
            cancelled: set[int] = set()
            for pause, picks in steps:
                await trio.sleep(pause)
                chosen = tuple(ids[p % len(ids)] for p in picks)
                if chosen:
                    await host.calls.send(Cancel(chosen).to_wire())
                    cancelled.update(chosen)
            # Whatever would wait for ever is cancelled in the end, so every call ends.
            stuck = tuple(i for i, d in zip(ids, delays, strict=True) if d == math.inf)
            if stuck:
                await host.calls.send(Cancel(stuck).to_wire())
                cancelled.update(stuck)
            with trio.fail_after(100):
                replies = await host.answers_to(ids)
                await host.call(Message("work", 0, id="last"))  # flushes any late answer
            answered = [call_id for answers in host.received for call_id, _ in answers]
            return ids, replies, cancelled, answered

    clock = trio.testing.MockClock(autojump_threshold=0)
    ids, replies, cancelled, answered = trio.run(scenario, clock=clock)
    assert sorted(answered) == sorted([*ids, ids[-1] + 1])  # each call answered once
    for index, (call_id, reply) in enumerate(zip(ids, replies, strict=True)):
        if reply == CANCELLED:
            assert call_id in cancelled
        else:
            assert reply.messages[0].body == {"done": f"m{index}"}
    assert plugin.peak <= concurrency
    assert len(plugin.started) == len(set(plugin.started))  # no call ran twice


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.text(max_size=30), min_size=1, max_size=6), min_size=1, max_size=5
    ),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
    concurrency=st.integers(1, 4),
)
def test_every_call_gets_one_answer_with_its_id_however_the_bytes_are_cut(
    batches: list[list[str]], cuts: list[int], concurrency: int
) -> None:
    class Upper(Quick):
        pass

    Upper.concurrency = concurrency

    async def scenario() -> dict[int, str]:
        host_stream, plugin_stream = trio.testing.memory_stream_pair()
        conn = Connection(Role.INITIATOR)
        answered: dict[int, str] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, Upper, plugin_stream, plugin_stream)
            await host_stream.send_all(conn.hello())
            events: list[Any] = []
            while not any(isinstance(e, MessageReceived) for e in events):
                events += conn.receive_data(bytes(await host_stream.receive_some()))
            calls, data = conn.open()
            call_id = 0
            for batch in batches:
                entries = [
                    call_entry(call_id + 1 + i, Message("text", b)) for i, b in enumerate(batch)
                ]
                call_id += len(batch)
                data += conn.send_message(calls, calls_to_wire(entries))
            points = sorted({c % (len(data) + 1) for c in cuts})
            for start, stop in zip([0, *points], [*points, len(data)], strict=True):
                await host_stream.send_all(data[start:stop])
            while len(answered) < call_id:
                for event in conn.receive_data(bytes(await host_stream.receive_some())):
                    if isinstance(event, MessageReceived) and event.payload.get("op") == "replies":
                        await host_stream.send_all(conn.acknowledge(event.channel, event.size))
                        for answer_id, reply in parse_answers(event.payload):
                            assert answer_id not in answered
                            answered[answer_id] = reply.messages[0].body
            await host_stream.send_all(conn.close(calls))
        return answered

    answered = trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    bodies = [b.upper() for batch in batches for b in batch]
    assert answered == dict(enumerate(bodies, start=1))


async def test_a_malformed_message_in_a_batch_is_answered_with_an_error_naming_it(
    autojump_clock: Any,
) -> None:
    async with serving(lambda: Recorder(), []) as (session, control):
        host = await ready_host(session, control)
        await host.calls.send(
            {"op": "call", "calls": [[1, {"type": "work", "body": 0}], [2, {"type": 3}]]}
        )
        good, bad = await host.answers_to([1, 2])
    assert good.messages[0].body == {"done": ANY_ID}
    assert bad.verdict is Verdict.ERROR
    assert "call 2 message: 'type' must be a non-empty string, got 3" in bad.reason


async def test_calls_in_flight_when_the_calls_channel_closes_are_answered_before_exit(
    autojump_clock: Any,
) -> None:
    plugin = Recorder("2")
    codes: list[int] = []
    async with serving(lambda: plugin, codes) as (session, control):
        host = await ready_host(session, control)
        ids = await host.send_batch([Message("work", d) for d in (0.3, 0.1, 0.2)])
        await host.calls.aclose()
        replies = await host.answers_to(ids)
        with trio.fail_after(5):
            await session.wait_closed()
    assert all(r.verdict is Verdict.CONTINUE for r in replies)
    assert codes == [EXIT_OK]
    assert plugin.stopped


class Mixed(Recorder):
    """An async handler and a plain one: the plain one is answered at once when idle."""

    @handles("note")
    def note(self, msg: Message) -> Message:
        self.handled.append(msg.id)
        return msg


async def test_plain_handlers_keep_their_turn_behind_calls_in_progress(
    autojump_clock: Any,
) -> None:
    plugin = Mixed("1")
    async with serving(lambda: plugin, []) as (session, control):
        host = await ready_host(session, control)
        ids = ["n0", "w1", "n2", "w3", "n4"]
        messages = [Message("note" if i[0] == "n" else "work", 0.5, id=i) for i in ids]
        await host.call_all(messages)
        # Alone, a plain call is answered at once; behind a call in progress it waits.
        await host.call(Message("note", 0, id="n5"))
    assert plugin.handled == [*ids, "n5"]
    answer_order = [call_id for answers in host.received for call_id, _ in answers]
    assert answer_order == [1, 2, 3, 4, 5, 6]
    assert plugin.peak == 1


class OwnHandle(Recorder):
    """Replaces handle(): the runner must call it, not the handler table."""

    async def handle(self, message: Message) -> Reply:
        return Reply(Verdict.DROP, (), f"own handle saw {message.id}")


async def test_a_plugin_replacing_handle_is_served_through_it(autojump_clock: Any) -> None:
    async with serving(lambda: OwnHandle(), []) as (session, control):
        host = await ready_host(session, control)
        reply = await host.call(Message("work", 0, id="x"))
    assert reply == Reply(Verdict.DROP, (), "own handle saw x")


async def test_answers_too_big_for_one_frame_are_split_and_one_too_big_alone_is_an_error(
    autojump_clock: Any,
) -> None:
    async with serving(lambda: Quick(), [], max_frame=4096, window=1024) as (session, control):
        host = await ready_host(session, control)
        await host.call(Message("text", "warm"))  # the workers wait: one round for all
        bodies = ["a" * 1500, "b" * 1500, "c" * 1500, "d" * 5000]
        replies = await host.call_all([Message("text", b) for b in bodies])
    assert [r.messages[0].body for r in replies[:3]] == ["A" * 1500, "B" * 1500, "C" * 1500]
    assert replies[3].verdict is Verdict.ERROR
    assert "could not send its reply" in replies[3].reason and "max_frame" in replies[3].reason
    assert len(host.received) >= 3  # the warm-up's, then the batch's in parts


async def test_pings_are_answered_while_every_worker_is_busy(autojump_clock: Any) -> None:
    plugin = Recorder("1")
    async with serving(lambda: plugin, []) as (session, control):
        host = await ready_host(session, control)
        await host.send_batch([Message("work", 1000)])
        receiver, ref = session.pipe()
        await host.calls.send(Ping(ref).to_wire())
        with trio.fail_after(1):
            check_pong(await receiver.receive())


async def test_an_unknown_op_resets_its_reply_channel_and_serving_goes_on(
    autojump_clock: Any,
) -> None:
    async with serving(lambda: Recorder(), []) as (session, control):
        host = await ready_host(session, control)
        receiver, ref = session.pipe()
        await host.calls.send({"op": "resume", "reply": ref})
        with pytest.raises(ChannelResetError, match="unsupported op 'resume'"):
            await receiver.receive()
        await host.calls.send({"op": "call"})  # malformed: logged, skipped
        await host.calls.send("call")  # not a map: logged, skipped
        assert (await host.call(Message("work", 0))).messages[0].body == {"done": ANY_ID}


class _AnyId:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)


ANY_ID: Any = _AnyId()


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: Recorder("bad"), "OptionError: plugin 'recorder': bad option 'bad': bad on"),
        (lambda: FailingStart(), "RuntimeError: no database"),
    ],
)
async def test_a_plugin_that_cannot_start_sends_fail_and_exits_1(
    make: Callable[[], ServablePlugin], error: str, autojump_clock: Any
) -> None:
    codes: list[int] = []
    async with serving(make, codes) as (_session, control):
        handshake = parse_handshake(await control.receive())
    assert isinstance(handshake, Fail)
    assert handshake.error.startswith(error)
    assert codes == [EXIT_FAILED]


async def test_the_host_ending_the_session_ends_serving_and_runs_the_stop_hook(
    autojump_clock: Any,
) -> None:
    plugin = Recorder()
    codes: list[int] = []
    async with serving(lambda: plugin, codes) as (session, control):
        await ready_host(session, control)
    assert codes == [EXIT_OK]
    assert plugin.stopped


async def test_a_failing_stop_hook_is_logged_and_makes_the_exit_status_1(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    codes: list[int] = []
    async with serving(lambda: FailingStop(), codes) as (session, control):
        await ready_host(session, control)
    assert codes == [EXIT_FAILED]
    assert any("stop hook failed" in r.getMessage() for r in caplog.records)


class RaisingHandle:
    """Not a plugin_sdk.Plugin: a hand-made plugin whose handle() breaks its contract."""

    def info(self) -> PluginInfo:
        return PluginInfo("raiser", ("work",))

    async def start(self) -> None:
        pass

    async def handle(self, message: Message) -> Reply:
        raise KeyError(message.id)

    async def stop(self) -> None:
        pass


async def test_an_exception_from_handle_becomes_an_error_reply(autojump_clock: Any) -> None:
    async with serving(RaisingHandle, []) as (session, control):
        host = await ready_host(session, control)
        reply = await host.call(Message("work", 0, id="k1"))
        again = await host.call(Message("work", 0, id="k2"))
    assert reply == Reply(Verdict.ERROR, (), "KeyError: 'k1'")
    assert again.reason == "KeyError: 'k2'"


async def test_a_host_that_vanishes_before_the_handshake_ends_the_plugin_with_1(
    autojump_clock: Any,
) -> None:
    plugin_end, host_end = trio.testing.memory_stream_pair()
    await host_end.aclose()  # the router is gone before it says anything
    code = await serve(lambda: Recorder(""), plugin_end, plugin_end, handshake_timeout=5)
    assert code == EXIT_FAILED
