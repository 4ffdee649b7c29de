"""Serve one plugin over a session: handshake, calls (up to ``concurrency`` at once), pings,
graceful end. Transport-agnostic: FD 3/4 in a real plugin, memory streams in tests.

Calls arrive in batches; each goes to a fixed pool of ``concurrency`` workers in
order (or, for a plain ``def`` handler with nothing else in progress, is answered at
once). Answers are gathered and sent on the control channel as one ``replies``
message per scheduling round: the first answer queued wakes the flusher, which runs
once every worker woken in the same round has queued its own.

Each worker runs its calls in a cancel scope, which the host's ``cancel`` request (for
a call it gave up on) cancels while that call runs: the handler stops at its next
checkpoint and the call is answered as cancelled, so its place frees at once. A call
cancelled before a worker took it is answered without being run. The plugin names the
``cancel`` feature in its ``ready`` for that.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from ..app import (
    FEATURE_CANCEL,
    AppProtocolError,
    CallBatch,
    Cancel,
    Fail,
    Ping,
    Ready,
    UnknownRequest,
    answer_entry,
    answers_to_wire,
    parse_request,
    pong,
)
from ..message import Message
from ..plugin import Plugin
from ..reply import Reply, error
from ..session import (
    HandshakeError,
    Receiver,
    Sender,
    SessionBroken,
    SessionClosed,
    SessionError,
    open_session,
)
from ..wire import ErrorCode, LocalProtocolError, Role
from ._answers import Answer, instead_of_unsendable
from ._exits import EXIT_FAILED, EXIT_OK, ServablePlugin

__all__ = ["EXIT_FAILED", "EXIT_OK", "ServablePlugin", "serve"]

log = logging.getLogger("chanrouter.runner")

CANCELLED: Final = error("cancelled: the router gave up on this call")
"""The answer to a call the host cancelled before its handler finished."""


async def serve(
    make_plugin: Callable[[], ServablePlugin],
    receive: trio.abc.ReceiveStream,
    send: trio.abc.SendStream,
    *,
    handshake_timeout: float | None = 10.0,
) -> int:
    """Serve the plugin ``make_plugin()`` builds until the host ends; return an exit code.

    The plugin is built inside the session so that an invalid option reaches the host
    as a ``fail`` handshake naming the problem, not only as a dead process. A host that
    goes away before the handshake is over ends the plugin with exit 1 and a log line.
    """
    try:
        return await _serve(make_plugin, receive, send, handshake_timeout)
    except (HandshakeError, SessionClosed) as exc:
        log.error("the router went away during the handshake: %s", exc)
        return EXIT_FAILED


async def _serve(
    make_plugin: Callable[[], ServablePlugin],
    receive: trio.abc.ReceiveStream,
    send: trio.abc.SendStream,
    handshake_timeout: float | None,
) -> int:
    async with open_session(
        receive, send, Role.RESPONDER, handshake_timeout=handshake_timeout
    ) as session:
        control = await session.open_sender()
        try:
            plugin = make_plugin()
            info = plugin.info()
            await plugin.start()
        except Exception as exc:
            # Whatever went wrong is the operator's to read: send it, then exit 1.
            log.error("plugin failed to start: %s", exc)
            with contextlib.suppress(trio.BrokenResourceError):
                await control.send(Fail(f"{type(exc).__name__}: {exc}").to_wire())
                await control.aclose()
            return EXIT_FAILED
        code = EXIT_FAILED
        try:
            await control.send(Ready(info, features=(FEATURE_CANCEL,)).to_wire())
            calls = await session.accept()
            code = await _serve_calls(plugin, calls, control, info.concurrency)
        except SessionBroken as exc:
            log.error("session broke: %s", exc)
        except SessionClosed:
            code = EXIT_OK
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await plugin.stop()
                except Exception:
                    log.exception("the stop hook failed")
                    code = EXIT_FAILED
        return code


_Job = tuple[int, Message | AppProtocolError | Awaitable[Reply]]


class _Answers:
    """Answers queued by the workers, sent as one ``replies`` message per round."""

    def __init__(self, control: Sender) -> None:
        self._control = control
        self._pending: list[Answer] = []
        self._wake = trio.Event()
        self._closed = False

    def add(self, answer: Answer) -> None:
        """Queue one answer (never waits)."""
        if not self._pending:
            self._wake.set()
        self._pending.append(answer)

    def close(self) -> None:
        """No more answers will come: :meth:`run` sends what is queued and returns."""
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        """Send queued answers until :meth:`close`, then the last ones."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            batch, self._pending = self._pending, []
            if batch:
                await self._send(batch)
            if self._closed and not self._pending:
                return

    async def _send(self, batch: list[Answer]) -> None:
        batches = [batch]
        while batches:
            batch = batches.pop(0)
            try:
                try:
                    # No scheduling round when the channel has credit (nearly always).
                    self._control.send_nowait(answers_to_wire(batch))
                except trio.WouldBlock:
                    await self._control.send(answers_to_wire(batch))
            except LocalProtocolError as exc:
                batches[:0] = instead_of_unsendable(batch, exc)
            except (trio.BrokenResourceError, trio.ClosedResourceError, SessionError) as exc:
                # The session ended (or the host reset the channel): nobody to tell.
                log.debug("%d answers not delivered: %s", len(batch), exc)


async def _serve_calls(
    plugin: ServablePlugin, calls: Receiver, control: Sender, concurrency: int
) -> int:
    answers = _Answers(control)
    code = EXIT_OK
    async with trio.open_nursery() as flushing:
        flushing.start_soon(answers.run)
        try:
            async with trio.open_nursery() as nursery:
                dispatcher = _Dispatcher(plugin, answers, nursery, concurrency)
                code = await dispatcher.read_requests(calls)
        finally:
            answers.close()
    return code


class _Dispatcher:
    """Hands each call to a fixed pool of ``concurrency`` workers, in order.

    Calls queue FIFO, so with concurrency 1 the plugin sees messages in the order they
    were sent, and pings never wait behind handlers. A plain-``def`` handler of a
    :class:`~plugin_sdk.Plugin` is answered in the reading task instead when nothing
    else is queued or running: it never waits, so it overlaps no other call, and it
    saves the worker's scheduling round per call.
    """

    def __init__(
        self,
        plugin: ServablePlugin,
        answers: _Answers,
        nursery: trio.Nursery,
        concurrency: int,
    ) -> None:
        self.plugin = plugin
        self.answers = answers
        self.nursery = nursery
        self.queue, queue_out = trio.open_memory_channel[_Job](math.inf)
        self.queued = 0
        """Calls handed to the workers and not answered yet (queued or running)."""
        self.waiting: set[int] = set()
        """Ids of the calls queued for a worker that no worker has taken yet."""
        self.cancelled: set[int] = set()
        """Ids of waiting calls the host cancelled: answered without running."""
        self.running: dict[int, trio.CancelScope] = {}
        """The cancel scope of each call a worker is running, by id."""
        self.handle_now = (
            plugin.handle_now
            if isinstance(plugin, Plugin) and type(plugin).handle is Plugin.handle
            else None
        )
        for _ in range(concurrency):
            nursery.start_soon(self.worker, queue_out.clone())
        queue_out.close()

    async def read_requests(self, calls: Receiver) -> int:
        """Serve the calls channel until it ends; return the exit code."""
        async with self.queue:
            try:
                async for payload in calls:
                    self.on_request(payload)
            except SessionBroken as exc:
                log.error("session broke: %s", exc)
                return EXIT_FAILED
            except SessionClosed:
                pass
        return EXIT_OK

    def on_request(self, payload: object) -> None:
        try:
            request = parse_request(payload, Sender)
        except AppProtocolError as exc:
            log.error("host sent a malformed request: %s", exc)
            return
        if isinstance(request, CallBatch):
            for skipped in request.skipped:
                log.error("host sent a call that cannot be answered: %s", skipped)
            for call_id, message in request.calls:
                self.on_call(call_id, message)
        elif isinstance(request, Ping):
            self.nursery.start_soon(_pong, request.reply)
        elif isinstance(request, Cancel):
            self.on_cancel(request.ids)
        else:
            self.nursery.start_soon(_refuse, request)

    def on_call(self, call_id: int, message: Message | AppProtocolError) -> None:
        handle_now = self.handle_now
        if handle_now is None or self.queued or not isinstance(message, Message):
            self.enqueue(call_id, message)
            return
        reply = handle_now(message)
        if isinstance(reply, Reply):
            self.answers.add(answer_entry(call_id, reply))
        else:
            # An async handler: a worker awaits what handle_now began.
            self.enqueue(call_id, reply)

    def enqueue(self, call_id: int, job: Message | AppProtocolError | Awaitable[Reply]) -> None:
        self.queued += 1
        self.waiting.add(call_id)
        self.queue.send_nowait((call_id, job))

    def on_cancel(self, ids: tuple[int, ...]) -> None:
        """The host gave up on ``ids``: stop those running, skip those waiting.

        A call answered already (a plain handler answers in the reading task, before
        the next request is read) or never received is not ours to answer again.
        """
        for call_id in ids:
            scope = self.running.get(call_id)
            if scope is not None:
                scope.cancel()
            elif call_id in self.waiting:
                self.cancelled.add(call_id)

    async def worker(self, queue: trio.MemoryReceiveChannel[_Job]) -> None:
        """Answer queued calls until the queue closes.

        The calls a worker runs share one cancel scope, which the host's ``cancel`` of
        the running call cancels; only then is a fresh one made. (A scope per call
        cost more than a quarter of an async call's handling.)
        """
        async with queue:
            while True:
                running: list[int] = []  # the call being run, while it runs
                with trio.CancelScope() as scope:
                    if await self.run_calls(queue, scope, running):
                        return  # the queue closed
                if running:  # the host's cancel stopped it (not a cancel of the runner)
                    self.finish(running[0], CANCELLED)

    async def run_calls(
        self, queue: trio.MemoryReceiveChannel[_Job], scope: trio.CancelScope, running: list[int]
    ) -> bool:
        """Run queued calls under ``scope`` until the queue closes (True) or ``scope`` was
        cancelled for a call that finished anyway (False: the caller makes a new one)."""
        while True:
            # Take queued calls without a scheduling round each: a batch handled by
            # handlers that never wait is then answered in one round, so in one message.
            try:
                call_id, job = queue.receive_nowait()
            except trio.WouldBlock:
                try:
                    call_id, job = await queue.receive()
                except trio.EndOfChannel:
                    return True
            except trio.EndOfChannel:
                return True
            self.waiting.discard(call_id)
            if call_id in self.cancelled:
                self.cancelled.discard(call_id)
                if inspect.iscoroutine(job):
                    job.close()  # begun by handle_now, never to be awaited
                self.finish(call_id, CANCELLED)
                continue
            running.append(call_id)
            self.running[call_id] = scope
            try:
                reply = await self.run(job)
            finally:
                del self.running[call_id]
            running.clear()
            self.finish(call_id, reply)
            if scope.cancel_called:
                return False  # the cancel came as the call ended: not for the next one

    def finish(self, call_id: int, reply: Reply) -> None:
        """Queue the answer to a call a worker took."""
        self.queued -= 1
        self.answers.add(answer_entry(call_id, reply))

    async def run(self, job: Message | AppProtocolError | Awaitable[Reply]) -> Reply:
        if isinstance(job, AppProtocolError):
            log.error("host sent a malformed call: %s", job)
            return error(str(job))
        if not isinstance(job, Message):
            return await job  # begun by Plugin.handle_now, which never raises
        try:
            return await self.plugin.handle(job)
        except Exception as exc:
            # The plugin API never raises here; a hand-made ServablePlugin might.
            log.exception("handle() raised on message %s", job.id)
            return error(f"{type(exc).__name__}: {exc}")


async def _pong(reply: Sender) -> None:
    try:
        # Queued at once when it can be (it nearly always can: a fresh reply channel
        # has a full window), and closed without a checkpoint: no scheduling rounds.
        try:
            reply.send_nowait(pong())
        except trio.WouldBlock:
            await reply.send(pong())
        reply.close()
    except trio.BrokenResourceError as exc:
        # The host gave up on this ping or the session ended: nobody to tell.
        log.debug("pong not delivered: %s", exc)


async def _refuse(request: UnknownRequest[Sender]) -> None:
    log.warning("host sent an unsupported op %r; refusing it", request.op)
    if request.reply is not None:
        with contextlib.suppress(trio.BrokenResourceError):
            await request.reply.reset(f"unsupported op {request.op!r}", ErrorCode.APPLICATION_ERROR)
