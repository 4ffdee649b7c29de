"""Handshake, end of session, peer errors and GOAWAY."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from session_helpers import RawPeer, Transport, memory_transport, session_pair

from plugin_sdk.session import (
    EndOfChannel,
    ErrorCode,
    HandshakeError,
    Role,
    SessionBroken,
    SessionClosed,
    open_session,
)
from plugin_sdk.wire import GoAwayReceived, HelloReceived, RemoteProtocolError, SessionEnded


async def read_frames(receive: trio.abc.ReceiveStream) -> list[list[Any]]:
    """Every frame body written to ``receive`` until EOF, decoded without a Connection
    (so a test can read what a session sent even when the handshake failed)."""
    data = bytearray()
    while chunk := await receive.receive_some():
        data += chunk
    frames = []
    while data:
        (size,) = struct.unpack_from(">I", data)
        frames.append(msgpack.unpackb(data[4 : 4 + size]))
        del data[: 4 + size]
    return frames


@pytest.fixture
async def peer_and_session_transport() -> tuple[RawPeer, Transport]:
    """A raw peer that has already sent its HELLO, and the transport for a session."""
    a, b = memory_transport()
    peer = RawPeer(b)
    await peer.send_hello()
    return peer, a


async def test_version_mismatch_fails_both_sides_with_a_text_naming_both_versions() -> None:
    a, b = memory_transport()
    errors: dict[str, HandshakeError] = {}

    async def side(name: str, transport: Transport, role: Role, versions: list[int]) -> None:
        with pytest.raises(HandshakeError) as caught:
            async with open_session(*transport, role, versions=versions):
                raise AssertionError("the handshake should have failed")
        errors[name] = caught.value

    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, "a", a, Role.INITIATOR, [1])
        nursery.start_soon(side, "b", b, Role.RESPONDER, [2, 3])
    assert "we speak [1], the peer speaks [2, 3]" in str(errors["a"])
    assert "we speak [2, 3], the peer speaks [1]" in str(errors["b"])
    cause = errors["a"].__cause__
    assert isinstance(cause, RemoteProtocolError)
    assert cause.code is ErrorCode.VERSION_MISMATCH


async def test_version_mismatch_sends_goaway_version_mismatch_to_the_peer() -> None:
    (a_receive, a_send), (b_receive, b_send) = memory_transport()
    await b_send.send_all(RawPeer((b_receive, b_send), versions=[7]).conn.hello())
    with pytest.raises(HandshakeError, match=r"we speak \[1\], the peer speaks \[7\]"):
        async with open_session(a_receive, a_send, Role.INITIATOR):
            pass
    frames = await read_frames(b_receive)
    assert frames[0][0] == 0  # our HELLO
    assert frames[1][:2] == [7, ErrorCode.VERSION_MISMATCH]
    assert "the peer speaks [7]" in frames[1][2]


async def test_the_handshake_times_out_when_the_peer_never_says_hello(
    autojump_clock: trio.testing.MockClock,
) -> None:
    (a_receive, a_send), (b_receive, _) = memory_transport()
    with pytest.raises(HandshakeError, match="no HELLO from the peer within 10"):
        async with open_session(a_receive, a_send, Role.INITIATOR):
            pass
    frames = await read_frames(b_receive)
    assert [frame[0] for frame in frames] == [0, 7]  # HELLO, then GOAWAY saying why
    assert frames[1][1] == ErrorCode.CANCELLED
    assert "no HELLO" in frames[1][2]


async def test_peer_garbage_ends_the_session_and_every_waiter_gets_the_protocol_error(
    peer_and_session_transport: tuple[RawPeer, Transport],
) -> None:
    peer, transport = peer_and_session_transport
    errors: list[BaseException] = []

    async def expect_broken(op: Any) -> None:
        with pytest.raises(SessionBroken) as caught:
            await op()
        errors.append(caught.value)

    async with open_session(*transport, Role.INITIATOR) as session:
        receiver, _ = session.pipe()
        sender = await session.open_sender()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(expect_broken, session.accept)
            nursery.start_soon(expect_broken, receiver.receive)
            nursery.start_soon(session.wait_closed)
            await trio.testing.wait_all_tasks_blocked()
            await peer.send_raw(b"\x00\x00\x00\x03\xc1\xc1\xc1")  # 0xc1 is never msgpack
        assert session.closed
        with pytest.raises(SessionBroken):
            await sender.send("too late")
    assert len(errors) == 2
    for error in errors:
        assert isinstance(error, SessionBroken)
        assert error.code is ErrorCode.PROTOCOL_ERROR
        assert "frame at byte" in str(error)
    goaway = await peer.read_until(GoAwayReceived)
    assert goaway.code is ErrorCode.PROTOCOL_ERROR
    assert "frame at byte" in goaway.reason
    assert isinstance((await peer.read_to_eof())[-1], SessionEnded)


@settings(max_examples=100, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=300))
async def test_any_bytes_from_the_peer_end_the_session_cleanly_and_nothing_hangs(
    garbage: bytes,
) -> None:
    a, b = memory_transport()
    peer = RawPeer(b)
    await peer.send_hello()
    await peer.send_raw(garbage)
    await peer.send.aclose()
    async with open_session(*a, Role.INITIATOR) as session:
        with pytest.raises(SessionClosed):
            while True:  # garbage may happen to open channels; any error is SessionClosed
                await session.accept()
        await session.wait_closed()
        assert isinstance(session.close_reason, SessionClosed)


async def test_peer_eof_is_session_closed_not_end_of_channel_after_the_buffered_messages(
    peer_and_session_transport: tuple[RawPeer, Transport],
) -> None:
    peer, transport = peer_and_session_transport
    async with open_session(*transport, Role.INITIATOR) as session:
        await peer.read_until(HelloReceived)
        channel, frame = peer.conn.open()
        await peer.send_raw(frame + peer.conn.send_message(channel, "last words"))
        await peer.send.aclose()
        receiver = await session.accept()
        await session.wait_closed()
        assert await receiver.receive() == "last words"
        with pytest.raises(SessionClosed, match="closed the connection without GOAWAY") as caught:
            await receiver.receive()
        assert not isinstance(caught.value, EndOfChannel | SessionBroken)


async def test_goaway_stops_new_channels_but_existing_ones_finish(
    peer_and_session_transport: tuple[RawPeer, Transport],
) -> None:
    peer, transport = peer_and_session_transport
    async with open_session(*transport, Role.INITIATOR) as session:
        await peer.read_until(HelloReceived)
        channel, frame = peer.conn.open()
        await peer.send_raw(frame + peer.conn.goaway(ErrorCode.NO_ERROR, "draining"))
        receiver = await session.accept()
        with pytest.raises(SessionClosed, match=r"GOAWAY \(NO_ERROR\): draining"):
            await session.accept()
        with pytest.raises(SessionClosed, match="no new channels"):
            await session.open_sender()
        await peer.send_raw(
            peer.conn.send_message(channel, "still here") + peer.conn.close(channel)
        )
        assert [m async for m in receiver] == ["still here"]
        assert not session.closed
        await peer.send.aclose()
        await session.wait_closed()
        reason = session.close_reason
        assert reason is not None and "GOAWAY (NO_ERROR): draining" in str(reason)


async def test_a_transport_that_fails_while_sending_ends_the_session_with_the_reason(
    peer_and_session_transport: tuple[RawPeer, Transport],
) -> None:
    peer, transport = peer_and_session_transport
    async with open_session(*transport, Role.INITIATOR) as session:
        # The handshake may return before the writer has flushed our HELLO (the
        # peer's arrived first); let it land, or closing now fails that write
        # instead of the one this test is about.
        await peer.read_until(HelloReceived)
        await peer.receive.aclose()  # the peer vanished: writing now fails
        sender = await session.open_sender()
        await session.wait_closed()
        with pytest.raises(SessionClosed, match="transport failed while sending") as caught:
            await sender.send("anyone?")
        assert not isinstance(caught.value, SessionBroken)


async def test_a_peer_vanishing_mid_frame_is_a_truncation_error(
    peer_and_session_transport: tuple[RawPeer, Transport],
) -> None:
    peer, transport = peer_and_session_transport
    async with open_session(*transport, Role.INITIATOR) as session:
        await peer.send_raw(b"\x00\x00\x01\x00abc")  # 3 of 256 announced bytes
        await peer.send.aclose()
        await session.wait_closed()
        reason = session.close_reason
        assert isinstance(reason, SessionBroken)
        assert reason.code is ErrorCode.TRUNCATED
        assert "EOF after 3 of 256 bytes" in str(reason)


async def test_leaving_the_block_sends_goaway_no_error_and_closes_the_transport(
    peer_and_session_transport: tuple[RawPeer, Transport],
) -> None:
    peer, transport = peer_and_session_transport
    async with open_session(*transport, Role.INITIATOR) as session:
        assert session.version == 1
        assert session.peer_hello["max_frame"] == 1 << 20
    goaway = await peer.read_until(GoAwayReceived)
    assert (goaway.code, goaway.reason) == (ErrorCode.NO_ERROR, "")
    assert isinstance((await peer.read_to_eof())[-1], SessionEnded)
    assert session.closed
    with pytest.raises(SessionClosed, match="closed by this side"):
        await session.open_sender()


async def test_an_exception_in_the_block_comes_out_as_itself_and_the_peer_sees_why(
    peer_and_session_transport: tuple[RawPeer, Transport],
) -> None:
    peer, transport = peer_and_session_transport
    with pytest.raises(ValueError, match="boom"):
        async with open_session(*transport, Role.INITIATOR):
            raise ValueError("boom")
    goaway = await peer.read_until(GoAwayReceived)
    assert (goaway.code, goaway.reason) == (ErrorCode.INTERNAL_ERROR, "ValueError: boom")


async def test_cancelling_the_code_using_the_session_still_tells_the_peer(
    peer_and_session_transport: tuple[RawPeer, Transport],
) -> None:
    peer, transport = peer_and_session_transport
    with trio.CancelScope() as scope:
        async with open_session(*transport, Role.INITIATOR) as session:
            sender = await session.open_sender()
            await sender.send("queued before the cancel")
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    await peer.read_to_eof()
    kinds = [type(event).__name__ for event in peer.events]
    assert kinds == [
        "HelloReceived",
        "ChannelOpened",
        "MessageReceived",
        "GoAwayReceived",
        "SessionEnded",
    ]
    goaway = peer.events[3]
    assert isinstance(goaway, GoAwayReceived)
    assert goaway.code is ErrorCode.CANCELLED


async def test_closing_a_session_wakes_every_waiter_on_both_sides() -> None:
    async with session_pair(b_options={"window": 10}) as (a, b):
        stuck = await a.open_sender()
        await stuck.send("fills the 10-byte window")
        b_receiver = await b.accept()
        a_receiver, _ = a.pipe()
        outcomes: list[str] = []

        async def expect(op: Any, match: str) -> None:
            with pytest.raises(SessionClosed, match=match):
                await op()
            outcomes.append(match)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(expect, a.accept, "closed by this side")
            nursery.start_soon(expect, a_receiver.receive, "closed by this side")
            nursery.start_soon(expect, lambda: stuck.send("waits for credit"), "by this side")
            nursery.start_soon(expect, b.accept, "GOAWAY")
            await trio.testing.wait_all_tasks_blocked()
            await a.aclose()
        assert len(outcomes) == 4
        # b still gets what had arrived, then learns the session ended.
        assert await b_receiver.receive() == "fills the 10-byte window"
        with pytest.raises(SessionClosed, match="GOAWAY"):
            await b_receiver.receive()
