"""Serve a plugin without trio: one blocking loop over FD 3/4, for plugins that never wait.

Most plugins answer each message with plain code: their handlers are ordinary
functions and they keep the default start and stop hooks. For them an event loop
buys nothing and costs a lot: importing trio is most of a Python plugin's start-up
(hundreds of milliseconds), and its scheduling most of the plugin side's cost per
message. This loop speaks the same protocol through the sans-IO wire core, the way
the raw msgpack echo the benchmarks compare against works: read what has arrived,
handle every call of every batch in it in arrival order, send all their answers as
one ``replies`` message on the control channel, and write everything with one write.

What a plugin sees is the same as under :func:`~plugin_sdk.runner.serve`: calls in
the order they were sent, one at a time (a handler that never awaits holds trio's
loop too, so it never overlapped another there either), the same replies, logs and
exit codes. Pings are answered in turn, between calls, which is also when a trio
runner would get to them while a handler that never awaits is running.
:func:`serves_without_trio` says which plugin classes qualify; the rest run on trio.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import select
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from .._handlers import HandlerTable
from ..app import (
    ANSWERS_NESTING,
    AppProtocolError,
    CallBatch,
    Cancel,
    Fail,
    Ping,
    Ready,
    UnknownRequest,
    answer_entry,
    answers_to_wire,
    message_nesting,
    parse_request,
    pong,
)
from ..message import Message
from ..plugin import Plugin
from ..reply import Reply, Verdict, error
from ..wire import (
    ChannelClosed,
    ChannelOpened,
    ChannelRef,
    ChannelReset,
    Connection,
    ErrorCode,
    Event,
    GoAwayReceived,
    HelloReceived,
    LocalProtocolError,
    MessageReceived,
    RemoteProtocolError,
    Role,
    SessionEnded,
)
from ._answers import Answer, instead_of_unsendable
from ._exits import EXIT_FAILED, EXIT_OK, ServablePlugin

__all__ = ["serve_blocking", "serves_without_trio"]

log = logging.getLogger("chanrouter.runner")

_READ_SIZE: Final = 1 << 16
_CONTINUE: Final = Verdict.CONTINUE


def serves_without_trio(plugin_class: object) -> bool:
    """Whether :func:`serve_blocking` can serve instances of ``plugin_class``.

    True for a :class:`~plugin_sdk.Plugin` subclass whose handlers are all plain
    functions (not ``async def``) and which keeps the SDK's own ``handle``, ``start``
    and ``stop``: then no part of serving it ever waits on anything.
    """
    if not (isinstance(plugin_class, type) and issubclass(plugin_class, Plugin)):
        return False
    for hook in ("handle", "start", "stop"):
        if getattr(plugin_class, hook) is not getattr(Plugin, hook):
            return False
    table: HandlerTable = plugin_class._handler_table
    return not any(inspect.iscoroutinefunction(h.function) for h in table.handlers)


class _Stop(Exception):
    """The session is over; ``code`` is the exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Link:
    """The connection and the two pipe ends: frames are queued, then written at once."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        # The host's ends may have been made non-blocking by whoever created them.
        os.set_blocking(read_fd, True)
        os.set_blocking(write_fd, True)
        self.conn = Connection(Role.RESPONDER)
        self.out = bytearray(self.conn.hello())
        self.writable = True
        self.broken = False
        """The peer broke the protocol; our GOAWAY saying so is queued (and is the last)."""

    def flush(self) -> None:
        """Write everything queued; a vanished host ends the session quietly."""
        if not self.out or not self.writable:
            self.out.clear()
            return
        view = memoryview(self.out)
        try:
            while view:
                view = view[os.write(self.write_fd, view) :]
        except OSError as exc:  # BrokenPipeError, mostly: the host went away
            self.writable = False
            log.debug("the host stopped reading: %s", exc)
        finally:
            view.release()
            self.out.clear()

    def receive(self, deadline: float | None = None) -> list[Event]:
        """Block until bytes arrive (or ``deadline``, a ``time.monotonic()`` value, passes)
        and return the events they complete; queue what the wire wants sent."""
        if deadline is not None:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.read_fd], [], [], max(0.0, remaining))
            if not ready:
                raise TimeoutError
        try:
            data = os.read(self.read_fd, _READ_SIZE)
        except OSError as exc:
            log.debug("reading from the host failed: %s", exc)
            data = b""
        try:
            events = self.conn.receive_data(data)
        except RemoteProtocolError as exc:
            log.error("session broke: protocol error: %s", exc)
            self.out += self.conn.goaway(exc.code, str(exc))
            self.broken = True
            raise _Stop(EXIT_FAILED) from None
        self.out += self.conn.data_to_send()
        return events

    def goaway(self) -> None:
        """Queue GOAWAY(NO_ERROR) unless the connection is already dead."""
        if self.broken:
            return
        with contextlib.suppress(LocalProtocolError, RemoteProtocolError):
            self.out += self.conn.goaway(ErrorCode.NO_ERROR, "")


def _step(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that must finish without waiting; return its value."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("it waited on an event loop; serve this plugin with trio")


def _handle(plugin: ServablePlugin, message: Message) -> Reply:
    try:
        pending = plugin.handle(message)
    except Exception as exc:
        log.exception("handle() raised on message %s", message.id)
        return error(f"{type(exc).__name__}: {exc}")
    return _handle_pending(message, pending)


def _handler(plugin: ServablePlugin) -> Callable[[Message], Message | Reply | Awaitable[Reply]]:
    """How to answer one message: :meth:`Plugin.answer_now` when there is one.

    For a :class:`~plugin_sdk.Plugin` that keeps the SDK's ``handle`` (as any plugin
    :func:`serves_without_trio` does), ``answer_now`` answers exactly as ``handle``
    would (a lone message as it is, for ``replace(message)``), without making a
    coroutine to step: a good part of the cost per call. An awaitable (for an async
    handler) goes through :func:`_handle_pending`.
    """
    if not isinstance(plugin, Plugin) or type(plugin).handle is not Plugin.handle:
        # Not ours, or it replaces handle(): answer_now would bypass its own.
        return lambda message: _handle(plugin, message)
    return plugin.answer_now


def _handle_pending(message: Message, pending: Any) -> Reply:
    # handle() or answer_now gave an awaitable (a coroutine of the Plugin class): step it.
    try:
        reply = _step(pending)
    except Exception as exc:
        log.exception("handle() raised on message %s", message.id)
        return error(f"{type(exc).__name__}: {exc}")
    if not isinstance(reply, Reply):
        return error(f"handle() returned {type(reply).__name__}, not a Reply")
    return reply


class _Server:
    """The session's state from the ready handshake on."""

    def __init__(self, link: _Link, plugin: ServablePlugin, control: int) -> None:
        self.link = link
        self.plugin = plugin
        self.handle = _handler(plugin)
        self.control = control
        self.calls: int | None = None
        self.answers: list[Answer] = []
        """Answers not sent yet: those of this turn, or earlier ones waiting for credit."""
        self.answers_nesting: int | None = 0
        """How deep the deepest message of :attr:`answers` nests (``message_nesting``;
        0: none has a message), so their ``replies`` nests ``ANSWERS_NESTING`` more;
        None when not known (answers left over from a turn that ran out of credit)."""

    def on_events(self, events: list[Event]) -> None:
        """Act on one read's events, then send every answer they led to in one message."""
        try:
            for event in events:
                if type(event) is MessageReceived:
                    if event.channel == self.calls:
                        self.link.out += self.link.conn.acknowledge(event.channel, event.size)
                        self.on_request(event.payload)
                elif type(event) is ChannelOpened:
                    if self.calls is None:
                        self.calls = event.channel
                    # Like the trio runner, which accepts one channel: later ones stay unread.
                elif type(event) is ChannelClosed:
                    if event.channel == self.calls:
                        raise _Stop(EXIT_OK)
                elif type(event) is ChannelReset:
                    if event.channel == self.calls:
                        log.error(
                            "session broke: the host reset the calls channel: %s", event.reason
                        )
                        raise _Stop(EXIT_FAILED)
                elif type(event) is SessionEnded:
                    raise _Stop(EXIT_OK)
                # CreditGranted: send_answers() looks at the credit itself. GoAwayReceived:
                # the host is ending; it closes the calls channel or the pipe next.
        finally:
            # Also on the way out: calls that arrived with the CLOSE are answered.
            self.send_answers()

    def on_request(self, payload: object) -> None:
        try:
            request = parse_request(payload, ChannelRef)
        except AppProtocolError as exc:
            log.error("host sent a malformed request: %s", exc)
            return
        if type(request) is CallBatch:
            for skipped in request.skipped:
                log.error("host sent a call that cannot be answered: %s", skipped)
            handle = self.handle
            append = self.answers.append
            depth = self.answers_nesting
            try:
                for call_id, message in request.calls:
                    if type(message) is not Message:
                        assert isinstance(message, AppProtocolError)
                        log.error("host sent a malformed call: %s", message)
                        append(answer_entry(call_id, error(str(message))))
                        continue
                    answer = handle(message)
                    if type(answer) is Reply:
                        reply = answer
                    elif type(answer) is Message:
                        reply = Reply(_CONTINUE, (answer,))  # answer_now's replace(answer)
                    else:
                        reply = _handle_pending(message, answer)
                    # The depth first: an answer is never queued without it counted.
                    if depth is not None:
                        for m in reply.messages:
                            inner = message_nesting(m)
                            if inner > depth:
                                depth = inner
                    append(answer_entry(call_id, reply))
            finally:
                self.answers_nesting = depth
        elif isinstance(request, Ping):
            self.pong(request.reply)
        elif isinstance(request, Cancel):
            # Nothing to stop: every call of a batch is answered before the next read,
            # so a cancel only ever names calls answered already. (This runner does
            # not name the feature; a host may send it anyway.)
            log.debug("host cancelled calls %s, answered already", list(request.ids))
        elif isinstance(request, UnknownRequest):
            log.warning("host sent an unsupported op %r; refusing it", request.op)
            if request.reply is not None and request.reply.channel is not None:
                self.refuse(request.reply.channel, f"unsupported op {request.op!r}")

    def send_answers(self) -> None:
        """Queue the pending answers as one ``replies`` message, as far as credit allows.

        The control channel is one channel for every answer, so unlike a reply channel
        of its own it can run out of credit: what does not go now waits for the host's
        CREDIT, which a later read brings.
        """
        if not self.answers:
            return
        conn = self.link.conn
        control = self.control
        if not conn.is_open(control):
            log.debug("%d answers not sent: the control channel is gone", len(self.answers))
            self.answers = []
            return
        batches = [self.answers]
        inner = self.answers_nesting
        # The first batch is every answer, whose depth is known (unless left over);
        # those made instead of an unsendable one are walked.
        depth = None if inner is None else ANSWERS_NESTING + inner
        self.answers = []
        self.answers_nesting = 0
        while batches:
            if conn.credit(control) <= 0:
                self.answers = [answer for batch in batches for answer in batch]
                self.answers_nesting = None
                return
            batch = batches.pop(0)
            try:
                self.link.out += conn.send_message(control, answers_to_wire(batch), depth=depth)
            except LocalProtocolError as exc:
                batches[:0] = instead_of_unsendable(batch, exc)
            depth = None

    def pong(self, ref: ChannelRef) -> None:
        channel = ref.channel
        conn = self.link.conn
        if channel is None or not conn.is_open(channel):
            log.debug("pong not delivered: the host gave up on this ping")
            return
        try:
            self.link.out += conn.send_message(channel, pong())
            self.link.out += conn.close(channel)
        except LocalProtocolError as exc:
            log.error("cannot send a pong: %s", exc)
            self.refuse(channel, f"the plugin could not send its pong: {exc}")

    def refuse(self, channel: int, reason: str) -> None:
        # LocalProtocolError: not a channel we may end (the host sent a bad reference).
        with contextlib.suppress(LocalProtocolError):
            self.link.out += self.link.conn.reset(channel, ErrorCode.APPLICATION_ERROR, reason)


def serve_blocking(
    make_plugin: Callable[[], ServablePlugin],
    read_fd: int = 3,
    write_fd: int = 4,
    *,
    handshake_timeout: float | None = 10.0,
) -> int:
    """Serve ``make_plugin()`` over two pipe ends without trio; return an exit code.

    The counterpart of :func:`~plugin_sdk.runner.serve` for plugins that
    :func:`serves_without_trio`: same handshake, calls, pings, graceful end and exit
    codes. Both file descriptors are closed on return.
    """
    link = _Link(read_fd, write_fd)
    try:
        return _serve(link, make_plugin, handshake_timeout)
    finally:
        for fd in (write_fd, read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def _serve(
    link: _Link, make_plugin: Callable[[], ServablePlugin], handshake_timeout: float | None
) -> int:
    try:
        server = _handshake(link, make_plugin, handshake_timeout)
        code = EXIT_OK
        if server is not None:
            try:
                while True:
                    link.flush()  # first: answers to calls that came with the HELLO
                    server.on_events(link.receive())
            except _Stop as stop:
                code = stop.code
            finally:
                try:
                    _step(server.plugin.stop())
                except Exception:
                    log.exception("the stop hook failed")
                    code = EXIT_FAILED
        else:
            code = EXIT_FAILED
    except _Stop as stop:
        code = stop.code
    link.goaway()
    link.flush()
    return code


def _handshake(
    link: _Link, make_plugin: Callable[[], ServablePlugin], timeout: float | None
) -> _Server | None:
    """HELLO both ways, then ``ready`` (or ``fail``) on our first channel."""
    link.flush()
    conn = link.conn
    deadline = None if timeout is None else time.monotonic() + timeout
    early: list[Event] = []
    while conn.peer_hello is None:
        try:
            events = link.receive(deadline)
        except TimeoutError:
            log.error("handshake failed: no HELLO from the host within %s s", timeout)
            raise _Stop(EXIT_FAILED) from None
        for index, event in enumerate(events):
            if type(event) is HelloReceived:
                early = events[index + 1 :]
                break
            if type(event) is GoAwayReceived:
                log.error("handshake failed: the host sent GOAWAY (%s)", event.reason)
                raise _Stop(EXIT_FAILED)
            if type(event) is SessionEnded:
                log.error("handshake failed: the host closed the connection")
                raise _Stop(EXIT_FAILED)
    control, frame = conn.open()
    link.out += frame
    try:
        plugin = make_plugin()
        info = plugin.info()
        _step(plugin.start())
    except Exception as exc:
        # Whatever went wrong is the operator's to read: send it, then exit 1.
        log.error("plugin failed to start: %s", exc)
        link.out += conn.send_message(control, Fail(f"{type(exc).__name__}: {exc}").to_wire())
        link.out += conn.close(control)
        return None
    link.out += conn.send_message(control, Ready(info).to_wire())
    link.flush()
    server = _Server(link, plugin, control)
    try:
        server.on_events(early)
    except _Stop as stop:
        _finish_early(server, stop)
    return server


def _finish_early(server: _Server, stop: _Stop) -> None:
    """The session ended in the same read as the host's HELLO: run the stop hook, exit."""
    try:
        _step(server.plugin.stop())
    except Exception:
        log.exception("the stop hook failed")
        raise _Stop(EXIT_FAILED) from None
    raise stop
