"""One running incarnation of a subprocess plugin: its process, session and calls in flight.

The supervisor (:mod:`._handle`) makes one per (re)start. ``die(reason)`` is the single
way an incarnation ends abnormally: it records the first reason, fails every call in
flight with :class:`PluginCrashed`, and wakes the supervisor, which kills and reaps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from plugin_sdk import Message, PluginInfo, Reply
from plugin_sdk.app import AppProtocolError, Call, Ping, check_pong, parse_reply
from plugin_sdk.session import ChannelResetError, EndOfChannel, Receiver, Sender, Session
from plugin_sdk.spawn import PluginProcess

from ._errors import ExecError, PluginCrashed, PluginProtocolError
from ._tap import TapStream

__all__ = ["Live"]


class Live:
    """A spawned plugin process and, once it handshook, its session and calls channel."""

    def __init__(self, process: PluginProcess, label: str) -> None:
        self.process = process
        self.label = label
        """How log lines and errors name this plugin (its name or command)."""
        self.tap = TapStream(process.from_plugin)
        self.stderr_tail: deque[str] = deque(maxlen=10)
        self.session: Session | None = None
        self.calls: Sender | None = None
        self.info: PluginInfo | None = None
        self.death: str | None = None
        """Why this incarnation ended abnormally; None while healthy or stopping cleanly."""
        self.wake = trio.Event()
        """Set when the supervisor must act: a death, or a stop/restart request."""
        self.stop_requested = False
        self.ready = False
        """The handshake completed."""
        self.start_scope = trio.CancelScope()
        """Wraps the start (spawn to handshake): a death or stop before ready cancels it."""
        self.suspect = trio.Event()
        """Set when a call was abandoned (timed out): the hang check pings."""
        self.outputs_open = 2
        """stdout and stderr forwarders still running."""
        self.outputs_done = trio.Event()
        self._inflight: set[trio.CancelScope | Receiver] = set()
        """What :meth:`die` must interrupt: guard scopes, and the reply channels of calls."""
        self._idle = trio.Event()
        self._idle.set()

    @property
    def inflight(self) -> int:
        """Calls sent and not yet answered."""
        return len(self._inflight)

    def die(self, reason: str) -> None:
        """End this incarnation: fail calls in flight, wake the supervisor (first reason wins)."""
        if self.death is None:
            self.death = reason
        for waiting in list(self._inflight):
            if isinstance(waiting, trio.CancelScope):
                waiting.cancel()
            elif not waiting.buffered:
                waiting.close()  # its call wakes up with ClosedResourceError
            # else: its reply arrived before the death: the call takes it and returns.
        if not self.ready:
            self.start_scope.cancel()
        self.wake.set()

    def request_stop(self) -> None:
        """Ask the supervisor to end this incarnation gracefully (calls in flight finish)."""
        self.stop_requested = True
        if not self.ready:
            self.start_scope.cancel()
        self.wake.set()

    @contextmanager
    def guard(self) -> Iterator[trio.CancelScope]:
        """A cancel scope that :meth:`die` cancels (for waits on the plugin)."""
        scope = trio.CancelScope()
        if self.death is not None:
            scope.cancel()
        self._enter(scope)
        try:
            with scope:
                yield scope
        finally:
            self._leave(scope)

    def _enter(self, waiting: trio.CancelScope | Receiver) -> None:
        if not self._inflight:
            self._idle = trio.Event()
        self._inflight.add(waiting)

    def _leave(self, waiting: trio.CancelScope | Receiver) -> None:
        self._inflight.discard(waiting)
        if not self._inflight:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until no call is in flight."""
        while self._inflight:
            await self._idle.wait()

    def _crashed(self) -> PluginCrashed:
        return PluginCrashed(f"plugin {self.label} {self.death or 'went away'}")

    async def call(self, message: Message) -> Reply:
        """Send ``message`` and wait for the plugin's reply (see ExecHandle.call).

        The common path costs one wait (for the reply) and no cancel scope: the call
        goes out without waiting when there is credit and buffer space, :meth:`die`
        interrupts the wait by closing the reply channel, and the channel is released
        with a synchronous close. Only a send that must wait is guarded by a scope.
        """
        session, calls = self.session, self.calls
        if session is None or calls is None or self.death is not None:
            raise self._crashed()
        receiver, ref = session.pipe()
        request = Call(message, ref).to_wire()
        self._enter(receiver)
        abandoned = True
        try:
            try:
                calls.send_nowait(request)
            except trio.WouldBlock:
                with self.guard():
                    await calls.send(request)
                if self.death is not None:  # die() cancelled the guard
                    abandoned = False
                    raise self._crashed() from None
            try:
                payload = await receiver.receive()
            except trio.ClosedResourceError:
                # Only die() closes a reply channel under a waiting call.
                abandoned = False
                raise self._crashed() from None
            abandoned = False
            return self._parse(payload)
        except EndOfChannel:
            abandoned = False
            self.die(f"closed a reply channel without answering (message {message.id})")
            raise PluginProtocolError(
                f"plugin {self.label} closed the reply channel without answering"
            ) from None
        except ChannelResetError as exc:
            abandoned = False
            # The plugin reset this reply channel: it refused this one call.
            raise ExecError(f"plugin {self.label} refused the call: {exc.reason}") from None
        except trio.BrokenResourceError:
            abandoned = False
            # The session ended under us: the supervisor is finding out why (an exit
            # status says more than "EOF"); wait for it, within reason.
            with trio.move_on_after(2.0):
                await self.wake.wait()
            raise self._crashed() from None
        finally:
            self._leave(receiver)
            receiver.close()  # RESETs it if unanswered: a late reply is dropped
            if abandoned:
                # Cancelled from outside (the engine's per-call timeout): maybe slow, maybe hung.
                self.suspect.set()

    def _parse(self, payload: object) -> Reply:
        try:
            return parse_reply(payload)
        except AppProtocolError as exc:
            self.die(f"sent a malformed reply: {exc}")
            raise PluginProtocolError(
                f"plugin {self.label} sent a malformed reply: {exc}"
            ) from None

    async def ping(self, timeout: float) -> bool:
        """Whether the plugin answers a ping within ``timeout`` seconds."""
        if self.session is None or self.calls is None:
            return False
        receiver, ref = self.session.pipe()
        try:
            with trio.move_on_after(timeout):
                await self.calls.send(Ping(ref).to_wire())
                check_pong(await receiver.receive())
                return True
        except AppProtocolError as exc:
            self.die(f"answered a ping with {exc}")
        except (trio.BrokenResourceError, trio.EndOfChannel):
            pass
        finally:
            with trio.CancelScope(shield=True):
                await receiver.aclose()
        return False
