"""Per-plugin counters for the admin interface: calls, drops, failures, latency."""

from __future__ import annotations

import collections
import math
from typing import Any, Final

__all__ = ["PluginStats"]

_SAMPLES: Final = 1024


class PluginStats:
    """What one registered plugin has done since it was registered."""

    def __init__(self) -> None:
        self.handled = 0
        """Calls that finished (any outcome)."""
        self.dropped = 0
        """Calls that answered DROP."""
        self.failed = 0
        """Calls that failed: an ERROR reply, an exception or a timeout."""
        self.timed_out = 0
        """Of the failed calls, those that timed out."""
        self.latencies: collections.deque[float] = collections.deque(maxlen=_SAMPLES)
        """The most recent call durations in seconds (a bounded window)."""

    def record(self, duration: float, *, dropped: bool, failed: bool, timed_out: bool) -> None:
        """Count one finished call."""
        self.handled += 1
        self.dropped += dropped
        self.failed += failed
        self.timed_out += timed_out
        self.latencies.append(duration)

    def record_ok(self, duration: float) -> None:
        """Count one call that neither dropped nor failed: :meth:`record`'s usual case."""
        self.handled += 1
        self.latencies.append(duration)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) of recent latencies, None before any call."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        # Nearest rank: the smallest sample with at least q% of samples at or below it.
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    @property
    def p50(self) -> float | None:
        """Median recent latency in seconds."""
        return self.percentile(50)

    @property
    def p99(self) -> float | None:
        """99th percentile of recent latency in seconds."""
        return self.percentile(99)

    def to_wire(self) -> dict[str, Any]:
        """The JSON/msgpack shape for the admin interface."""
        return {
            "handled": self.handled,
            "dropped": self.dropped,
            "failed": self.failed,
            "timed_out": self.timed_out,
            "p50": self.p50,
            "p99": self.p99,
        }
