"""The embedding API: ``async with router.open(plugins=[...]) as r: await r.route(msg)``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from .engine import Router
from .handle import PluginHandle, SdkPlugin, as_handle
from .pipeline import DEFAULT_HOP_LIMIT, DEFAULT_MAX_MESSAGES

__all__ = ["open"]


@asynccontextmanager
async def open(  # `router.open` reads well, like `trio.open_nursery`
    plugins: Iterable[PluginHandle | SdkPlugin] = (),
    *,
    hop_limit: int = DEFAULT_HOP_LIMIT,
    max_in_flight: int = 64,
    max_messages: int = DEFAULT_MAX_MESSAGES,
) -> AsyncIterator[Router]:
    """Start a :class:`Router` over ``plugins`` and stop it on exit.

    ``plugins`` are plugin_sdk plugin objects (run in process) or
    :class:`~router.handle.PluginHandle` objects, in registration order. All are
    checked before any starts (a duplicate name is an error naming both); they
    start in order and stop in reverse order.
    """
    handles = [as_handle(p) for p in plugins]
    router = Router(
        handles, hop_limit=hop_limit, max_in_flight=max_in_flight, max_messages=max_messages
    )
    async with router:
        yield router
