"""The host side of the Session benchmark: trio, ``plugin_sdk.session``, a real FD 3/4 child.

It drives ``bench/session_echo.py`` the two ways a router drives a plugin: a stream
of messages on one top-level channel each way, or calls that each carry a nested
reply channel. Either way at most ``window`` messages are in flight.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from plugin_sdk.session import EndOfChannel, Receiver, Sender, Session, open_session
from plugin_sdk.wire import Role

from .fdpipes import spawn_fd34
from .raw_driver import PipelinedRun
from .stats import slice_size

__all__ = ["EchoPeer", "open_echo_peer", "run_calls", "run_channel", "session_echo_argv"]


def session_echo_argv(mode: str) -> list[str]:
    """The command line of the Session echo child in ``mode`` (``channel`` or ``request``)."""
    return [sys.executable, str(Path(__file__).with_name("session_echo.py")), mode]


@dataclass(slots=True)
class EchoPeer:
    """A Session to a running echo child, with the top-level channels it needs."""

    session: Session
    pid: int
    """The child's process id."""
    outbound: Sender
    """Our top-level channel to the child (messages or calls)."""
    inbound: Receiver | None
    """The child's top-level channel back (``channel`` mode only)."""


@asynccontextmanager
async def open_echo_peer(mode: str) -> AsyncIterator[EchoPeer]:
    """Spawn the Session echo child in ``mode`` and open the session and channels."""
    child = spawn_fd34(session_echo_argv(mode))
    try:
        to_child, from_child = child.release()
        receive = trio.lowlevel.FdStream(from_child)
        send = trio.lowlevel.FdStream(to_child)
        try:
            async with open_session(receive, send, Role.INITIATOR) as session:
                outbound = await session.open_sender()
                inbound = await session.accept() if mode == "channel" else None
                async with outbound:
                    yield EchoPeer(session, child.proc.pid, outbound, inbound)
        finally:
            await receive.aclose()
            await send.aclose()
    finally:
        child.close()


async def run_channel(
    peer: EchoPeer, messages: Sequence[dict[str, Any]], window: int, slices: int = 10
) -> PipelinedRun:
    """Stream ``messages`` out on one channel and count echoes on the other."""
    inbound = peer.inbound
    if inbound is None:
        raise ValueError("run_channel needs a peer opened in 'channel' mode")
    count = len(messages)
    per_slice = slice_size(count, slices, window)
    room = trio.Semaphore(window)
    clock = time.perf_counter_ns
    start = clock()
    marks = [start]

    async def collect() -> None:
        for done in range(1, count + 1):
            await inbound.receive()
            room.release()
            if done % per_slice == 0:
                marks.append(clock())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect)
        send = peer.outbound.send
        for message in messages:
            await room.acquire()
            await send(message)
    return PipelinedRun(count, clock() - start, tuple(marks), per_slice)


async def _call(peer: EchoPeer, message: dict[str, Any]) -> Any:
    receiver, ref = peer.session.pipe()
    await peer.outbound.send({"message": message, "reply": ref})
    reply = await receiver.receive()
    try:
        await receiver.receive()
    except EndOfChannel:
        return reply
    raise RuntimeError("the echo peer sent more than one reply to a call")


async def run_calls(
    peer: EchoPeer, messages: Sequence[dict[str, Any]], window: int, slices: int = 10
) -> tuple[PipelinedRun, list[int]]:
    """Send each message as a call with its own reply channel, ``window`` workers at once.

    Returns the run and every call's duration in ns (with ``window=1`` these are
    one-at-a-time round trips).
    """
    count = len(messages)
    per_slice = slice_size(count, slices, window)
    todo = iter(messages)
    clock = time.perf_counter_ns
    durations: list[int] = []
    start = clock()
    marks = [start]

    async def worker() -> None:
        for message in todo:
            t0 = clock()
            await _call(peer, message)
            now = clock()
            durations.append(now - t0)
            if len(durations) % per_slice == 0:
                marks.append(now)

    async with trio.open_nursery() as nursery:
        for _ in range(min(window, count)):
            nursery.start_soon(worker)
    return PipelinedRun(count, clock() - start, tuple(marks), per_slice), durations
