"""Lineage: the derivations that led to a message, and how a loop among them reads.

A lineage is a tuple of ``(type, plugin)`` pairs: "a message of ``type`` was handed
to ``plugin``, which derived the next one". On the wire (the ``lineage`` header) it
is a list of two-element lists.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Lineage", "describe_loop", "lineage_to_wire"]

Lineage = tuple[tuple[str, str], ...]


def lineage_to_wire(lineage: Lineage) -> list[list[str]]:
    """The header value for ``lineage``: a list of ``[type, plugin]`` lists."""
    return [[t, p] for t, p in lineage]


def _render(chain: Sequence[tuple[str, str]], end: str) -> str:
    return "".join(f"{t} -[{p}]-> " for t, p in chain) + end


def describe_loop(lineage: Lineage, new_type: str, hop_limit: int) -> str:
    """The failure reason when deriving ``new_type`` would make ``lineage`` too long.

    Names the first repeating cycle (types and plugins) when the lineage holds one,
    else the whole chain: either way the text starts with "routing loop".
    """
    # The earliest step that repeats starts the cycle, so it reads from the input on.
    for i, step in enumerate(lineage):
        if step in lineage[i + 1 :]:
            cycle = lineage[i : lineage.index(step, i + 1)]
            return (
                f"routing loop: {_render(cycle, cycle[0][0])}"
                f" (lineage exceeded the hop limit of {hop_limit})"
            )
    return (
        f"routing loop: derivation chain longer than the hop limit of {hop_limit}:"
        f" {_render(lineage, new_type)}"
    )
