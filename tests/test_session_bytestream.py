"""Byte-stream channels: trio's own stream conformance checks, and content integrity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from session_helpers import session_pair

from plugin_sdk.session import ByteStreamReader, ByteStreamWriter, Session

WINDOW = 4096

StreamMaker = Callable[[], Awaitable[tuple[ByteStreamWriter, ByteStreamReader]]]


def stream_maker(a: Session, b: Session) -> StreamMaker:
    """Make a fresh byte stream from ``a`` to ``b`` over their live sessions."""

    async def make() -> tuple[ByteStreamWriter, ByteStreamReader]:
        writer, ref = a.byte_stream()
        async with await a.open_sender() as control:
            await control.send(ref)
        reader = await (await b.accept()).receive()
        assert isinstance(reader, ByteStreamReader)
        return writer, reader

    return make


def clogged_stream_maker(a: Session, b: Session) -> StreamMaker:
    """A stream whose writer has used up its credit: the next send_all waits for a read."""
    make = stream_maker(a, b)

    async def clogged() -> tuple[ByteStreamWriter, ByteStreamReader]:
        writer, reader = await make()
        await writer.send_all(b"x" * WINDOW)  # one frame: overdraws the credit
        return writer, reader

    return clogged


async def test_byte_streams_pass_trios_one_way_stream_conformance_checks() -> None:
    async with session_pair(window=WINDOW) as (a, b):
        await trio.testing.check_one_way_stream(stream_maker(a, b), clogged_stream_maker(a, b))


async def test_closing_the_writer_before_the_reference_is_sent_gives_the_reader_eof() -> None:
    async with session_pair() as (a, b):
        writer, ref = a.byte_stream()
        await writer.aclose()
        async with await a.open_sender() as control:
            await control.send(ref)
        reader = await (await b.accept()).receive()
        assert await reader.receive_some() == b""


@settings(max_examples=50, deadline=None)
@given(
    pieces=st.lists(st.binary(max_size=9000), max_size=12),
    read_sizes=st.lists(st.integers(1, 10_000), min_size=1, max_size=10),
    window=st.integers(1, 20_000),
)
async def test_any_writes_arrive_as_the_same_bytes_whatever_the_read_sizes(
    pieces: list[bytes], read_sizes: list[int], window: int
) -> None:
    # max_frame 4096 forces large writes into several frames.
    async with session_pair(window=window, max_frame=4096) as (a, b):
        writer, reader = await stream_maker(a, b)()
        async with trio.open_nursery() as nursery:

            async def write() -> None:
                async with writer:
                    for piece in pieces:
                        await writer.send_all(piece)

            nursery.start_soon(write)
            received = bytearray()
            index = 0
            while chunk := await reader.receive_some(read_sizes[index % len(read_sizes)]):
                assert len(chunk) <= read_sizes[index % len(read_sizes)]
                received += chunk
                index += 1
        assert bytes(received) == b"".join(pieces)
