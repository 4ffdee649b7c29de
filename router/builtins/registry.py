"""Plugins by name: the ``chanrouter.plugins`` entry-point group.

The builtins are declared there by chanrouter's own packaging; any installed
distribution can add plugins the same way. Loading validates eagerly: the class
is checked when imported and the option when the instance is made, so a bad
``--plugin`` flag fails at startup, not on the first message.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Final

from plugin_sdk import Plugin

__all__ = [
    "GROUP",
    "PluginLoadError",
    "UnknownPluginError",
    "available",
    "instantiate",
    "load",
]

GROUP: Final = "chanrouter.plugins"
"""The entry-point group plugins are registered in."""


class PluginLoadError(Exception):
    """A named plugin cannot be loaded; the text names it and says why."""


class UnknownPluginError(PluginLoadError, LookupError):
    """No plugin has that name; the text lists the names there are."""

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none"
        super().__init__(f"unknown plugin {name!r} (available: {listed})")
        self.name = name
        self.known = known


def available() -> dict[str, EntryPoint]:
    """Every registered plugin's entry point, by name, sorted by name."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    return dict(sorted(found.items()))


def instantiate(entry_point: EntryPoint, option: str = "", *, name: str | None = None) -> Plugin:
    """Import ``entry_point`` and make a plugin instance configured with ``option``.

    ``name`` names the instance (default: the class's name). Raises
    :class:`PluginLoadError` if the import fails or the object is not a
    :class:`~plugin_sdk.Plugin` subclass; the plugin's own
    :class:`~plugin_sdk.OptionError` (naming plugin and option) passes through,
    as do :class:`~plugin_sdk.PluginDefinitionError` and
    :class:`~plugin_sdk.PluginInfoError`.
    """
    try:
        obj = entry_point.load()
    except Exception as exc:
        raise PluginLoadError(
            f"plugin {entry_point.name!r}: cannot import {entry_point.value}:"
            f" {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, Plugin)):
        raise PluginLoadError(
            f"plugin {entry_point.name!r}: {entry_point.value} is {obj!r},"
            " not a plugin_sdk.Plugin subclass"
        )
    return obj(option, name=name)


def load(name: str, option: str = "", *, instance_name: str | None = None) -> Plugin:
    """The registered plugin ``name``, configured with ``option``.

    Raises :class:`UnknownPluginError` (listing the available names) for an
    unknown name; otherwise as :func:`instantiate`.
    """
    plugins = available()
    if name not in plugins:
        raise UnknownPluginError(name, list(plugins))
    return instantiate(plugins[name], option, name=instance_name)
