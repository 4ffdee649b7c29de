"""What every runner shares: the exit codes and what it needs of a plugin (no trio here)."""

from __future__ import annotations

from typing import Final, Protocol

from ..info import PluginInfo
from ..message import Message
from ..reply import Reply

__all__ = ["EXIT_FAILED", "EXIT_OK", "ServablePlugin"]

EXIT_OK: Final = 0
"""The host ended the session (or closed the calls channel) and the stop hook ran."""
EXIT_FAILED: Final = 1
"""The plugin could not start, or the session broke."""


class ServablePlugin(Protocol):
    """What the runner needs of a plugin: the plugin API of :class:`plugin_sdk.Plugin`."""

    def info(self) -> PluginInfo:
        """The plugin's self-description, sent in the handshake."""
        ...

    async def start(self) -> None:
        """Start hook, run before the handshake says ready."""
        ...

    async def handle(self, message: Message) -> Reply:
        """Answer one message; never raises (handler errors are error replies)."""
        ...

    async def stop(self) -> None:
        """Stop hook, run after the last call has been answered."""
        ...
