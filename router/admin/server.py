"""The admin server: routerd's end of the unix socket that routerctl talks to.

Each accepted connection is checked (SO_PEERCRED: only our own uid and root), then
served as a channel-protocol session in which routerd is the RESPONDER. The client
opens top-level channels and sends requests on them (see :mod:`.protocol`); each
request runs in its own task and answers on its own reply channel.

Robustness rules: every connection runs in its own task and every exception in it
is contained and logged, so a bad client can only ever lose its own connection.
Pipeline edits run to completion even if the client vanishes mid-request (a plugin
half-added would be worse than an unanswered request) and run one at a time so a
``move`` computes its new order from the order it actually edits.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import trio

from plugin_sdk.session import Receiver, Sender, Session, open_session
from plugin_sdk.wire import Connection, ErrorCode, Role

from ..engine import Router
from ..events import EventBus, EventKind, Subscription
from . import ops
from .peercred import PeerCredentials, is_allowed, peer_credentials
from .protocol import AdminRequestError, Request, fail, ok, parse_request
from .socket_path import bind_admin_socket, default_socket_path, remove_socket

__all__ = ["AdminServer", "serve_admin"]

log = logging.getLogger("chanrouter.admin")

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a client gets to send its HELLO."""

MAX_REQUESTS_IN_FLIGHT = 16
"""Requests per connection running at once; further ones wait (backpressure)."""

MAX_WATCHES = 8
"""``watch`` streams per connection."""

OP_DEADLINE = 120.0
"""Seconds an op may run shielded from its connection's end (adding an exec plugin
waits for its handshake; routing waits for plugin timeouts)."""

REFUSAL_LINGER = 2.0
"""Seconds a refused client gets to read the refusal and hang up."""

REFUSAL_DRAIN_LIMIT = 1 << 16
"""Bytes read (and ignored) from a refused client before closing regardless."""

SHUTDOWN_GRACE = 2.0
"""Seconds connections get to finish (and read the ``shutdown`` reply) on shutdown."""


class AdminServer:
    """Serves admin connections for one router; see :func:`serve_admin`."""

    def __init__(
        self,
        router: Router,
        *,
        events: EventBus | None = None,
        on_shutdown: Callable[[], object] | None = None,
        own_uid: int | None = None,
    ) -> None:
        self.router = router
        self.events = events if events is not None else EventBus()
        """Where watchers subscribe; publish engine and plugin events here."""
        self.shutdown_requested = trio.Event()
        """Set once a client asked for ``shutdown`` (after its reply was sent)."""
        self.own_uid = os.geteuid() if own_uid is None else own_uid
        self.admits: Callable[[PeerCredentials], bool] = lambda creds: is_allowed(
            creds, self.own_uid
        )
        """The peer check: own uid and root. Replaceable (tests, stricter policies)."""
        self._on_shutdown = on_shutdown
        self._edits = trio.Lock()
        self._watching: set[Subscription] = set()
        self.started_at = time.time()
        self.connections = 0
        """Connections accepted so far (refused ones included)."""
        self.refused = 0
        """Connections refused by the peer-credential check."""
        self.requests = 0
        """Requests answered so far, errors included."""

    # ---- listening -------------------------------------------------------------------

    async def serve(
        self,
        path: str | None = None,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``path`` until shutdown is requested (or cancelled); remove it after.

        ``task_status.started(path)`` is called once the socket accepts connections.
        Raises :class:`~.socket_path.AdminSocketError` when the path cannot be used.
        """
        path = path if path is not None else default_socket_path()
        raw, identity = bind_admin_socket(path)
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(raw))
        log.info("admin socket listening on %s", path)
        try:
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as acceptor:
                    acceptor.start_soon(self._accept_loop, listener, connections)
                    task_status.started(path)
                    await self.shutdown_requested.wait()
                    acceptor.cancel_scope.cancel()
                # Let clients read their replies (the shutdown one above all) and hang up.
                connections.cancel_scope.deadline = trio.current_time() + SHUTDOWN_GRACE
        finally:
            remove_socket(path, identity)
            with trio.CancelScope(shield=True):
                await listener.aclose()
            log.info("admin socket %s closed", path)

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                # EMFILE and friends: wait a little instead of spinning or dying.
                log.warning("admin socket accept failed: %s", exc)
                await trio.sleep(0.1)
                continue
            nursery.start_soon(self.handle_connection, stream)

    # ---- one connection --------------------------------------------------------------

    async def handle_connection(self, stream: trio.SocketStream) -> None:
        """Serve one accepted connection to its end; never raises (except Cancelled)."""
        self.connections += 1
        async with stream:
            try:
                creds = peer_credentials(stream.socket)
            except OSError as exc:
                log.warning("admin connection without peer credentials refused: %s", exc)
                return
            if not self.admits(creds):
                await self._refuse(stream, creds)
                return
            try:
                async with open_session(
                    stream, stream, Role.RESPONDER, handshake_timeout=HANDSHAKE_TIMEOUT
                ) as session:
                    await self._serve_session(session)
            except Exception as exc:
                log.warning(
                    "admin connection from pid %d (uid %d) ended: %s",
                    creds.pid,
                    creds.uid,
                    _describe(exc),
                )
                log.debug("admin connection error", exc_info=True)

    async def _refuse(self, stream: trio.SocketStream, creds: PeerCredentials) -> None:
        self.refused += 1
        who = "root" if self.own_uid == 0 else f"uid {self.own_uid} and root"
        reason = f"permission denied: uid {creds.uid} may not administer this routerd (only {who})"
        log.warning(
            "admin connection refused: pid %d uid %d gid %d is not uid %d or root",
            creds.pid,
            creds.uid,
            creds.gid,
            self.own_uid,
        )
        # A HELLO then a GOAWAY carrying the reason: any protocol client can show it.
        conn = Connection(Role.RESPONDER)
        data = conn.hello() + conn.goaway(ErrorCode.APPLICATION_ERROR, reason)
        with trio.move_on_after(REFUSAL_LINGER):
            try:
                await stream.send_all(data)
                await stream.send_eof()
                # Drain what the client sends until it hangs up: closing with unread
                # bytes would reset the connection and could lose our GOAWAY.
                drained = 0
                while drained < REFUSAL_DRAIN_LIMIT:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    drained += len(chunk)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def _serve_session(self, session: Session) -> None:
        limiter = trio.CapacityLimiter(MAX_REQUESTS_IN_FLIGHT)
        async with trio.open_nursery() as requests, trio.open_nursery() as watches:
            try:
                while True:
                    channel = await session.accept()
                    requests.start_soon(self._serve_channel, channel, limiter, requests, watches)
            except Exception as exc:
                log.debug("admin session ended: %s", _describe(exc))
            # The session is over: watches have nobody to stream to.
            watches.cancel_scope.cancel()

    async def _serve_channel(
        self,
        channel: Receiver,
        limiter: trio.CapacityLimiter,
        requests: trio.Nursery,
        watches: trio.Nursery,
    ) -> None:
        while True:
            try:
                payload = await channel.receive()
            except Exception as exc:
                # End of channel, reset, or the session ending: nothing more to read.
                log.debug("admin request channel ended: %s", _describe(exc))
                return
            reply = payload.get("reply") if isinstance(payload, dict) else None
            if not isinstance(reply, Sender):
                log.warning("admin request without a 'reply' sender: %s", _clip(payload))
                # Nowhere to answer: refuse the whole channel (RESET) so the client sees it.
                await channel.aclose()
                return
            try:
                request: Request | str = parse_request(payload)
            except AdminRequestError as exc:
                request = str(exc)
            if isinstance(request, Request) and request.op == "watch":
                watches.start_soon(self._watch, reply, request, watches)
                continue
            # Waiting here stops reading the channel: its credit holds the client back.
            await limiter.acquire_on_behalf_of(reply)
            requests.start_soon(self._run, reply, request, limiter)

    # ---- requests ----------------------------------------------------------------------

    async def _answer(self, reply: Sender, answer: Mapping[str, Any]) -> None:
        self.requests += 1
        try:
            async with reply:
                await reply.send(dict(answer))
        except Exception as exc:
            log.debug("admin reply not delivered: %s", _describe(exc))

    async def _run(
        self, reply: Sender, request: Request | str, limiter: trio.CapacityLimiter
    ) -> None:
        """Do one request (or refuse a malformed one: ``request`` is then the reason)."""
        try:
            if isinstance(request, str):
                await self._answer(reply, fail(request))
                return
            # Shielded: an edit or a routed message must not be cut in half because the
            # client went away; the deadline still bounds it.
            with trio.CancelScope(shield=True, deadline=trio.current_time() + OP_DEADLINE) as scope:
                answer = await self._dispatch(request)
            if scope.cancelled_caught:
                answer = fail(f"{request.op} did not finish within {OP_DEADLINE:.0f} s")
            await self._answer(reply, answer)
        finally:
            limiter.release_on_behalf_of(reply)
        if request.op == "shutdown":
            self._request_shutdown()

    async def _dispatch(self, request: Request) -> dict[str, Any]:
        try:
            if request.op in ops.EDITS:
                async with self._edits:
                    return await ops.EDITS[request.op](self, **request.args)
            return await ops.QUERIES[request.op](self, **request.args)
        except ops.OpError as exc:
            return fail(str(exc))
        except Exception as exc:
            log.warning("admin %s failed: %s", request.op, _describe(exc), exc_info=True)
            return fail(f"{request.op} failed: {_describe(exc)}")

    async def _watch(self, reply: Sender, request: Request, watches: trio.Nursery) -> None:
        if _count_tasks(watches) > MAX_WATCHES:
            refusal = fail(f"too many watches on one connection (max {MAX_WATCHES})")
            await self._answer(reply, refusal)
            return
        results = request.args["results"]
        self.requests += 1
        try:
            async with reply:
                with self.events.subscribe() as events:
                    self._watching.add(events)
                    try:
                        if self.shutdown_requested.is_set():
                            events.close()
                        await reply.send(ok(watching=True))
                        async for event in events:
                            if not results and event.kind == EventKind.RESULT:
                                continue
                            await reply.send(event.to_wire())
                    finally:
                        self._watching.discard(events)
            # Only a shutdown ends the loop: the CLOSE sent here tells the client so.
        except Exception as exc:
            # The client closed or reset its end, or left: the normal way a watch ends.
            log.debug("admin watch ended: %s", _describe(exc))

    def _request_shutdown(self) -> None:
        log.info("shutdown requested over the admin socket")
        self.shutdown_requested.set()
        for watch in self._watching:
            watch.close()
        if self._on_shutdown is not None:
            self._on_shutdown()


def _count_tasks(nursery: trio.Nursery) -> int:
    return len(nursery.child_tasks)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _clip(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


async def serve_admin(
    router: Router,
    path: str | None = None,
    on_shutdown: trio.Event | Callable[[], object] | None = None,
    *,
    events: EventBus | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve routerd's admin interface for ``router`` on the unix socket at ``path``.

    ``path`` defaults to :func:`~.socket_path.default_socket_path`. Use with
    ``await nursery.start(serve_admin, router, path, stop_event)``: it returns the
    path once the socket accepts connections. Raises
    :class:`~.socket_path.AdminSocketError` if the path cannot be used.

    A client's ``shutdown`` request is answered, then ``on_shutdown`` is set (a
    ``trio.Event``) or called, so the daemon can start stopping; serving itself ends
    once the connections have closed (at most a 2 s grace), or when cancelled. The
    socket file is removed either way. Watchers see what is published on ``events``:
    give the same bus to the exec handles (``ExecHandle(events=bus)``) and publish
    routed results with :func:`router.events.result_event`.
    """
    hook: Callable[[], object] | None
    hook = on_shutdown.set if isinstance(on_shutdown, trio.Event) else on_shutdown
    server = AdminServer(router, events=events, on_shutdown=hook)
    await server.serve(path, task_status=task_status)
