"""Errors of subprocess plugins, as the router sees them."""

from __future__ import annotations

__all__ = [
    "ExecError",
    "PluginCrashed",
    "PluginProtocolError",
    "PluginStartError",
    "PluginUnavailable",
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
