"""Alternate baseline and candidate passes so both see the same machine.

On a shared host the baseline measured a minute ago may have run with both processes
on one CPU and the candidate with them on two (a 10x difference per round trip).
Interleaving passes as A B B A A B ... and comparing neighbours cancels that drift.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["alternate", "alternate_async"]

T = TypeVar("T")


def _baseline_first(index: int) -> bool:
    # ABBA order: neither side always runs first (warmer caches, fresher pipes).
    return index % 2 == 0


def alternate(
    passes: int, baseline: Callable[[], T], candidate: Callable[[], T]
) -> tuple[list[T], list[T]]:
    """Run ``passes`` pairs of (baseline, candidate) in ABBA order; return both lists."""
    base: list[T] = []
    cand: list[T] = []
    for i in range(passes):
        if _baseline_first(i):
            base.append(baseline())
            cand.append(candidate())
        else:
            cand.append(candidate())
            base.append(baseline())
    return base, cand


async def alternate_async(
    passes: int, baseline: Callable[[], T], candidate: Callable[[], Awaitable[T]]
) -> tuple[list[T], list[T]]:
    """:func:`alternate` for an async candidate (the baseline blocks the loop on purpose)."""
    base: list[T] = []
    cand: list[T] = []
    for i in range(passes):
        if _baseline_first(i):
            base.append(baseline())
            cand.append(await candidate())
        else:
            cand.append(await candidate())
            base.append(baseline())
    return base, cand
