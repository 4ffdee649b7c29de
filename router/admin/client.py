"""The admin client: connect to routerd's socket, send requests, read replies and events.

routerctl is a thin CLI over this; other tools (tests, scripts) can use it directly::

    async with connect_admin("/run/chanrouter.sock") as admin:
        reply = await admin.request("plugins")
        async for event in admin.watch():
            ...

Three things can go wrong, each its own exception so callers can map them to exit
codes: :class:`AdminConnectError` (nobody answers on the socket),
:class:`AdminError` (routerd answered ``ok: false``) and :class:`AdminConnectionLost`
(the connection ended before the answer: routerd refused us or went away).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from plugin_sdk.session import Receiver, Sender, Session, SessionError, open_session
from plugin_sdk.wire import Role

__all__ = [
    "AdminClient",
    "AdminClientError",
    "AdminConnectError",
    "AdminConnectionLost",
    "AdminError",
    "connect_admin",
]


class AdminClientError(Exception):
    """Base of the admin client's errors."""


class AdminConnectError(AdminClientError):
    """Nobody answers on the admin socket; the text names the path and what to check."""

    def __init__(self, path: str, cause: BaseException) -> None:
        why = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        super().__init__(
            f"cannot connect to routerd at {path}: {why}"
            " (is routerd running with --admin-socket there? use --socket PATH to choose)"
        )
        self.path = path


class AdminError(AdminClientError):
    """routerd answered the request with an error; the text is its reason."""

    def __init__(self, error: str, reply: dict[str, Any]) -> None:
        super().__init__(error)
        self.reply = reply


class AdminConnectionLost(AdminClientError):
    """The connection ended before an answer came: refused, or routerd went away."""


def _lost(exc: BaseException) -> AdminConnectionLost:
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return AdminConnectionLost(f"connection to routerd lost: {reason}")


class AdminClient:
    """An open admin session: one request channel, a reply channel per request."""

    def __init__(self, session: Session, requests: Sender) -> None:
        self._session = session
        self._requests = requests

    async def _ask(self, op: str, args: dict[str, Any]) -> Receiver:
        receiver, ref = self._session.pipe()
        try:
            await self._requests.send({**args, "op": op, "reply": ref})
        except (SessionError, trio.BrokenResourceError) as exc:
            raise _lost(exc) from exc
        return receiver

    async def _first(self, receiver: Receiver) -> dict[str, Any]:
        try:
            reply = await receiver.receive()
        except (SessionError, trio.BrokenResourceError, trio.EndOfChannel) as exc:
            raise _lost(exc) from exc
        if not isinstance(reply, dict) or "ok" not in reply:
            raise AdminConnectionLost(f"routerd sent a malformed reply: {reply!r}")
        if not reply["ok"]:
            raise AdminError(str(reply.get("error", "request refused")), reply)
        return reply

    async def request(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one request and return its ``{"ok": true, ...}`` reply (or raise)."""
        receiver = await self._ask(op, args)
        try:
            return await self._first(receiver)
        finally:
            await receiver.aclose()

    async def watch(self, *, results: bool = True) -> AsyncIterator[dict[str, Any]]:
        """Yield events as routerd publishes them, until the caller stops or routerd ends.

        With ``results=False`` only plugin and pipeline events come, not routed results.
        """
        receiver = await self._ask("watch", {"results": results})
        try:
            await self._first(receiver)
            while True:
                try:
                    event = await receiver.receive()
                except trio.EndOfChannel:
                    return
                except (SessionError, trio.BrokenResourceError) as exc:
                    raise _lost(exc) from exc
                if isinstance(event, dict):
                    yield event
        finally:
            with trio.CancelScope(shield=True):
                await receiver.aclose()


@asynccontextmanager
async def connect_admin(path: str, *, timeout: float = 10.0) -> AsyncIterator[AdminClient]:
    """Connect to routerd's admin socket at ``path`` and yield a client."""
    try:
        stream = await trio.open_unix_socket(path)
    except OSError as exc:
        raise AdminConnectError(path, exc) from exc
    async with stream:
        try:
            async with open_session(
                stream, stream, Role.INITIATOR, handshake_timeout=timeout
            ) as session:
                requests = await session.open_sender()
                yield AdminClient(session, requests)
        except (SessionError, trio.BrokenResourceError) as exc:
            raise _lost(exc) from exc
