"""A benchmark case: a named producer of figures that may be unavailable in this tree.

Cases for parts still being written (the Session layer, the router) say why they
cannot run yet instead of failing, so ``bin/bench`` works at every stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .config import BenchConfig
from .figure import Figure

__all__ = ["Case", "Unavailable"]


class Unavailable(Exception):
    """Raised by a case whose subject does not exist yet; the text says what is missing."""


@dataclass(frozen=True, slots=True)
class Case:
    """A named group of figures measured together (sharing children and warm-up)."""

    name: str
    summary: str
    run: Callable[[BenchConfig], list[Figure]]
