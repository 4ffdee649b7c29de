"""Serve one plugin over a session: handshake, calls (up to ``concurrency`` at once), pings,
graceful end. Transport-agnostic: FD 3/4 in a real plugin, memory streams in tests."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable

import trio

from ..app import (
    AppProtocolError,
    Call,
    Fail,
    Ping,
    Ready,
    UnknownRequest,
    parse_request,
    pong,
    reply_to_wire,
)
from ..reply import error
from ..session import (
    HandshakeError,
    Receiver,
    Sender,
    SessionBroken,
    SessionClosed,
    open_session,
)
from ..wire import ErrorCode, Role
from ._exits import EXIT_FAILED, EXIT_OK, ServablePlugin

__all__ = ["EXIT_FAILED", "EXIT_OK", "ServablePlugin", "serve"]

log = logging.getLogger("chanrouter.runner")


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
            await control.send(Ready(info).to_wire())
            calls = await session.accept()
            code = await _serve_calls(plugin, calls, info.concurrency)
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


async def _serve_calls(plugin: ServablePlugin, calls: Receiver, concurrency: int) -> int:
    # Calls queue FIFO for a fixed pool of workers: with concurrency 1 the plugin sees
    # messages in the order they were sent, and pings never wait behind handlers.
    queue_in, queue_out = trio.open_memory_channel[Call[Sender]](math.inf)
    code = EXIT_OK
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(_worker, plugin, queue_out.clone())
        queue_out.close()
        async with queue_in:
            try:
                async for payload in calls:
                    try:
                        request = parse_request(payload, Sender)
                    except AppProtocolError as exc:
                        log.error("host sent a malformed request: %s", exc)
                        continue
                    if isinstance(request, Call):
                        queue_in.send_nowait(request)
                    elif isinstance(request, Ping):
                        nursery.start_soon(_answer, request.reply, pong())
                    else:
                        nursery.start_soon(_refuse, request)
            except SessionBroken as exc:
                log.error("session broke: %s", exc)
                code = EXIT_FAILED
            except SessionClosed:
                pass
    return code


async def _worker(plugin: ServablePlugin, queue: trio.MemoryReceiveChannel[Call[Sender]]) -> None:
    async with queue:
        async for call in queue:
            try:
                reply = await plugin.handle(call.message)
            except Exception as exc:
                # The plugin API never raises here; a hand-made ServablePlugin might.
                log.exception("handle() raised on message %s", call.message.id)
                reply = error(f"{type(exc).__name__}: {exc}")
            await _answer(call.reply, reply_to_wire(reply))


async def _answer(reply: Sender, payload: object) -> None:
    try:
        # Queued at once when it can be (it nearly always can: a fresh reply channel
        # has a full window), and closed without a checkpoint: no scheduling rounds.
        try:
            reply.send_nowait(payload)
        except trio.WouldBlock:
            await reply.send(payload)
        reply.close()
    except trio.BrokenResourceError as exc:
        # The host gave up on this call (a timeout) or the session ended: nobody to tell.
        log.debug("reply not delivered: %s", exc)


async def _refuse(request: UnknownRequest[Sender]) -> None:
    log.warning("host sent an unsupported op %r; refusing it", request.op)
    if request.reply is not None:
        with contextlib.suppress(trio.BrokenResourceError):
            await request.reply.reset(f"unsupported op {request.op!r}", ErrorCode.APPLICATION_ERROR)
