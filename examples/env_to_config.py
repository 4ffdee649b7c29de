"""env-to-config: PouchContainer's pre-create hook as a chanrouter plugin.

Reads resource limits from a ``container.create`` message's environment
(``CPU_LIMIT=2``, ``MEMORY_LIMIT=512m``, ``PIDS_LIMIT=100``) and sets the matching
Docker Engine API ``HostConfig`` fields (``NanoCpus``, ``Memory``, ``PidsLimit``).
The variables stay in ``Env``: the container may still want to read them.

Run it out of process::

    routerd --plugin-exec "python -m plugin_sdk examples.env_to_config:EnvToConfig"
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from plugin_sdk import Message, Plugin, error, handles, run

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def cpus(value: str) -> int:
    """``"1.5"`` CPUs as Docker's NanoCpus (``1500000000``)."""
    n = float(value)
    if not n > 0:
        raise ValueError("must be a positive number of CPUs")
    return round(n * 1e9)


def size(value: str) -> int:
    """``"512m"`` as bytes (``536870912``); k, m, g and t are powers of 1024."""
    m = _SIZE.match(value)
    if not m:
        raise ValueError("expected a size such as 512m or 2g")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def count(value: str) -> int:
    """A positive whole number."""
    n = int(value)
    if n <= 0:
        raise ValueError("must be a positive whole number")
    return n


LIMITS: dict[str, tuple[str, Callable[[str], int]]] = {
    "CPU_LIMIT": ("NanoCpus", cpus),
    "MEMORY_LIMIT": ("Memory", size),
    "PIDS_LIMIT": ("PidsLimit", count),
}


class EnvToConfig(Plugin):
    """Turn ``*_LIMIT`` environment variables into HostConfig resource fields."""

    name = "env-to-config"
    version = "1.0"

    @handles("container.create")
    def apply_limits(self, msg: Message) -> Message | Any:
        body = msg.body
        if not isinstance(body, dict):
            return error(f"container.create body must be a map, got {type(body).__name__}")
        env = body.get("Env") or []
        fields: dict[str, int] = {}
        for entry in env:
            key, sep, value = str(entry).partition("=")
            if not sep or key not in LIMITS:
                continue
            field, convert = LIMITS[key]
            try:
                fields[field] = convert(value)
            except ValueError as exc:
                return error(f"{key}={value!r}: {exc}")
        if not fields:
            return None
        host_config = dict(body.get("HostConfig") or {})
        host_config.update(fields)
        return Message(msg.type, {**body, "HostConfig": host_config}, msg.id, msg.headers)


if __name__ == "__main__":
    run(EnvToConfig)
