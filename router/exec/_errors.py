"""Errors of subprocess plugins, as the router sees them."""

from __future__ import annotations

__all__ = [
    "ExecError",
    "PluginCrashed",
    "PluginProtocolError",
    "PluginStartError",
    "PluginUnavailable",
    "describe_error",
]


class ExecError(Exception):
    """Base of every subprocess-plugin error; the text names the plugin or its command."""


class PluginStartError(ExecError):
    """A plugin failed to start: not found, exited, refused its option, or a bad handshake."""


class PluginCrashed(ExecError):
    """The plugin process died (or was killed) while this call was in flight."""


class PluginProtocolError(PluginCrashed):
    """The plugin broke the protocol; it has been killed (and will be restarted)."""


class PluginUnavailable(ExecError):
    """The plugin is down (restarting, quarantined or stopped): the call was not sent."""


def describe_error(error: Exception) -> str:
    """``"PluginCrashed: plugin 'echo' exited with status 3"``: an error as the engine
    shows a raised one, so a call's error reads the same through ``call()`` and
    ``submit()``."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
