"""How big a run is: passes, message counts, slices. One record handed to every case."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QUICK_SIZES", "BenchConfig"]

QUICK_SIZES = ("60B", "64KiB")
"""Body sizes a ``--quick`` run measures unless ``--size`` says otherwise."""


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Run size. ``quick`` trades precision for a run well under 30 s."""

    quick: bool = False
    passes: int = 5
    """Each figure is the median over this many passes."""
    messages: int | None = None
    """If set, every case uses this many messages (the smoke test uses a handful)."""
    slices: int = 10
    """A pipelined run is cut into this many slices for the steady-state rate."""
    sizes: tuple[str, ...] = ()
    """Body size labels to measure (``60B``, ``4KiB``, ``64KiB``); empty: every size."""
    pass_seconds: float = 0.5
    """Rough length of one pass of a slow subject (see :meth:`sized`)."""

    def count(self, full: int, quick: int) -> int:
        """The number of messages for a case that wants ``full`` (or ``quick``) of them."""
        if self.messages is not None:
            return self.messages
        return quick if self.quick else full

    def sized(self, rate: float, full: int, quick: int, floor: int = 400) -> int:
        """Messages for one pass of a subject measured at ``rate`` per second in a warm-up.

        About :attr:`pass_seconds` worth, capped at ``full`` (or ``quick``) and at
        least ``floor``: a subject ten times slower than the baseline then costs
        the same wall time per pass instead of ten times more. The default floor
        leaves a pipelined pass three slices of two 64-message windows.
        """
        if self.messages is not None:
            return self.messages
        cap = quick if self.quick else full
        return max(min(floor, cap), min(cap, int(rate * self.pass_seconds)))

    def warm_count(self, cap: int = 100) -> int:
        """Messages for a warm-up (also the rate estimate for :meth:`sized`)."""
        if self.messages is not None:
            return max(1, self.messages // 10)
        return cap

    def wants_size(self, label: str) -> bool:
        """Whether body size ``label`` is measured in this run."""
        return not self.sizes or label in self.sizes

    @classmethod
    def for_mode(
        cls,
        *,
        quick: bool,
        passes: int | None = None,
        messages: int | None = None,
        sizes: tuple[str, ...] = (),
    ) -> BenchConfig:
        """Defaults for quick or full runs, with explicit overrides winning.

        A quick run measures the smallest and largest bodies only (``QUICK_SIZES``).
        """
        return cls(
            quick=quick,
            passes=passes or (3 if quick else 5),
            messages=messages,
            sizes=sizes or (QUICK_SIZES if quick else ()),
            pass_seconds=0.1 if quick else 0.5,
        )
