"""What the admin interface reads from the router: the pipeline rows and the totals.

The one place that knows how to ask the engine and the plugin handles for their
state, so the server and the wire shapes stay independent of handle classes.
Handles report what they have: an exec handle has a state, a pid and restarts; an
in-process plugin is ``ready`` with no pid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugin_sdk import PluginInfo

from ..engine import Router
from ..handle import PluginHandle

__all__ = ["fresh_handle", "handle", "handle_kind", "pipeline_names", "plugin_row", "rows"]


def handle_kind(handle: object) -> str:
    """``exec`` for a subprocess plugin handle, ``builtin`` for an in-process one."""
    inner = getattr(handle, "inner", None)  # an operator's priority override
    if inner is not None:
        return handle_kind(inner)
    return "exec" if hasattr(handle, "pid") else "builtin"


def _state(handle: object) -> str:
    state = getattr(handle, "state", None)
    if state is None:
        return "ready"
    return str(getattr(state, "value", state))


def plugin_row(
    position: int, info: PluginInfo, handle: object, counters: Mapping[str, Any]
) -> dict[str, Any]:
    """One ``plugins`` reply row (wire shape documented in docs/PROTOCOL.md)."""
    return {
        "position": position,
        "name": info.name,
        "kind": handle_kind(handle),
        "version": info.version,
        "accepts": list(info.accepts),
        "priority": info.priority,
        "concurrency": info.concurrency,
        "timeout": info.timeout,
        "on_error": str(info.on_error),
        "max_attempts": info.max_attempts,
        # An exec handle's (an operator's override passes it through); builtins have none.
        "features": list(getattr(handle, "features", ())),
        "state": _state(handle),
        "pid": getattr(handle, "pid", None),
        "restarts": getattr(handle, "restarts", 0),
        "command": getattr(handle, "command", None),
        "last_error": getattr(handle, "last_error", "") or "",
        "handled": counters.get("handled", 0),
        "dropped": counters.get("dropped", 0),
        "failed": counters.get("failed", 0),
        "timed_out": counters.get("timed_out", 0),
        "p50": counters.get("p50"),
        "p99": counters.get("p99"),
    }


# ---- reading the engine -----------------------------------------------------------------


def pipeline_names(router: Router) -> tuple[str, ...]:
    """Plugin names in pipeline order."""
    return router.plan.names


def handle(router: Router, name: str) -> PluginHandle | None:
    """The handle registered as ``name`` (None if there is none)."""
    return router.handles.get(name)


def rows(router: Router) -> list[dict[str, Any]]:
    """The ``plugins`` reply rows for ``router``, in pipeline order."""
    handles = router.handles
    stats = router.stats()
    result = []
    for position, info in enumerate(router.plan.plugins):
        h = handles.get(info.name)
        counters = stats[info.name].to_wire() if info.name in stats else {}
        result.append(plugin_row(position, info, h, counters))
    return result


def fresh_handle(old: object) -> PluginHandle | None:
    """A new, unstarted handle like ``old`` (for restarting an in-process plugin), or None."""
    from ..handle import InProcessHandle
    from .ops import PriorityOverride

    if isinstance(old, PriorityOverride):
        inner = fresh_handle(old.inner)
        return None if inner is None else PriorityOverride(inner, old.priority)
    if isinstance(old, InProcessHandle):
        plugin: Any = old.plugin
        option = getattr(plugin, "option", None)
        if option is None:
            return None
        return InProcessHandle(type(plugin)(option, name=old.info.name))
    return None
