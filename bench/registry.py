"""Every benchmark case, in run order: baselines first, then what is compared with them."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from . import filter_cases, plain_chain, raw_cases, router_cases, rss_cases, session_cases
from .case import Case

__all__ = ["ALL_CASES", "select_cases"]

ALL_CASES: tuple[Case, ...] = (
    *raw_cases.CASES,
    *plain_chain.CASES,
    *session_cases.CASES,
    *router_cases.CASES,
    *filter_cases.CASES,
    *rss_cases.CASES,
)
"""All cases; a case's baselines come before it so ratios resolve in one run."""


def select_cases(patterns: Iterable[str], cases: Sequence[Case] = ALL_CASES) -> list[Case]:
    """Cases whose name matches any glob in ``patterns`` (all cases if none given)."""
    pats = list(patterns)
    if not pats:
        return list(cases)
    return [c for c in cases if any(fnmatch.fnmatchcase(c.name, p) for p in pats)]
