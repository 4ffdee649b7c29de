"""Robust summaries for noisy timings: medians, percentiles and steady-state rates.

The machine this runs on is shared: the host pauses for hundreds of milliseconds now
and then. A mean absorbs a pause; a median over slices of a run shrugs it off, so the
steady-state rate is the median of per-slice rates, reported beside the wall rate.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

__all__ = ["median", "percentile", "slice_rates", "slice_size", "steady_rate"]


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence (mean of the two middle values when even)."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by the nearest-rank method: always an observed value.

    Nearest rank rather than interpolation, so that p99 of a run is a round trip that
    really happened, not a blend of two.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def slice_size(count: int, slices: int, window: int = 1) -> int:
    """Events per slice when ``count`` events are cut into about ``slices`` slices.

    About: rounding down may leave a few more whole slices (fewer than twice as many).

    Never fewer than two ``window``s: with ``window`` events in flight, a whole
    window can complete at one instant, and a slice shorter than that measures
    the burst, not the rate. A short run therefore gets fewer slices.
    """
    return max(1, count // slices, 2 * window)


def slice_rates(marks_ns: Sequence[int], per_slice: int) -> list[float]:
    """Events per second in each slice, from the clock readings at slice boundaries.

    ``marks_ns[0]`` is the start and ``marks_ns[i]`` the time the ``i``-th slice of
    ``per_slice`` events completed. A slice that took no measurable time is skipped
    (it carries no rate, only clock granularity).
    """
    if per_slice <= 0:
        raise ValueError(f"per_slice must be positive, got {per_slice}")
    rates: list[float] = []
    for start, end in itertools.pairwise(marks_ns):
        if end > start:
            rates.append(per_slice * 1e9 / (end - start))
    return rates


def steady_rate(marks_ns: Sequence[int], per_slice: int) -> float:
    """The median of :func:`slice_rates`: the rate the run kept up outside its stalls."""
    rates = slice_rates(marks_ns, per_slice)
    if not rates:
        raise ValueError("no slice with a measurable duration")
    return median(rates)
