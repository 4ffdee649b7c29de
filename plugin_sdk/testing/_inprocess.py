"""Drive a plugin in process, the way the router would, without the router.

:class:`PluginHarness` runs the start hook on entry and the stop hook on exit, and
sends messages through :meth:`~plugin_sdk.Plugin.handle`; :func:`run_plugin` does
the same from synchronous code. Both check what the router relies on: the plugin
describes itself validly, is only sent types it accepts, and answers every
message with a :class:`~plugin_sdk.Reply`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import trio

from .._outcome import describe_value
from .._patterns import type_matches
from ..info import PluginInfo
from ..message import Message
from ..plugin import Plugin
from ..reply import Reply

__all__ = ["NotAcceptedError", "PluginContractError", "PluginHarness", "run_plugin"]


class NotAcceptedError(LookupError):
    """A test sent a plugin a message type it does not accept: the router never would."""


class PluginContractError(AssertionError):
    """The plugin broke the API the router relies on (for example ``handle`` raised)."""


class PluginHarness:
    """An async context manager that runs one plugin: start, messages, stop.

    ``async with PluginHarness(HostMount("/data /var/data")) as h:
    reply = await h.send(Message("container.create", {...}))``. With
    ``strict=False`` a message of a type the plugin does not accept is handed
    over anyway (useful to test the no-handler passthrough).
    """

    def __init__(self, plugin: Plugin, *, strict: bool = True) -> None:
        self.plugin = plugin
        self.strict = strict
        self.info: PluginInfo = plugin.info()
        """The plugin's self-description, taken when the harness was made."""
        self._running = False

    async def __aenter__(self) -> PluginHarness:
        await self.plugin.start()
        self._running = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._running = False
        await self.plugin.stop()

    def accepts(self, message_type: str) -> bool:
        """Whether the router would route ``message_type`` to this plugin."""
        return any(type_matches(p, message_type) for p in self.info.accepts)

    async def send(self, message: Message | str, body: Any = None) -> Reply:
        """Hand one message to the plugin and return its reply.

        ``message`` is a Message, or a type with ``body`` to build one. Raises
        :class:`NotAcceptedError` for a type the plugin does not accept (when
        strict) and :class:`PluginContractError` if ``handle`` raises or returns
        something that is not a Reply.
        """
        if not self._running:
            raise RuntimeError("the harness is not running: use 'async with PluginHarness(...)'")
        if isinstance(message, str):
            message = Message(message, body)
        if self.strict and not self.accepts(message.type):
            raise NotAcceptedError(
                f"plugin {self.info.name!r} does not accept {message.type!r}"
                f" (it accepts {list(self.info.accepts)})"
            )
        try:
            reply = await self.plugin.handle(message)
        except Exception as exc:
            raise PluginContractError(
                f"plugin {self.info.name!r}: handle() raised {type(exc).__name__}: {exc}"
                " (it must answer with an error reply instead)"
            ) from exc
        if not isinstance(reply, Reply):
            raise PluginContractError(
                f"plugin {self.info.name!r}: handle() returned {describe_value(reply)}, not a Reply"
            )
        return reply


def run_plugin(plugin: Plugin, *messages: Message, strict: bool = True) -> list[Reply]:
    """Start ``plugin``, send it ``messages`` one by one, stop it; return the replies.

    Synchronous (it runs its own trio loop), so it cannot be called from inside
    an async test: use :class:`PluginHarness` there.
    """

    async def main() -> list[Reply]:
        async with PluginHarness(plugin, strict=strict) as harness:
            return [await harness.send(message) for message in messages]

    return trio.run(main)
