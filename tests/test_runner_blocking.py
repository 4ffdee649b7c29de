"""serve_blocking(): the trio-free runner, over real pipes, against a real trio host.

The plugin side runs in a worker thread on real ``os.pipe()`` ends (it blocks in
``os.read``); the host is a :class:`~plugin_sdk.session.Session`, as in the router.
One subprocess test checks that a qualifying plugin script never imports trio and
answers exactly as the trio runner does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from exec_helpers import PLUGINS, running
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, OptionError, Plugin, Reply, drop, handles
from plugin_sdk.app import Call, Fail, Ping, Ready, check_pong, parse_handshake, parse_reply
from plugin_sdk.runner import (
    EXIT_FAILED,
    EXIT_OK,
    ServablePlugin,
    serve_blocking,
    serves_without_trio,
)
from plugin_sdk.session import ChannelResetError, Receiver, Sender, Session, open_session
from plugin_sdk.wire import Connection, ErrorCode, GoAwayReceived, Role
from router.exec import ExecHandle


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


class Host:
    """The router's side of one plugin session."""

    def __init__(self, session: Session, calls: Sender) -> None:
        self.session = session
        self.calls = calls

    async def send_call(self, message: Message) -> Receiver:
        receiver, ref = self.session.pipe()
        await self.calls.send(Call(message, ref).to_wire())
        return receiver

    async def call(self, message: Message) -> Reply:
        return parse_reply(await (await self.send_call(message)).receive())


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


async def ready(session: Session, control: Receiver) -> Host:
    assert isinstance(parse_handshake(await control.receive()), Ready)
    return Host(session, await session.open_sender())


async def test_handshake_ready_carries_the_plugins_info() -> None:
    async with blocking_plugin(lambda: Upper(), []) as (_session, control):
        handshake = parse_handshake(await control.receive())
    assert handshake == Ready(Upper().info())


async def test_calls_sent_together_are_answered_in_order_as_in_process() -> None:
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
        host = await ready(session, control)
        receivers = [await host.send_call(m) for m in inputs]  # all in flight at once
        replies = [parse_reply(await r.receive()) for r in receivers]
        await host.calls.aclose()
        with trio.fail_after(5):
            await session.wait_closed()
    assert replies == expected
    assert replies[2].reason == "ValueError: cannot handle 7"
    assert codes == [EXIT_OK]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=30))
def test_any_batch_of_calls_gets_one_reply_each_in_order(bodies: list[str]) -> None:
    async def scenario() -> list[Any]:
        async with blocking_plugin(lambda: Upper(), []) as (session, control):
            host = await ready(session, control)
            receivers = [
                await host.send_call(Message("text", b, id=str(i))) for i, b in enumerate(bodies)
            ]
            return [parse_reply(await r.receive()).messages[0].body for r in receivers]

    assert trio.run(scenario) == [b.upper() for b in bodies]


async def test_a_ping_is_answered_and_an_unknown_op_refused_while_serving_goes_on() -> None:
    async with blocking_plugin(lambda: Upper(), []) as (session, control):
        host = await ready(session, control)
        receiver, ref = session.pipe()
        await host.calls.send(Ping(ref).to_wire())
        check_pong(await receiver.receive())
        refused, ref = session.pipe()
        await host.calls.send({"op": "cancel", "reply": ref})
        with pytest.raises(ChannelResetError, match="unsupported op 'cancel'"):
            await refused.receive()
        await host.calls.send({"op": "call"})  # malformed: logged, skipped
        reply = await host.call(Message("text", "x"))
        assert reply.messages[0].body == "X"


async def test_a_call_the_host_gave_up_on_is_not_answered_and_others_are() -> None:
    async with blocking_plugin(lambda: Upper(), []) as (session, control):
        host = await ready(session, control)
        abandoned = await host.send_call(Message("text", "late"))
        await abandoned.aclose()  # RESET before (or after) the plugin answers: no harm
        assert (await host.call(Message("text", "y"))).messages[0].body == "Y"


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
        await ready(session, control)
    # Leaving the session closed both pipe ends: the plugin read EOF after GOAWAY.
    assert codes == [EXIT_OK]


SCRIPT = str(PLUGINS / "plain.py")


@pytest.mark.parametrize("runner", ["blocking", "trio"])
async def test_a_plain_plugin_script_imports_trio_only_when_forced(runner: str) -> None:
    env = {"CHANROUTER_RUNNER": "trio"} if runner == "trio" else {}
    handle = ExecHandle([sys.executable, SCRIPT], env=env)
    async with running(handle):
        reply = await handle.call(Message("probe", "x", id="p"))
    assert reply.messages[0].body == {"trio_imported": runner == "trio", "body": "x"}
