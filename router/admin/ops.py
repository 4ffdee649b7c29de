"""What each admin op does to the router: one async function per op.

Each takes the :class:`~.server.AdminServer` and the op's checked arguments and
returns the reply map. A refusal the operator should read (no such plugin, a bad
builtin option, an order that contradicts priorities) is an :class:`OpError`; the
server turns it, and anything unexpected, into ``{"ok": false, "error": ...}``.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from plugin_sdk import Message, PluginInfo

from ..events import EventBus, EventKind, result_event
from . import view
from .protocol import ok

if TYPE_CHECKING:
    from .server import AdminServer

__all__ = ["EDITS", "QUERIES", "OpError"]

Op = Callable[..., Awaitable[dict[str, Any]]]


class OpError(Exception):
    """The daemon refuses the request; the text says why and goes back to the client."""


async def _maybe_await(value: object) -> None:
    if inspect.isawaitable(value):
        await value


def _require(server: AdminServer, name: str) -> None:
    names = view.pipeline_names(server.router)
    if name not in names:
        have = ", ".join(names) if names else "none"
        raise OpError(f"no plugin named {name!r} (plugins: {have})")


def _row(server: AdminServer, name: str) -> dict[str, Any]:
    for row in view.rows(server.router):
        if row["name"] == name:
            return row
    raise OpError(f"plugin {name!r} is not in the pipeline")


# ---- queries ---------------------------------------------------------------------------


async def _plugins(server: AdminServer) -> dict[str, Any]:
    return ok(plugins=view.rows(server.router))


async def _stats(server: AdminServer) -> dict[str, Any]:
    rows = view.rows(server.router)
    keys = ("handled", "dropped", "failed", "timed_out")
    totals = {k: sum(int(r.get(k) or 0) for r in rows) for k in keys}
    return ok(
        pid=os.getpid(),
        uptime=time.time() - server.started_at,
        plugins=len(rows),
        calls=totals,
        router={
            "hop_limit": server.router.hop_limit,
            "max_in_flight": server.router.max_in_flight,
            "max_messages": server.router.max_messages,
        },
        admin={
            "connections": server.connections,
            "refused": server.refused,
            "requests": server.requests,
            "watchers": server.events.subscribers,
            "events": server.events.published,
        },
    )


async def _send(server: AdminServer, message: Message) -> dict[str, Any]:
    result = await server.router.route(message)
    event = result_event(result)
    server.events.publish(event)
    return ok(result=event.data)


async def _shutdown(server: AdminServer) -> dict[str, Any]:
    return ok(shutting_down=True)


# ---- edits -----------------------------------------------------------------------------


class PriorityOverride:
    """A plugin handle whose priority the operator set (``add --priority``)."""

    def __init__(self, inner: Any, priority: int) -> None:
        self.inner = inner
        self.priority = priority

    @property
    def info(self) -> PluginInfo:
        """The inner handle's info with the operator's priority."""
        from dataclasses import replace

        info: PluginInfo = self.inner.info
        return replace(info, priority=self.priority)

    def __getattr__(self, name: str) -> Any:
        # state, pid, restarts, restart(): whatever the wrapped handle offers.
        return getattr(self.inner, name)

    async def start(self) -> None:
        """Start the wrapped handle."""
        await self.inner.start()

    async def call(self, message: Message) -> Any:
        """Call the wrapped handle."""
        return await self.inner.call(message)

    async def stop(self) -> None:
        """Stop the wrapped handle."""
        await self.inner.stop()


def _make_builtin(plugin: str, option: str, name: str | None) -> Any:
    from plugin_sdk import PluginDefinitionError, PluginInfoError

    from ..builtins.registry import PluginLoadError, load
    from ..handle import InProcessHandle

    try:
        obj = load(plugin, option, instance_name=name)
    except (PluginLoadError, PluginDefinitionError, PluginInfoError, ValueError) as exc:
        raise OpError(str(exc)) from None
    return InProcessHandle(obj)


def _make_exec(cmd: str, name: str | None, events: EventBus) -> Any:
    from ..exec import ExecHandle, PluginStartError

    try:
        return ExecHandle(cmd, name=name, events=events)
    except PluginStartError as exc:
        raise OpError(str(exc)) from None


async def _add(
    server: AdminServer,
    plugin: str | None,
    exec: str | None,
    option: str,
    name: str | None,
    position: int | None,
    priority: int | None,
) -> dict[str, Any]:
    if plugin is not None:
        handle = _make_builtin(plugin, option, name)
    else:
        handle = _make_exec(exec or "", name, server.events)
    if priority is not None:
        handle = PriorityOverride(handle, priority)
    if position is not None:
        position = min(position, len(view.pipeline_names(server.router)))
    from ..exec import PluginStartError

    try:
        await server.router.add(handle, position=position)
    except (ValueError, PluginStartError) as exc:
        # PlanError (a duplicate name) and start failures name the plugin already.
        raise OpError(str(exc)) from None
    info: PluginInfo = handle.info
    server.events.emit(EventKind.ADDED, info.name, kind=view.handle_kind(handle))
    return ok(plugin=_row(server, info.name))


async def _remove(server: AdminServer, name: str) -> dict[str, Any]:
    _require(server, name)
    await server.router.remove(name)
    server.events.emit(EventKind.REMOVED, name)
    return ok(removed=name)


async def _restart(server: AdminServer, name: str) -> dict[str, Any]:
    _require(server, name)
    handle = view.handle(server.router, name)
    restart = getattr(handle, "restart", None)
    if callable(restart):
        # A subprocess plugin restarts itself (and reports it on the event bus).
        try:
            await _maybe_await(restart())
        except RuntimeError as exc:
            raise OpError(str(exc)) from None
    else:
        # No restart of its own (an in-process plugin): swap in a fresh instance.
        fresh = view.fresh_handle(handle)
        if fresh is None:
            raise OpError(f"plugin {name!r} cannot be restarted (its handle has no restart)")
        await server.router.replace(name, fresh)
        server.events.emit(EventKind.RESTARTED, name, by="admin")
    return ok(plugin=_row(server, name))


async def _apply_order(server: AdminServer, order: list[str]) -> dict[str, Any]:
    try:
        await _maybe_await(server.router.reorder(order))
    except ValueError as exc:
        raise OpError(str(exc)) from None
    names = view.pipeline_names(server.router)
    server.events.emit(EventKind.REORDERED, None, order=list(names))
    return ok(order=list(names))


async def _move(server: AdminServer, name: str, position: int) -> dict[str, Any]:
    _require(server, name)
    order = [n for n in view.pipeline_names(server.router) if n != name]
    order.insert(min(position, len(order)), name)
    return await _apply_order(server, order)


async def _reorder(server: AdminServer, names: tuple[str, ...]) -> dict[str, Any]:
    for name in names:
        _require(server, name)
    rest = [n for n in view.pipeline_names(server.router) if n not in names]
    return await _apply_order(server, [*names, *rest])


QUERIES: dict[str, Op] = {
    "plugins": _plugins,
    "stats": _stats,
    "send": _send,
    "shutdown": _shutdown,
}
"""Ops that read (or route), run concurrently."""

EDITS: dict[str, Op] = {
    "add": _add,
    "remove": _remove,
    "restart": _restart,
    "move": _move,
    "reorder": _reorder,
}
"""Ops that change the pipeline, run one at a time."""
