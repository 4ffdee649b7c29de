"""The plan: which plugins run, in which order, for which message type.

Order is registration order, overridden by priority (higher first); ties keep
registration order, so the order is a stable sort and always deterministic. A plan
is immutable: changing the plugin set makes a new plan, which is what lets a message
in flight finish with the plan it started with. The per-type pipelines are computed
on first use and cached on the plan object, so the cache dies with the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from itertools import pairwise
from typing import Final

from plugin_sdk import PluginInfo

__all__ = ["CACHED_TYPES_MAX", "Plan", "PlanError", "accepts_type"]


CACHED_TYPES_MAX: Final = 4096
"""Message types whose pipelines a plan keeps (it forgets them all past that)."""


class PlanError(ValueError):
    """A plugin set or an edit to it is invalid; the text names the plugins involved."""


def accepts_type(info: PluginInfo, message_type: str) -> bool:
    """Whether ``info`` accepts ``message_type``: an exact name or an fnmatch glob.

    Globs use :func:`fnmatch.fnmatchcase`: case-sensitive, and ``*`` crosses dots,
    so ``container.*`` matches ``container.exec.start`` and ``*`` matches every type.
    """
    return any(p == message_type or fnmatchcase(message_type, p) for p in info.accepts)


class Plan:
    """An immutable, ordered set of plugins, and the pipeline each message type gets."""

    __slots__ = ("_by_name", "_cache", "_order", "_registered")

    def __init__(self, plugins: Iterable[PluginInfo] = ()) -> None:
        registered = tuple(plugins)
        by_name: dict[str, int] = {}
        for index, info in enumerate(registered):
            if info.name in by_name:
                raise PlanError(
                    f"duplicate plugin name {info.name!r}: plugins #{by_name[info.name] + 1}"
                    f" and #{index + 1} in registration order both use it"
                )
            by_name[info.name] = index
        self._registered = registered
        # sorted() is stable, so equal priorities keep registration order.
        self._order = tuple(sorted(registered, key=lambda info: -info.priority))
        self._by_name = {info.name: info for info in registered}
        self._cache: dict[str, tuple[PluginInfo, ...]] = {}

    @property
    def plugins(self) -> tuple[PluginInfo, ...]:
        """All plugins in pipeline order."""
        return self._order

    @property
    def registered(self) -> tuple[PluginInfo, ...]:
        """All plugins in registration order (what :meth:`with_added` and friends edit)."""
        return self._registered

    @property
    def names(self) -> tuple[str, ...]:
        """Plugin names in pipeline order."""
        return tuple(info.name for info in self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"Plan({list(self.names)!r})"

    def get(self, name: str) -> PluginInfo:
        """The plugin called ``name``, or :class:`PlanError` if there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise PlanError(f"no plugin named {name!r} (have: {self._list()})") from None

    def for_type(self, message_type: str) -> tuple[PluginInfo, ...]:
        """The pipeline for ``message_type``: the plugins accepting it, in pipeline order."""
        pipeline = self._cache.get(message_type)
        if pipeline is None:
            pipeline = tuple(i for i in self._order if accepts_type(i, message_type))
            if len(self._cache) >= CACHED_TYPES_MAX:
                # Types come from the outside world: a daemon fed ever new ones must
                # not keep a pipeline for each of them forever.
                self._cache.clear()
            self._cache[message_type] = pipeline
        return pipeline

    def describe(self, message_type: str | None = None) -> str:
        """Render the pipeline order, or with ``message_type`` the plan for that type."""
        if message_type is not None:
            pipeline = self.for_type(message_type)
            if not pipeline:
                return f"{message_type}: no plugin accepts it (delivered unchanged)"
            return f"{message_type}: " + " -> ".join(i.name for i in pipeline)
        if not self._order:
            return "pipeline order: (no plugins)"
        width = max(len(i.name) for i in self._order)
        lines = ["pipeline order (priority, then registration):"]
        for n, info in enumerate(self._order, 1):
            accepts = ", ".join(info.accepts)
            lines.append(
                f"{n:>3}. {info.name:<{width}}  priority {info.priority:<4} accepts {accepts}"
            )
        return "\n".join(lines)

    def with_added(self, info: PluginInfo, position: int | None = None) -> Plan:
        """A new plan with ``info`` registered at ``position`` (default: last)."""
        if info.name in self._by_name:
            raise PlanError(f"a plugin named {info.name!r} is already registered")
        registered = list(self._registered)
        registered.insert(len(registered) if position is None else position, info)
        return Plan(registered)

    def without(self, name: str) -> Plan:
        """A new plan without the plugin called ``name``."""
        self.get(name)
        return Plan(i for i in self._registered if i.name != name)

    def with_replaced(self, name: str, info: PluginInfo) -> Plan:
        """A new plan where ``info`` takes the registration place of ``name``."""
        self.get(name)
        if info.name != name and info.name in self._by_name:
            raise PlanError(f"cannot replace {name!r} by {info.name!r}: that name is taken")
        return Plan(info if i.name == name else i for i in self._registered)

    def reordered(self, names: Sequence[str]) -> Plan:
        """A new plan whose registration order is ``names`` (all of them, each once).

        Priority still wins over registration order, so an order that contradicts
        priorities is refused with a :class:`PlanError` naming the pair, rather than
        silently producing a different order than the one asked for.
        """
        if sorted(names) != sorted(self._by_name) or len(set(names)) != len(names):
            raise PlanError(
                f"reorder needs each registered plugin exactly once: got {list(names)!r},"
                f" have {self._list()}"
            )
        plan = Plan(self._by_name[n] for n in names)
        if plan.names != tuple(names):
            for earlier, later in pairwise(names):
                a, b = self._by_name[earlier], self._by_name[later]
                if a.priority < b.priority:
                    raise PlanError(
                        f"cannot put {earlier!r} (priority {a.priority}) before {later!r}"
                        f" (priority {b.priority}): higher priority always runs first"
                    )
        return plan

    def _list(self) -> str:
        return ", ".join(repr(n) for n in self.names) or "none"
