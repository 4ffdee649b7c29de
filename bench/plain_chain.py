"""The in-process floor: three plain function calls making the edits 3 builtins would make.

The steps mirror ``host-mount "/var/lib/shared /shared"``, ``set-field "N Labels.n"``
and an ``authz`` that allows the message. Each edit copies what it changes (a plugin
answering with a new message leaves the router's alone), so this is what a pipeline
of builtin plugins costs with validation, routing, dispatch and bookkeeping taken away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from plugin_sdk import Message

from .case import Case
from .config import BenchConfig
from .figure import Better, Figure, figure_from_passes
from .stats import median

__all__ = [
    "CASES",
    "STEPS",
    "add_bind",
    "container_create",
    "passthrough",
    "plain_chain_pass",
    "set_field",
]

BIND = "/var/lib/shared:/shared"


def container_create(index: int) -> Message:
    """A ``container.create`` message shaped like a small Docker create request."""
    body: dict[str, Any] = {
        "Image": "busybox",
        "Cmd": ["true"],
        "Env": [f"N={index}"],
        "HostConfig": {"Binds": []},
        "Labels": {},
    }
    return Message("container.create", body, id=f"c{index}")


def add_bind(message: Message) -> Message:
    """What a host-mount plugin does: append one bind mount to HostConfig.Binds."""
    body = dict(message.body)
    host = dict(body.get("HostConfig") or {})
    host["Binds"] = [*host.get("Binds", ()), BIND]
    body["HostConfig"] = host
    return Message(message.type, body, message.id, message.headers)


def set_field(message: Message) -> Message:
    """What ``set-field "N Labels.n"`` does: copy env var ``N`` into ``Labels.n``."""
    value = None
    for item in message.body.get("Env", ()):
        if item.startswith("N="):
            value = item[2:]  # the last one counts, as in Docker
    if value is None:
        return message
    body = dict(message.body)
    body["Labels"] = {**body.get("Labels", {}), "n": value}
    return Message(message.type, body, message.id, message.headers)


def passthrough(message: Message) -> Message:
    """What an authz allowing the message (or a log plugin) does to it: nothing."""
    return message


STEPS: tuple[Callable[[Message], Message], ...] = (add_bind, set_field, passthrough)
"""The three steps, in pipeline order."""


def plain_chain_pass(messages: Sequence[Message], slices: int) -> tuple[float, float]:
    """(wall, steady) ns per message for one pass of ``messages`` through :data:`STEPS`."""
    f1, f2, f3 = STEPS
    per_slice = max(1, len(messages) // slices)
    clock = time.perf_counter_ns
    slice_costs: list[float] = []
    start = clock()
    for lo in range(0, len(messages), per_slice):
        chunk = messages[lo : lo + per_slice]
        t0 = clock()
        for message in chunk:
            f3(f2(f1(message)))
        slice_costs.append((clock() - t0) / len(chunk))
    wall = (clock() - start) / len(messages)
    return wall, median(slice_costs)


def plain_chain_figures(cfg: BenchConfig) -> list[Figure]:
    """ns per message through the 3-call chain (wall and steady state)."""
    messages = [container_create(i) for i in range(cfg.count(200_000, 40_000))]
    plain_chain_pass(messages[: max(1, len(messages) // 10)], cfg.slices)
    walls: list[float] = []
    steadies: list[float] = []
    for _ in range(cfg.passes):
        wall, steady = plain_chain_pass(messages, cfg.slices)
        walls.append(wall)
        steadies.append(steady)
    return [
        figure_from_passes("plain.chain3.wall", walls, "ns/msg", Better.LOWER),
        figure_from_passes("plain.chain3.steady", steadies, "ns/msg", Better.LOWER),
    ]


CASES = (
    Case(
        "plain.chain", "3 plain function calls per message (in-process floor)", plain_chain_figures
    ),
)
"""The in-process baseline cases."""
