"""Shared helpers for the admin server and routerctl tests.

- :func:`admin_rig`: a real Router with real plugins and an AdminServer on a real unix
  socket, inside the test's trio run.
- :class:`ThreadedDaemon`: the same in a thread with its own trio run, for routerctl
  tests (routerctl calls ``trio.run`` itself, which cannot nest in the test's run).
- :func:`connect_as_uid`: a forked child that drops to another uid, connects, sends
  a HELLO and returns every byte the server sent back.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

import router
from plugin_sdk import Message, Plugin, handles
from plugin_sdk.wire import Connection, Event, Role
from router.admin.server import AdminServer
from router.events import EventBus

__all__ = [
    "AdminRig",
    "Tag",
    "ThreadedDaemon",
    "admin_rig",
    "connect_as_uid",
    "decode_from_server",
]


class Tag(Plugin):
    """Test plugin: appends its option to ``body["tags"]`` of every ``t.*`` message."""

    name = "tag"

    def configure(self, option: str) -> None:
        """Any option is the label to append."""

    @handles("t.*")
    def tag(self, msg: Message) -> Message:
        """Record that this instance saw the message."""
        body = dict(msg.body or {})
        body["tags"] = [*body.get("tags", []), self.option]
        return Message(msg.type, body, id=msg.id, headers=msg.headers)


def tags(name: str, label: str | None = None) -> Tag:
    """A :class:`Tag` instance called ``name`` that tags with ``label`` (default: name)."""
    return Tag(label or name, name=name)


@dataclass
class AdminRig:
    """A served router: the socket path, the router, the server and its event bus."""

    path: str
    router: Any
    server: AdminServer
    events: EventBus


@asynccontextmanager
async def admin_rig(path: str, plugins: Sequence[Any] = ()) -> AsyncIterator[AdminRig]:
    """Serve a router with ``plugins`` on ``path`` until the block ends."""
    events = EventBus()
    async with router.open(plugins=list(plugins)) as r, trio.open_nursery() as nursery:
        server = AdminServer(r, events=events)
        await nursery.start(server.serve, path)
        yield AdminRig(path, r, server, events)
        nursery.cancel_scope.cancel()


class ThreadedDaemon:
    """An :func:`admin_rig` in a thread of its own; a context manager."""

    def __init__(self, path: str, plugins: Sequence[Any] = ()) -> None:
        self.path = path
        self._plugins = plugins
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self.rig: AdminRig | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def serve() -> None:
            with trio.CancelScope() as scope:
                self._scope = scope
                self._token = trio.lowlevel.current_trio_token()
                async with admin_rig(self.path, self._plugins) as rig:
                    self.rig = rig
                    self._ready.set()
                    await rig.server.shutdown_requested.wait()

        try:
            trio.run(serve)
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()

    def run_sync(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` in the daemon's trio thread (e.g. to publish an event)."""
        assert self._token is not None
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def run(self, fn: Any, *args: Any) -> Any:
        """Run ``await fn(*args)`` in the daemon's trio thread."""
        assert self._token is not None
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def __enter__(self) -> ThreadedDaemon:
        self._thread.start()
        self._ready.wait(30)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None and self._thread.is_alive():
            scope = self._scope
            assert scope is not None
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(scope.cancel, trio_token=self._token)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the daemon thread did not stop"

    @property
    def stopped(self) -> bool:
        """Whether the daemon's trio run has ended."""
        return not self._thread.is_alive()

    def wait_stopped(self, timeout: float = 30) -> bool:
        """Wait for the daemon to end by itself (after ``shutdown``)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _child_connect(path: str, uid: int, hello: bytes, out: int) -> None:
    """In the forked child: become ``uid``, connect, say HELLO, copy replies to ``out``."""
    try:
        os.setgid(uid)
        os.setuid(uid)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(20)
            sock.connect(path)
            sock.sendall(hello)
            while chunk := sock.recv(65536):
                os.write(out, chunk)
        os._exit(0)
    except BaseException as exc:
        os.write(out, f"CHILD-ERROR {type(exc).__name__}: {exc}".encode())
        os._exit(1)


async def connect_as_uid(path: str, uid: int) -> tuple[int, bytes]:
    """Fork a child that connects to ``path`` as ``uid``; return its exit status and the bytes.

    The child uses only what is already imported (a fresh interpreter would not be
    readable by an unprivileged uid here), and plain blocking sockets.
    """
    hello = Connection(Role.INITIATOR).hello()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        _child_connect(path, uid, hello, write_end)
    os.close(write_end)
    chunks: list[bytes] = []
    async with trio.lowlevel.FdStream(read_end) as stream:
        while chunk := await stream.receive_some(65536):
            chunks.append(chunk)
    _, status = await trio.to_thread.run_sync(os.waitpid, pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks)


def decode_from_server(data: bytes) -> list[Event]:
    """The events a client would see for ``data`` sent by an admin server, EOF included."""
    conn = Connection(Role.INITIATOR)
    conn.hello()
    return conn.receive_data(data) + conn.receive_data(b"")
