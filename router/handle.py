"""Plugin handles: how the engine starts, calls and stops a plugin, wherever it runs.

The engine only knows :class:`PluginHandle`. :class:`InProcessHandle` adapts a
plugin_sdk plugin object living in this process; the subprocess handle
(router.exec) speaks the channel protocol to a plugin process. Per-call timeout,
concurrency limit and the on-error policy are the engine's job, not the handle's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from plugin_sdk import Message, Plugin, PluginInfo, Reply

__all__ = ["InProcessHandle", "PluginHandle", "SdkPlugin", "as_handle"]


@runtime_checkable
class PluginHandle(Protocol):
    """A plugin as the engine sees it."""

    @property
    def info(self) -> PluginInfo:
        """The plugin's self-description (stable while the handle is registered)."""
        ...

    async def start(self) -> None:
        """Make the plugin ready for calls (run its start hook, spawn its process...)."""
        ...

    async def call(self, message: Message) -> Reply:
        """Hand ``message`` to the plugin; may raise (the engine makes that an ERROR)."""
        ...

    async def stop(self) -> None:
        """Release the plugin (stop hook, process exit); no calls follow."""
        ...


class SdkPlugin(Protocol):
    """The plugin_sdk plugin API the in-process handle relies on."""

    def info(self) -> PluginInfo:
        """The plugin's self-description."""
        ...

    async def start(self) -> None:
        """The plugin's start hook."""
        ...

    async def handle(self, message: Message) -> Reply:
        """Handle one message; handler errors come back as ERROR replies."""
        ...

    async def stop(self) -> None:
        """The plugin's stop hook."""
        ...


class InProcessHandle:
    """A :class:`PluginHandle` for a plugin_sdk plugin object in this process."""

    def __init__(self, plugin: SdkPlugin) -> None:
        self.plugin = plugin
        # Asked once, eagerly: an invalid plugin fails at registration, not on first use.
        info = plugin.info()
        if not isinstance(info, PluginInfo):
            raise TypeError(
                f"{type(plugin).__name__}.info() returned {type(info).__name__}, not a PluginInfo"
            )
        self._info = info
        # answer_now: plugin_sdk's Plugin; handle_now: a plugin with only that.
        now = getattr(plugin, "answer_now", None) or getattr(plugin, "handle_now", None)
        self._now: Callable[[Message], Message | Reply | Awaitable[Reply]]
        if type(self).call is not InProcessHandle.call:
            self._now = self.call  # a subclass that wraps call() must see every call
        elif callable(now) and not _overrides_handle(plugin):
            self._now = now
        else:
            self._now = plugin.handle

    @property
    def info(self) -> PluginInfo:
        """The plugin's info, as it said at construction."""
        return self._info

    async def start(self) -> None:
        """Run the plugin's start hook."""
        await self.plugin.start()

    async def call(self, message: Message) -> Reply:
        """Hand ``message`` to the plugin's dispatcher."""
        return await self.plugin.handle(message)

    @property
    def call_now(self) -> Callable[[Message], Message | Reply | Awaitable[Reply]]:
        """A function giving a message's reply at once, or an awaitable for it.

        A reply given at once is a :class:`Reply`, or a lone :class:`Message` that
        stands for ``replace(message)``. The plugin's own ``answer_now`` (plugin_sdk
        plugins have it: the reply without awaiting when the handler is a plain
        ``def``, and a returned message as it is) or else ``handle_now``, handed out
        as is so a call costs no extra frame; for a plugin with neither, ``handle``,
        whose coroutine is awaited as :meth:`call` would.
        """
        return self._now

    async def stop(self) -> None:
        """Run the plugin's stop hook."""
        await self.plugin.stop()

    def __repr__(self) -> str:
        return f"InProcessHandle({self.plugin!r})"


def as_handle(obj: PluginHandle | SdkPlugin) -> PluginHandle:
    """``obj`` itself if it is a handle, or an :class:`InProcessHandle` around a plugin.

    A handle has ``call()``; a plugin has ``handle()`` and an ``info()`` method. The
    check looks at the class only: a subprocess handle's ``info`` cannot be read
    before it has started.
    """
    kind = type(obj)
    if callable(getattr(kind, "call", None)):
        return obj  # type: ignore[return-value]  # checked structurally just above
    if callable(getattr(kind, "handle", None)) and callable(getattr(kind, "info", None)):
        return InProcessHandle(obj)  # type: ignore[arg-type]
    raise TypeError(
        f"{obj!r} is neither a plugin handle (call()) nor a plugin (info(), handle()):"
        " cannot route to it"
    )


def _overrides_handle(plugin: object) -> bool:
    """Whether a plugin_sdk plugin replaces ``handle``: its ``handle_now`` would bypass it."""
    return isinstance(plugin, Plugin) and type(plugin).handle is not Plugin.handle
