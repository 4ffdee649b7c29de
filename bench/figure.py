"""One reported number: its name, value, unit, which way is better, and its baseline."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .stats import median

__all__ = ["Better", "Figure", "Row", "figure_from_passes", "rows_with_ratios"]


class Better(enum.StrEnum):
    """Which direction of a figure is an improvement."""

    HIGHER = "higher"
    LOWER = "lower"


@dataclass(frozen=True, slots=True)
class Figure:
    """A measured figure: the median over passes, with every pass kept for the record."""

    name: str
    """Dotted, stable name (``raw.echo.w64.60B.steady``); JSON consumers key on it."""
    value: float
    unit: str
    better: Better
    baseline: str | None = None
    """Name of the figure this one is divided by; ``None`` for a root baseline."""
    passes: tuple[float, ...] = ()
    note: str = ""


def figure_from_passes(
    name: str,
    passes: Sequence[float],
    unit: str,
    better: Better,
    baseline: str | None = None,
    note: str = "",
) -> Figure:
    """A :class:`Figure` whose value is the median of ``passes``."""
    return Figure(name, median(passes), unit, better, baseline, tuple(passes), note)


@dataclass(frozen=True, slots=True)
class Row:
    """A figure with its ratio to its baseline resolved (``None``: root, or baseline missing)."""

    figure: Figure
    ratio: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON record of this row."""
        f = self.figure
        return {
            "name": f.name,
            "value": f.value,
            "unit": f.unit,
            "better": str(f.better),
            "baseline": f.baseline,
            "ratio": self.ratio,
            "passes": list(f.passes),
            "note": f.note,
        }


def rows_with_ratios(figures: Iterable[Figure]) -> list[Row]:
    """Resolve each figure's ratio as ``value / baseline value`` from the same run.

    The ratio is always value over baseline whatever the direction; ``better`` says
    whether above 1 is good (throughput) or bad (latency, cost).
    """
    figs = list(figures)
    by_name = {f.name: f for f in figs}
    rows: list[Row] = []
    for f in figs:
        base = by_name.get(f.baseline) if f.baseline else None
        ratio = f.value / base.value if base is not None and base.value else None
        rows.append(Row(f, ratio))
    return rows
