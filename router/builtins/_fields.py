"""Dotted field paths into a message body (``HostConfig.Memory``), read and copy-on-write.

Builtins never mutate the message they were handed: the router may retry a call
or hold the input for other plugins, so a change builds new maps along the path.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["MISSING", "FieldPathError", "get_field", "parse_path", "replace_field", "set_field"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""What :func:`get_field` returns when the path leads nowhere."""


class FieldPathError(ValueError):
    """A path cannot be set because a value along it is not a map."""


def parse_path(text: str) -> tuple[str, ...]:
    """Split ``A.B.C`` into its keys; raise ValueError for an empty key."""
    keys = tuple(text.split("."))
    if not all(keys):
        raise ValueError(f"field path {text!r} has an empty part (write A.B.C)")
    return keys


def get_field(body: object, path: tuple[str, ...]) -> Any:
    """The value at ``path`` (map keys; a decimal key also indexes a list) or MISSING."""
    value: Any = body
    for key in path:
        if isinstance(value, dict):
            if key not in value:
                return MISSING
            value = value[key]
        elif isinstance(value, list) and key.isdecimal() and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
    return value


def set_field(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``body`` with ``value`` at ``path``, creating missing maps on the way.

    Only the maps along the path are copied; everything else is shared with ``body``.
    Raises :class:`FieldPathError` naming the part of the path that holds a non-map.
    """
    return replace_field(body, path, value)[0]


def replace_field(
    body: dict[str, Any], path: tuple[str, ...], value: Any
) -> tuple[dict[str, Any], Any]:
    """:func:`set_field`, and the value that was at ``path`` (MISSING if none), in one walk."""
    new = dict(body)
    old_map, new_map = body, new
    last = len(path) - 1
    for depth in range(last):
        key = path[depth]
        inner = old_map.get(key)
        if inner is None:
            inner = {}
        elif not isinstance(inner, dict):
            where = ".".join(path[: depth + 1])
            raise FieldPathError(f"{where} is a {type(inner).__name__}, not a map")
        copied = dict(inner)
        new_map[key] = copied
        old_map, new_map = inner, copied
    key = path[last]
    new_map[key] = value
    return new, old_map.get(key, MISSING)
