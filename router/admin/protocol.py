"""The admin messages: what routerctl asks routerd and what it answers (pure, no I/O).

The normative description is the "Admin interface" section of docs/PROTOCOL.md. In
short: the client opens a top-level channel and sends requests on it, each a map
``{"op": OP, ...arguments, "reply": <SENDER reference>}``. The server answers on the
reply channel with ``{"ok": true, ...}`` or ``{"ok": false, "error": TEXT}`` and
closes it; ``watch`` instead keeps the reply channel open and streams events.

This module checks a request's shape and nothing else: whether a named plugin exists
is the server's business. Requests are strict (unknown fields are errors) so a typo
in a client is reported instead of silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from plugin_sdk import Message, MessageFormatError

__all__ = [
    "OPS",
    "AdminRequestError",
    "Request",
    "fail",
    "ok",
    "parse_request",
]

OPS: Final = (
    "plugins",
    "add",
    "remove",
    "restart",
    "move",
    "reorder",
    "send",
    "watch",
    "stats",
    "shutdown",
)
"""Every operation the admin server knows."""

MUTATING_OPS: Final = frozenset({"add", "remove", "restart", "move", "reorder"})
"""Operations that change the pipeline; the server runs them one at a time."""


class AdminRequestError(ValueError):
    """A request is malformed; the text says what is wrong and is sent back as the error."""


@dataclass(frozen=True, slots=True)
class Request:
    """One validated admin request (without its reply channel)."""

    op: str
    args: Mapping[str, Any]
    """The op's arguments, checked and with defaults filled in."""


def ok(**fields: Any) -> dict[str, Any]:
    """A success reply carrying ``fields``."""
    return {"ok": True, **fields}


def fail(error: str) -> dict[str, Any]:
    """An error reply: the daemon said no, and why."""
    return {"ok": False, "error": error}


_MISSING: Final = object()


def _field(
    payload: Mapping[str, Any], op: str, name: str, kind: type, *, default: Any = _MISSING
) -> Any:
    value = payload.get(name, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise AdminRequestError(f"{op}: missing required field {name!r}")
        return default
    # bool is an int subclass: a position of True is a client bug worth naming.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise AdminRequestError(
            f"{op}: field {name!r} must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def _name(payload: Mapping[str, Any], op: str, field: str = "name") -> str:
    name: str = _field(payload, op, field, str)
    if not name or any(c.isspace() for c in name):
        raise AdminRequestError(f"{op}: {field!r} must be a non-empty plugin name without spaces")
    return name


def _parse_add(p: Mapping[str, Any]) -> dict[str, Any]:
    plugin = _field(p, "add", "plugin", str, default=None)
    cmd = _field(p, "add", "exec", str, default=None)
    if (plugin is None) == (cmd is None):
        raise AdminRequestError(
            "add: give exactly one of 'plugin' (a builtin) or 'exec' (a command)"
        )
    if cmd is not None and not cmd.strip():
        raise AdminRequestError("add: 'exec' must be a non-empty command")
    if plugin is not None and not plugin:
        raise AdminRequestError("add: 'plugin' must be a non-empty builtin name")
    option = _field(p, "add", "option", str, default="")
    if cmd is not None and "option" in p:
        raise AdminRequestError("add: 'option' goes with 'plugin'; put an exec plugin's in 'exec'")
    name = _name(p, "add") if "name" in p else None
    position = _field(p, "add", "position", int, default=None)
    if position is not None and position < 0:
        raise AdminRequestError(f"add: 'position' must be >= 0, got {position}")
    priority = _field(p, "add", "priority", int, default=None)
    return {
        "plugin": plugin,
        "exec": cmd,
        "option": option,
        "name": name,
        "position": position,
        "priority": priority,
    }


def _parse_move(p: Mapping[str, Any]) -> dict[str, Any]:
    position = _field(p, "move", "position", int)
    if position < 0:
        raise AdminRequestError(f"move: 'position' must be >= 0, got {position}")
    return {"name": _name(p, "move"), "position": position}


def _parse_reorder(p: Mapping[str, Any]) -> dict[str, Any]:
    names = _field(p, "reorder", "names", list)
    if not names:
        raise AdminRequestError("reorder: 'names' must list at least one plugin")
    for i, n in enumerate(names):
        if not isinstance(n, str) or not n:
            raise AdminRequestError(f"reorder: names[{i}] must be a non-empty string, got {n!r}")
    if len(set(names)) != len(names):
        raise AdminRequestError("reorder: a plugin is named twice in 'names'")
    return {"names": tuple(names)}


def _parse_send(p: Mapping[str, Any]) -> dict[str, Any]:
    raw = _field(p, "send", "message", dict)
    try:
        message = Message.from_wire(raw, where="send: message")
    except MessageFormatError as exc:
        raise AdminRequestError(str(exc)) from None
    return {"message": message}


def _parse_watch(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"results": _field(p, "watch", "results", bool, default=True)}


_ALLOWED: Final[dict[str, frozenset[str]]] = {
    "plugins": frozenset(),
    "add": frozenset({"plugin", "exec", "option", "name", "position", "priority"}),
    "remove": frozenset({"name"}),
    "restart": frozenset({"name"}),
    "move": frozenset({"name", "position"}),
    "reorder": frozenset({"names"}),
    "send": frozenset({"message"}),
    "watch": frozenset({"results"}),
    "stats": frozenset(),
    "shutdown": frozenset(),
}


def parse_request(payload: object) -> Request:
    """Check a request map (its ``reply`` entry is ignored here) or raise AdminRequestError."""
    if not isinstance(payload, dict):
        raise AdminRequestError(f"a request must be a map, got {type(payload).__name__}")
    op = payload.get("op")
    if not isinstance(op, str):
        raise AdminRequestError(f"a request needs an 'op' string, got {op!r}")
    if op not in _ALLOWED:
        raise AdminRequestError(f"unknown op {op!r}; known ops: {', '.join(OPS)}")
    extra = [k for k in payload if k not in _ALLOWED[op] and k not in ("op", "reply")]
    if extra:
        shown = ", ".join(sorted(repr(k) for k in extra))
        raise AdminRequestError(f"{op}: unknown field(s) {shown}")
    args: dict[str, Any]
    if op == "add":
        args = _parse_add(payload)
    elif op in ("remove", "restart"):
        args = {"name": _name(payload, op)}
    elif op == "move":
        args = _parse_move(payload)
    elif op == "reorder":
        args = _parse_reorder(payload)
    elif op == "send":
        args = _parse_send(payload)
    elif op == "watch":
        args = _parse_watch(payload)
    else:
        args = {}
    return Request(op, args)
