"""A plugin class's handler table: which method handles which message type.

Dispatch rule (documented in docs/PLUGINS.md): a handler whose *exact* pattern
equals the type wins; otherwise the first handler, in declaration order, with a
*glob* that matches. Declaration order is base classes first, then the order of
definition in the class body; a method overridden in a subclass keeps its
place, and the override decides whether it is still a handler.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._markers import HANDLES_ATTR, MisplacedMarker, PluginDefinitionError, marker_text
from ._patterns import is_glob, type_matches

__all__ = ["Handler", "HandlerTable", "class_name", "collect_handlers"]

_MEMO_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Handler:
    """One marked method: its name, the plain function and the patterns it handles."""

    method: str
    function: Callable[..., Any]
    patterns: tuple[str, ...]
    is_async: bool = False
    """True for an ``async def`` handler: only :meth:`Plugin.handle` can await it."""


class _Dispatch(dict[str, "Handler | None"]):
    """The handler of each message type looked up so far; a miss is looked up and kept.

    A dict whose ``[]`` runs the dispatch rule only on a miss (``__missing__``): a
    hit costs one dict lookup, and a router sends a few types many times. Bounded,
    since types may come from the outside world.
    """

    __slots__ = ("_find",)

    def __init__(self, find: Callable[[str], Handler | None]) -> None:
        super().__init__()
        self._find = find

    def __missing__(self, message_type: str) -> Handler | None:
        found = self._find(message_type)
        if len(self) >= _MEMO_LIMIT:
            self.clear()
        self[message_type] = found
        return found


@dataclass(frozen=True, slots=True)
class HandlerTable:
    """The handlers of one plugin class, with the lookup the dispatch rule needs."""

    handlers: tuple[Handler, ...] = ()
    _exact: dict[str, Handler] = field(default_factory=dict, repr=False)
    _globs: tuple[tuple[str, Handler], ...] = field(default=(), repr=False)
    dispatch: _Dispatch = field(init=False, repr=False, compare=False)
    """``dispatch[message_type]``: what :meth:`lookup` answers, as one dict lookup."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dispatch", _Dispatch(self._find))

    @classmethod
    def of(cls, handlers: tuple[Handler, ...]) -> HandlerTable:
        """Build the table; the caller has checked that no pattern appears twice."""
        exact = {p: h for h in handlers for p in h.patterns if not is_glob(p)}
        globs = tuple((p, h) for h in handlers for p in h.patterns if is_glob(p))
        return cls(handlers, exact, globs)

    def patterns(self) -> tuple[str, ...]:
        """Every pattern, in declaration order: what the plugin accepts by default."""
        return tuple(p for h in self.handlers for p in h.patterns)

    def lookup(self, message_type: str) -> Handler | None:
        """The handler for ``message_type`` by the dispatch rule, or None."""
        return self.dispatch[message_type]

    def _find(self, message_type: str) -> Handler | None:
        handler = self._exact.get(message_type)
        if handler is not None:
            return handler
        for pattern, candidate in self._globs:
            if type_matches(pattern, message_type):
                return candidate
        return None


def _declared_names(cls: type) -> list[str]:
    """Attribute names in declaration order: base classes first, then each body in order."""
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        names.update(dict.fromkeys(vars(klass)))
    return list(names)


def _resolve(cls: type, name: str) -> object:
    """The object ``name`` resolves to on ``cls``, without triggering descriptors."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    raise AttributeError(name)  # pragma: no cover - names come from the MRO itself


def _check_handler(where: str, function: Callable[..., Any]) -> None:
    if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
        raise PluginDefinitionError(
            f"{where}: a handler must return its reply, not yield (it is a generator)"
        )
    try:
        inspect.signature(function).bind(object(), object())
    except TypeError:
        # Without annotations: they are strings under postponed evaluation, noise here.
        sig = inspect.signature(function)
        sig = sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
        raise PluginDefinitionError(
            f"{where}{sig}: a handler must take exactly (self, msg)"
        ) from None


def class_name(cls: type) -> str:
    """A class's name for error texts: ``module.Name``, without ``<locals>`` noise."""
    return f"{cls.__module__}.{cls.__name__}"


def collect_handlers(cls: type) -> HandlerTable:
    """Find and check the ``@handles`` methods of ``cls``.

    Raises :class:`PluginDefinitionError` naming the class and method for a marker
    on something that is not a plain function, a handler that cannot be called
    as ``handler(self, msg)`` or yields, and a pattern declared by two handlers
    (the second could never run).
    """
    handlers: list[Handler] = []
    owner_of: dict[str, str] = {}
    for name in _declared_names(cls):
        value = _resolve(cls, name)
        where = f"plugin class {class_name(cls)}, method {name}"
        if isinstance(value, MisplacedMarker):
            raise PluginDefinitionError(
                f"{where}: {marker_text(value.patterns)} must mark a plain 'def' or 'async def'"
                f" method, not a {type(value.target).__name__}"
            )
        patterns: tuple[str, ...] | None = getattr(value, HANDLES_ATTR, None)
        if patterns is None or not inspect.isfunction(value):
            continue
        _check_handler(where, value)
        for pattern in patterns:
            if pattern in owner_of:
                other = owner_of[pattern]
                raise PluginDefinitionError(
                    f"{where}: pattern {pattern!r} is already handled by method {other}"
                )
            owner_of[pattern] = name
        handlers.append(Handler(name, value, patterns, inspect.iscoroutinefunction(value)))
    return HandlerTable.of(tuple(handlers))
