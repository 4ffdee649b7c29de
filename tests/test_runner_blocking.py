"""serve_blocking(): the trio-free runner, over real pipes, against a real trio host.

The plugin side runs in a worker thread on real ``os.pipe()`` ends (it blocks in
``os.read``); the host is a :class:`~plugin_sdk.session.Session`, as in the router, or
a bare sans-IO connection where a test counts frames or cuts the bytes itself. One
subprocess test checks that a qualifying plugin script never imports trio and
answers exactly as the trio runner does.
"""

from __future__ import annotations

import os
import pathlib
import sys
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
import trio
from app_host import AppHost, RawHost, write_all
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, OptionError, Plugin, PluginInfo, Reply, Verdict, drop, handles
from plugin_sdk.app import Fail, Ping, Ready, call_entry, calls_to_wire, check_pong, parse_handshake
from plugin_sdk.runner import (
    EXIT_FAILED,
    EXIT_OK,
    ServablePlugin,
    serve_blocking,
    serves_without_trio,
)
from plugin_sdk.session import ChannelResetError, Receiver, Session, open_session
from plugin_sdk.testing import check_plugin
from plugin_sdk.wire import (
    ChannelOpened,
    ChannelRef,
    Connection,
    ErrorCode,
    GoAwayReceived,
    MessageReceived,
    RefKind,
    Role,
)


class Upper(Plugin):
    """Plain handlers only: served without trio."""

    name = "upper"

    def configure(self, option: str) -> None:
        if option == "bad":
            raise OptionError("bad on purpose")

    @handles("text")
    def upper(self, msg: Message) -> Message:
        return Message("text", str(msg.body).upper(), id=msg.id)

    @handles("secret.*")
    def refuse(self, msg: Message) -> Reply:
        return drop("no secrets")

    @handles("boom")
    def boom(self, msg: Message) -> Message:
        raise ValueError(f"cannot handle {msg.body!r}")


class AsyncHandler(Upper):
    @handles("slow")
    async def slow(self, msg: Message) -> Message:
        await trio.sleep(0)
        return msg


class WithStart(Upper):
    async def start(self) -> None:
        pass


class WithStop(Upper):
    async def stop(self) -> None:
        pass


def test_only_plugins_that_never_wait_are_served_without_trio() -> None:
    assert serves_without_trio(Upper)
    assert not serves_without_trio(AsyncHandler)
    assert not serves_without_trio(WithStart)
    assert not serves_without_trio(WithStop)
    assert not serves_without_trio(object)
    assert not serves_without_trio(Upper("x"))  # an instance, not a class


@asynccontextmanager
async def blocking_plugin(
    make: Callable[[], ServablePlugin], codes: list[int], handshake_timeout: float = 10.0
) -> AsyncIterator[tuple[Session, Receiver]]:
    """serve_blocking() in a thread on real pipes; yield the host session and control."""
    to_plugin_read, to_plugin_write = os.pipe()
    from_plugin_read, from_plugin_write = os.pipe()

    def run_plugin() -> None:
        codes.append(
            serve_blocking(
                make, to_plugin_read, from_plugin_write, handshake_timeout=handshake_timeout
            )
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, run_plugin)
        receive = trio.lowlevel.FdStream(from_plugin_read)
        send = trio.lowlevel.FdStream(to_plugin_write)
        async with open_session(receive, send, Role.INITIATOR) as session:
            control = await session.accept()
            yield session, control


@contextmanager
def raw_blocking_plugin(
    make: Callable[[], ServablePlugin], **limits: Any
) -> Iterator[tuple[RawHost, list[int]]]:
    """serve_blocking() in a thread, driven by a blocking sans-IO host with ``limits``.

    On exit the host's end of FD 3 is closed (EOF for the plugin) and the thread joined.
    """
    to_plugin_read, to_plugin_write = os.pipe()
    from_plugin_read, from_plugin_write = os.pipe()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(serve_blocking(make, to_plugin_read, from_plugin_write))
    )
    thread.start()
    host = RawHost(from_plugin_read, to_plugin_write)
    host.conn = Connection(Role.INITIATOR, **limits)
    try:
        yield host, codes
    finally:
        os.close(to_plugin_write)
        host.read_to_eof()
        os.close(from_plugin_read)
        thread.join(10)
        assert not thread.is_alive()


async def test_handshake_ready_carries_the_plugins_info() -> None:
    async with blocking_plugin(lambda: Upper(), []) as (_session, control):
        handshake = parse_handshake(await control.receive())
    assert handshake == Ready(Upper().info())


async def test_a_batch_is_answered_in_order_as_in_process_and_the_plugin_exits_0() -> None:
    inputs = [
        Message("text", "a", id="1"),
        Message("secret.key", "k", id="2"),
        Message("boom", 7, id="3"),
        Message("other", None, id="4"),
        Message("text", "b", id="5"),
    ]
    expected = [await Upper().handle(m) for m in inputs]
    codes: list[int] = []
    async with blocking_plugin(lambda: Upper(), codes) as (session, control):
        host = await AppHost.ready(session, control)
        replies = await host.call_all(inputs)
        await host.calls.aclose()
        with trio.fail_after(5):
            await session.wait_closed()
    assert replies == expected
    assert replies[2].reason == "ValueError: cannot handle 7"
    assert [[call_id for call_id, _ in message] for message in host.received] == [[1, 2, 3, 4, 5]]
    assert codes == [EXIT_OK]


def _call_bytes(
    conn: Connection, calls: int, batches: list[list[Message]]
) -> tuple[bytes, list[int]]:
    """The frames of ``batches`` as one call request each, with ids from 1; and the ids."""
    data = b""
    ids: list[int] = []
    for batch in batches:
        entries = [call_entry(len(ids) + 1 + i, m) for i, m in enumerate(batch)]
        ids += [entry[0] for entry in entries]
        data += conn.send_message(calls, calls_to_wire(entries))
    return data, ids


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.text(max_size=30), min_size=1, max_size=8), min_size=1, max_size=6
    ),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
)
def test_every_call_gets_one_answer_with_its_id_however_the_bytes_are_cut(
    batches: list[list[str]], cuts: list[int]
) -> None:
    with raw_blocking_plugin(lambda: Upper()) as (host, codes):
        host.handshake()
        messages = [[Message("text", b) for b in batch] for batch in batches]
        data, ids = _call_bytes(host.conn, host.calls, messages)
        data = host.opening + data
        points = sorted({c % (len(data) + 1) for c in cuts})
        for start, stop in zip([0, *points], [*points, len(data)], strict=True):
            write_all(host.write_fd, data[start:stop])
        answered: dict[int, Any] = {}
        while len(answered) < len(ids):
            for call_id, reply in host.replies():
                assert call_id not in answered
                answered[call_id] = reply.messages[0].body
        host.write_fd_out()
    bodies = [b.upper() for batch in batches for b in batch]
    assert answered == dict(zip(ids, bodies, strict=True))
    assert codes == [EXIT_OK]


def test_everything_from_one_read_is_answered_in_one_replies_message() -> None:
    with raw_blocking_plugin(lambda: Upper()) as (host, codes):
        host.handshake()
        conn = host.conn
        data, ids = _call_bytes(
            conn,
            host.calls,
            [
                [Message("text", "a"), Message("secret.x", 1), Message("text", "b")],
                [Message("boom", 2), Message("text", "c")],
            ],
        )
        ping_ref = ChannelRef(RefKind.SENDER)
        data += conn.send_message(host.calls, Ping(ping_ref).to_wire())
        data = host.opening + data + conn.close(host.calls)
        assert len(data) < 4096  # one write under PIPE_BUF: the plugin reads it at once
        write_all(host.write_fd, data)
        answers = host.replies()
        pong = host.read_until(lambda e: isinstance(e, MessageReceived))
        events = host.read_to_eof()
    assert [call_id for call_id, _ in answers] == ids
    verdicts = [reply.verdict for _, reply in answers]
    assert verdicts == [
        Verdict.CONTINUE,
        Verdict.DROP,
        Verdict.CONTINUE,
        Verdict.ERROR,
        Verdict.CONTINUE,
    ]
    assert pong.channel == ping_ref.channel
    check_pong(pong.payload)
    # Nothing else was answered: no second replies message, only the pong's CLOSE and the end.
    assert not [e for e in events if isinstance(e, MessageReceived)]
    assert codes == [EXIT_OK]


class _Suspend:
    """Awaiting it suspends the coroutine, as waiting on any event loop would."""

    def __await__(self) -> Generator[None, None, None]:
        yield


class ReturnsAwaitables(Upper):
    """Plain handlers that return awaitables: one finishes at once, one would wait."""

    @handles("ready-now")
    def ready_now(self, msg: Message) -> Any:
        async def done() -> Message:
            return Message("ready-now", "done", id=msg.id)

        return done()

    @handles("would-wait")
    def would_wait(self, msg: Message) -> Any:
        async def waits() -> Message:
            await _Suspend()
            return msg

        return waits()


class HandMade:
    """Not a plugin_sdk.Plugin: a ServablePlugin whose handle() breaks its contract."""

    def info(self) -> PluginInfo:
        return PluginInfo("hand-made", ("*",))

    async def start(self) -> None:
        pass

    async def handle(self, message: Message) -> Reply:
        if message.type == "raise":
            raise KeyError(message.id)
        return message  # type: ignore[return-value]

    async def stop(self) -> None:
        pass


async def test_awaitables_from_plain_handlers_are_stepped_and_one_that_waits_is_an_error() -> None:
    async with blocking_plugin(lambda: ReturnsAwaitables(), []) as (session, control):
        host = await AppHost.ready(session, control)
        now, waits, text = await host.call_all(
            [Message("ready-now", 1), Message("would-wait", 2), Message("text", "t")]
        )
    assert now.messages[0].body == "done"
    assert waits.verdict is Verdict.ERROR and "serve this plugin with trio" in waits.reason
    assert text.messages[0].body == "T"


async def test_a_hand_made_plugin_breaking_its_contract_gets_error_answers() -> None:
    async with blocking_plugin(HandMade, []) as (session, control):
        host = await AppHost.ready(session, control)
        raised, returned = await host.call_all([Message("raise", id="k1"), Message("other")])
    assert raised == Reply(Verdict.ERROR, (), "KeyError: 'k1'")
    assert returned.verdict is Verdict.ERROR and "not a Reply" in returned.reason


class OwnHandle(Upper):
    """Replaces handle() (main() would serve it on trio; serve_blocking() may be given it)."""

    async def handle(self, message: Message) -> Reply:
        return drop(f"own handle saw {message.id}")


async def test_a_plugin_replacing_handle_is_served_through_it() -> None:
    async with blocking_plugin(lambda: OwnHandle(), []) as (session, control):
        host = await AppHost.ready(session, control)
        reply = await host.call(Message("text", "t", id="x"))
    assert reply == drop("own handle saw x")


def test_calls_that_come_in_the_same_read_as_the_hosts_hello_are_answered() -> None:
    # A host that does not wait for `ready` (the router does): everything in one read.
    writer = Connection(Role.INITIATOR)
    data = writer.hello()
    writer.receive_data(Connection(Role.RESPONDER).hello())
    calls, opening = writer.open()
    batch = calls_to_wire([call_entry(1, Message("text", "early"))])
    data += opening + writer.send_message(calls, batch)
    to_plugin_read, to_plugin_write = os.pipe()
    from_plugin_read, from_plugin_write = os.pipe()
    write_all(to_plugin_write, data)
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(serve_blocking(Upper, to_plugin_read, from_plugin_write))
    )
    thread.start()
    host = RawHost(from_plugin_read, to_plugin_write)
    host.conn.hello()  # already written, by the writer
    try:
        opened = host.read_until(lambda e: isinstance(e, ChannelOpened))
        host.control = opened.channel
        host.read_until(lambda e: isinstance(e, MessageReceived))  # ready
        [(call_id, reply)] = host.replies()
    finally:
        os.close(to_plugin_write)  # EOF: the plugin ends either way
        thread.join(10)
        os.close(from_plugin_read)
    assert (call_id, reply.messages[0].body) == (1, "EARLY")
    assert codes == [EXIT_OK]


async def test_a_malformed_message_is_answered_with_an_error_naming_it() -> None:
    async with blocking_plugin(lambda: Upper(), []) as (session, control):
        host = await AppHost.ready(session, control)
        await host.calls.send(
            {"op": "call", "calls": [[1, {"type": "text", "body": "a"}], [2, {"type": 3}]]}
        )
        good, bad = await host.answers_to([1, 2])
    assert good.messages[0].body == "A"
    assert bad.verdict is Verdict.ERROR
    assert "call 2 message: 'type' must be a non-empty string, got 3" in bad.reason


async def test_a_ping_is_answered_and_an_unknown_op_refused_while_serving_goes_on() -> None:
    async with blocking_plugin(lambda: Upper(), []) as (session, control):
        host = await AppHost.ready(session, control)
        receiver, ref = session.pipe()
        await host.calls.send(Ping(ref).to_wire())
        check_pong(await receiver.receive())
        refused, ref = session.pipe()
        await host.calls.send({"op": "resume", "reply": ref})
        with pytest.raises(ChannelResetError, match="unsupported op 'resume'"):
            await refused.receive()
        await host.calls.send({"op": "call"})  # malformed: logged, skipped
        await host.calls.send([1, 2])  # not a map: logged, skipped
        # An entry without an id is skipped; the rest of its batch is answered.
        await host.calls.send(
            {"op": "call", "calls": [[0, {"type": "text"}], [1, {"type": "text", "body": "x"}]]}
        )
        [reply] = await host.answers_to([1])
        assert reply.messages[0].body == "X"
        host.last_id = 1
        assert (await host.call(Message("text", "y"))).messages[0].body == "Y"


def test_answers_wait_for_credit_on_the_control_channel_then_go() -> None:
    # A 64-byte window: one replies message overdraws it; the next waits for CREDIT.
    with raw_blocking_plugin(lambda: Upper(), window=64) as (host, codes):
        host.handshake()
        conn = host.conn
        first, [first_id] = _call_bytes(conn, host.calls, [[Message("text", "a" * 100)]])
        write_all(host.write_fd, host.opening + first)
        [(answered, _)] = host.replies(acknowledge=False)
        assert answered == first_id
        entries = [call_entry(first_id + 1, Message("text", "b"))]
        ping = ChannelRef(RefKind.SENDER)
        write_all(
            host.write_fd,
            conn.send_message(host.calls, calls_to_wire(entries))
            + conn.send_message(host.calls, Ping(ping).to_wire()),
        )
        # The pong went out in the same write as any answer could have: there is none.
        host.read_until(lambda e: isinstance(e, MessageReceived) and e.channel == ping.channel)
        assert not [e for e in host.events if isinstance(e, MessageReceived)]
        host.acknowledge()  # the first replies message was read: credit comes back
        [(late, reply)] = host.replies()
    assert late == first_id + 1 and reply.messages[0].body == "B"
    assert codes == [EXIT_OK]


def test_answers_too_big_for_one_frame_are_split_and_one_too_big_alone_is_an_error() -> None:
    with raw_blocking_plugin(lambda: Upper(), max_frame=4096) as (host, codes):
        host.handshake()
        bodies = ["a" * 1500, "b" * 1500, "c" * 1500, "d" * 5000]
        data, ids = _call_bytes(host.conn, host.calls, [[Message("text", b) for b in bodies]])
        write_all(host.write_fd, host.opening + data)
        got: dict[int, Reply] = {}
        messages = 0
        while len(got) < len(ids):
            got.update(host.replies())
            messages += 1
    assert [got[i].messages[0].body for i in ids[:3]] == ["A" * 1500, "B" * 1500, "C" * 1500]
    assert got[ids[3]].verdict is Verdict.ERROR
    assert "could not send its reply" in got[ids[3]].reason
    assert "max_frame" in got[ids[3]].reason
    assert messages >= 2
    assert codes == [EXIT_OK]


@pytest.mark.parametrize(
    "make",
    [lambda: Upper("bad"), lambda: (_ for _ in ()).throw(ValueError("cannot import 'x'"))],
)
async def test_a_plugin_that_cannot_be_made_sends_fail_and_exits_1(
    make: Callable[[], ServablePlugin],
) -> None:
    codes: list[int] = []
    async with blocking_plugin(make, codes) as (session, control):
        handshake = parse_handshake(await control.receive())
        with trio.fail_after(5):
            await session.wait_closed()
    assert isinstance(handshake, Fail)
    assert "bad on purpose" in handshake.error or "cannot import 'x'" in handshake.error
    assert codes == [EXIT_FAILED]


async def test_no_hello_from_the_host_within_the_timeout_exits_1() -> None:
    to_plugin_read, to_plugin_write = os.pipe()
    from_plugin_read, from_plugin_write = os.pipe()
    try:
        code = await trio.to_thread.run_sync(
            lambda: serve_blocking(Upper, to_plugin_read, from_plugin_write, handshake_timeout=0.05)
        )
    finally:
        os.close(to_plugin_write)
        os.close(from_plugin_read)
    assert code == EXIT_FAILED


async def test_garbage_from_the_host_gets_a_goaway_and_exit_1() -> None:
    to_plugin_read, to_plugin_write = os.pipe()
    from_plugin_read, from_plugin_write = os.pipe()
    os.write(to_plugin_write, b"\x00\x00\x00\x02\xc1\xc1")  # a frame that is no msgpack
    try:
        code = await trio.to_thread.run_sync(
            lambda: serve_blocking(Upper, to_plugin_read, from_plugin_write)
        )
        sent = os.read(from_plugin_read, 65536)
    finally:
        os.close(to_plugin_write)
        os.close(from_plugin_read)
    assert code == EXIT_FAILED
    reader = Connection(Role.INITIATOR)
    reader.hello()
    events = reader.receive_data(sent)
    goaways = [e for e in events if isinstance(e, GoAwayReceived)]
    assert len(goaways) == 1  # one GOAWAY, saying why; no "NO_ERROR" one after it
    assert goaways[0].code == ErrorCode.PROTOCOL_ERROR
    assert "not a msgpack array" in goaways[0].reason


async def test_the_host_vanishing_ends_the_plugin_with_exit_0() -> None:
    codes: list[int] = []
    async with blocking_plugin(lambda: Upper(), codes) as (session, control):
        await AppHost.ready(session, control)
    # Leaving the session closed both pipe ends: the plugin read EOF after GOAWAY.
    assert codes == [EXIT_OK]


SCRIPT = str(pathlib.Path(__file__).with_name("plugins") / "plain.py")


@pytest.mark.parametrize("runner", ["blocking", "trio"])
async def test_a_plain_plugin_script_imports_trio_only_when_forced(runner: str) -> None:
    env = {**os.environ, "CHANROUTER_RUNNER": runner}
    report = await check_plugin([sys.executable, SCRIPT], [Message("probe", "x")], env=env)
    report.raise_for_problems()
    [(_, reply)] = report.replies
    assert reply.messages[0].body == {"trio_imported": runner == "trio", "body": "x"}
