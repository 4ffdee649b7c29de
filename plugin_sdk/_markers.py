"""The ``@handles`` marker: it only tags a method; the Plugin class validates the tags.

As in pluggy, marking is cheap and dumb; all checks that need the class (arity,
duplicate patterns, misplaced markers) run once, when the plugin class is created,
and raise :class:`PluginDefinitionError` naming the class and the method.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

from ._patterns import pattern_problem

__all__ = ["PluginDefinitionError", "handles"]

HANDLES_ATTR: Final = "__chanrouter_handles__"
"""The attribute a marked function carries: its tuple of patterns."""

_F = TypeVar("_F", bound=Callable[..., Any])


def marker_text(patterns: tuple[object, ...]) -> str:
    """How a marker reads in source, for error texts: ``@handles('a', 'b')``."""
    return f"@handles({', '.join(map(repr, patterns))})"


class PluginDefinitionError(TypeError):
    """A plugin class is malformed; the text names the class and, if any, the method."""


class MisplacedMarker:
    """Stands in for a non-function that ``@handles`` was put on.

    A marker cannot tag a property, staticmethod or arbitrary object, and at
    decoration time the class name is not known yet; so the marker leaves this
    placeholder, and the plugin class reports it with both names.
    """

    def __init__(self, target: object, patterns: tuple[str, ...]) -> None:
        self.target = target
        self.patterns = patterns

    def __repr__(self) -> str:
        return f"<{marker_text(self.patterns)} on {type(self.target).__name__}>"


def handles(*patterns: str) -> Callable[[_F], _F]:
    """Mark a plugin method as the handler for messages whose type matches ``patterns``.

    Patterns are exact types (``container.create``) or globs (``container.*``);
    several per marker, and markers may be stacked. The method takes
    ``(self, msg)`` and may be ``async``. It returns None (pass the message on), a
    :class:`~plugin_sdk.Message` (emit it: same type replaces the input), a list
    of messages (emit them all) or a :class:`~plugin_sdk.Reply`.
    """
    if not patterns:
        raise PluginDefinitionError("@handles() needs at least one message type or pattern")
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem is not None:
            raise PluginDefinitionError(f"{marker_text(patterns)}: {problem}")

    def mark(target: _F) -> _F:
        if isinstance(target, MisplacedMarker):
            return cast(_F, MisplacedMarker(target.target, patterns + target.patterns))
        if not inspect.isfunction(target):
            return cast(_F, MisplacedMarker(target, patterns))
        # Stacked markers read top to bottom: the outer (later-applied) ones come first.
        earlier: tuple[str, ...] = getattr(target, HANDLES_ATTR, ())
        setattr(target, HANDLES_ATTR, patterns + earlier)
        return target

    return mark
