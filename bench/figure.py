"""One reported number: its name, value, unit, which way is better, and its baseline."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
    paired: tuple[float, ...] = ()
    """Baseline values measured alternately with ``passes`` (same index), if any.

    A paired figure's ratio is the median of the per-pass ratios: each pass is
    compared with a baseline pass taken moments before or after it, which cancels
    most of the machine's drift (CPU placement, neighbours, host pauses).
    """

    @property
    def paired_ratio(self) -> float | None:
        """Median of ``pass / paired baseline`` over passes; ``None`` if not paired."""
        ratios = [p / b for p, b in zip(self.passes, self.paired, strict=False) if b]
        return median(ratios) if ratios else None


def figure_from_passes(
    name: str,
    passes: Sequence[float],
    unit: str,
    better: Better,
    baseline: str | None = None,
    note: str = "",
    paired: Sequence[float] = (),
) -> Figure:
    """A :class:`Figure` whose value is the median of ``passes``.

    ``paired`` holds baseline values measured alternately with ``passes``; see
    :attr:`Figure.paired`.
    """
    if paired and len(paired) != len(passes):
        raise ValueError(f"{name}: {len(passes)} passes but {len(paired)} paired baseline values")
    return Figure(name, median(passes), unit, better, baseline, tuple(passes), note, tuple(paired))


@dataclass(frozen=True, slots=True)
class Row:
    """A figure with its ratio to its baseline resolved (``None``: root, or baseline missing)."""

    figure: Figure
    ratio: float | None

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
            "paired_baseline_passes": list(f.paired),
            "note": f.note,
        }


def rows_with_ratios(figures: Iterable[Figure]) -> list[Row]:
    """Resolve each figure's ratio as ``value / baseline value`` from the same run.

    The ratio is always value over baseline whatever the direction; ``better`` says
    whether above 1 is good (throughput) or bad (latency, cost). A paired figure
    uses its own per-pass ratio instead (see :attr:`Figure.paired`).
    """
    figs = list(figures)
    by_name = {f.name: f for f in figs}
    rows: list[Row] = []
    for f in figs:
        base = by_name.get(f.baseline) if f.baseline else None
        ratio = f.value / base.value if base is not None and base.value else None
        if f.paired:
            ratio = f.paired_ratio
        rows.append(Row(f, ratio))
    return rows
