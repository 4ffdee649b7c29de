"""Shared helpers for the session tests: connected session pairs, a raw wire peer,
a counting stream wrapper, and a real subprocess wired to FD 3/4."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio.testing

from plugin_sdk.session import Session, open_session
from plugin_sdk.wire import Connection, Event, Role, SessionEnded

Transport = tuple[trio.abc.ReceiveStream, trio.abc.SendStream]
"""One side's (receive, send) streams."""

FD34_PEER = Path(__file__).with_name("fd34_peer.py")


def memory_transport(*, lockstep: bool = False) -> tuple[Transport, Transport]:
    """Two connected transports over in-memory streams: what one sends the other receives.

    ``lockstep`` uses trio's unbuffered streams (``send_all`` waits for the reader).
    """
    make = (
        trio.testing.lockstep_stream_one_way_pair
        if lockstep
        else trio.testing.memory_stream_one_way_pair
    )
    a_send, b_receive = make()
    b_send, a_receive = make()
    return (a_receive, a_send), (b_receive, b_send)


class CountingSendStream(trio.abc.SendStream):
    """A SendStream wrapper that counts ``send_all`` calls and bytes, to observe batching."""

    def __init__(self, inner: trio.abc.SendStream) -> None:
        self.inner = inner
        self.calls = 0
        self.bytes = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Count, then forward."""
        self.calls += 1
        self.bytes += len(data)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Forward."""
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Forward."""
        await self.inner.aclose()


class BlockedSendStream(trio.abc.SendStream):
    """A SendStream whose ``send_all`` never completes until ``release`` is set: a peer
    that stopped reading. Records what it was asked to send."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.pending = 0
        self.closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Park (cancellably) until released."""
        self.pending += len(data)
        await self.release.wait()

    async def wait_send_all_might_not_block(self) -> None:
        """Park until released."""
        await self.release.wait()

    async def aclose(self) -> None:
        """Mark closed."""
        self.closed = True
        await trio.lowlevel.checkpoint()


@asynccontextmanager
async def session_pair(
    a: Transport | None = None,
    b: Transport | None = None,
    *,
    a_options: dict[str, Any] | None = None,
    b_options: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[Session, Session]]:
    """Two live sessions connected to each other: ``(initiator, responder)``.

    Over fresh memory transports unless ``a`` and ``b`` are given. ``options`` go to
    both :func:`open_session` calls, ``a_options``/``b_options`` to one side. Both
    sessions close (GOAWAY, streams closed) when the block exits; an exception from
    the block comes out as itself, not wrapped in an ExceptionGroup.
    """
    if a is None or b is None:
        a, b = memory_transport()
    sessions: list[Session] = []
    both_ready = trio.Event()
    done = trio.Event()

    async def run(transport: Transport, role: Role, extra: dict[str, Any] | None) -> None:
        async with open_session(*transport, role, **{**options, **(extra or {})}) as session:
            sessions.append(session)
            if len(sessions) == 2:
                both_ready.set()
            await done.wait()

    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, a, Role.INITIATOR, a_options)
        nursery.start_soon(run, b, Role.RESPONDER, b_options)
        await both_ready.wait()
        by_role = sorted(sessions, key=lambda s: s.role is Role.RESPONDER)
        try:
            yield by_role[0], by_role[1]
        except BaseException as exc:
            failure = exc
            nursery.cancel_scope.cancel()
        finally:
            done.set()
    if failure is not None:
        raise failure


class RawPeer:
    """The far end of a transport driven by a bare wire :class:`Connection`, so a test
    can send exact (or broken) bytes and see exactly what the session wrote."""

    def __init__(self, transport: Transport, role: Role = Role.RESPONDER, **limits: Any) -> None:
        self.receive, self.send = transport
        self.conn = Connection(role, **limits)
        self.events: list[Event] = []

    async def send_hello(self) -> None:
        """Send our HELLO."""
        await self.send.send_all(self.conn.hello())

    async def send_raw(self, data: bytes) -> None:
        """Send arbitrary bytes."""
        await self.send.send_all(data)

    async def read_until(self, kind: type[Any]) -> Any:
        """Read and decode until an event of ``kind`` arrives (kept in ``events``); return it."""
        while True:
            for event in self.events:
                if isinstance(event, kind):
                    self.events.remove(event)
                    return event
            data = await self.receive.receive_some(65536)
            new = self.conn.receive_data(bytes(data))
            self.events.extend(new)
            if not data and not any(isinstance(e, kind) for e in new):
                raise AssertionError(f"EOF before {kind.__name__}; got {self.events}")

    async def read_to_eof(self) -> list[Event]:
        """Read until the session closed its side; return every event (ending SessionEnded)."""
        while not any(isinstance(e, SessionEnded) for e in self.events):
            data = await self.receive.receive_some(65536)
            self.events.extend(self.conn.receive_data(bytes(data)))
        return self.events


@asynccontextmanager
async def spawn_fd34(
    argv: Sequence[str],
) -> AsyncIterator[tuple[trio.Process, trio.abc.ReceiveStream, trio.abc.SendStream]]:
    """Run ``argv`` as a real child process that reads FD 3 and writes FD 4.

    Yields ``(process, receive, send)``: our ends of the two pipes. On exit the pipes
    are closed and the child is waited for (killed if it lingers).
    """
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    # Move the child's ends above 4 (close-on-exec) so that dup2 onto 3 and 4 in the
    # child cannot overwrite one with the other; only the dup2 copies survive exec.
    child_read = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
    child_write = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(to_child_r)
    os.close(from_child_w)

    def wire_fds() -> None:
        os.dup2(child_read, 3)  # dup2 makes 3 and 4 inheritable
        os.dup2(child_write, 4)

    try:
        process = await trio.lowlevel.open_process(
            list(argv),
            preexec_fn=wire_fds,
            close_fds=False,  # non-inheritable fds close at exec anyway (PEP 446)
            env={**os.environ, "CHANROUTER_PLUGIN": "1"},
        )
    finally:
        os.close(child_read)
        os.close(child_write)
    receive = trio.lowlevel.FdStream(from_child_r)
    send = trio.lowlevel.FdStream(to_child_w)
    try:
        yield process, receive, send
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(send)
            await trio.aclose_forcefully(receive)
            with trio.move_on_after(30):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


def fd34_peer_argv(*args: str) -> list[str]:
    """The command that runs tests/fd34_peer.py with this interpreter."""
    return [sys.executable, str(FD34_PEER), *args]
