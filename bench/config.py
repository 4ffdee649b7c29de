"""How big a run is: passes, message counts, slices. One record handed to every case."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BenchConfig"]


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

    def count(self, full: int, quick: int) -> int:
        """The number of messages for a case that wants ``full`` (or ``quick``) of them."""
        if self.messages is not None:
            return self.messages
        return quick if self.quick else full

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
        """Defaults for quick or full runs, with explicit overrides winning."""
        default_passes = 3 if quick else 5
        return cls(quick=quick, passes=passes or default_passes, messages=messages, sizes=sizes)
