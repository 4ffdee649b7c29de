"""When to restart a crashed plugin, and when to give up on it (pure: no clock, no I/O).

Crashes inside a sliding ``window`` count: the n-th recent crash waits
``backoff_initial * backoff_factor ** (n - 1)`` seconds (capped at ``backoff_max``) before
the restart, and the ``quarantine_after``-th one quarantines the plugin: it stays down
until an operator restarts it. A plugin that has stayed up for a whole window starts
again from the shortest delay, since its old crashes have left the window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["CrashHistory", "RestartPolicy"]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Backoff and quarantine settings for one subprocess plugin."""

    backoff_initial: float = 1.0
    backoff_factor: float = 2.0
    backoff_max: float = 30.0
    quarantine_after: int = 5
    """Crashes within ``window`` that quarantine the plugin."""
    window: float = 60.0
    """Seconds a crash counts against the plugin."""

    def __post_init__(self) -> None:
        if not self.backoff_initial >= 0 or not self.backoff_max >= self.backoff_initial:
            raise ValueError("restart policy: need 0 <= backoff_initial <= backoff_max")
        if not self.backoff_factor >= 1:
            raise ValueError("restart policy: backoff_factor must be >= 1")
        if self.quarantine_after < 1:
            raise ValueError("restart policy: quarantine_after must be >= 1")
        if not self.window > 0:
            raise ValueError("restart policy: window must be > 0 seconds")

    def delay(self, recent_crashes: int) -> float:
        """Seconds to wait before restarting after the ``recent_crashes``-th recent crash."""
        exponent = max(recent_crashes - 1, 0)
        # Cap the exponent first: a float power of a long crash streak would overflow.
        if exponent > 64:
            return self.backoff_max
        return float(min(self.backoff_initial * self.backoff_factor**exponent, self.backoff_max))


class CrashHistory:
    """The crashes of one plugin that still count, and the decision each new one brings."""

    __slots__ = ("_crashes", "policy")

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._crashes: deque[float] = deque()

    def crash(self, now: float) -> float | None:
        """Record a crash at time ``now``: the delay before restarting, or None to quarantine."""
        self._forget_before(now - self.policy.window)
        self._crashes.append(now)
        if len(self._crashes) >= self.policy.quarantine_after:
            return None
        return self.policy.delay(len(self._crashes))

    def recent(self, now: float) -> int:
        """How many crashes still count at time ``now``."""
        self._forget_before(now - self.policy.window)
        return len(self._crashes)

    def clear(self) -> None:
        """Forget every crash (an operator restarted the plugin by hand)."""
        self._crashes.clear()

    def _forget_before(self, horizon: float) -> None:
        while self._crashes and self._crashes[0] <= horizon:
            self._crashes.popleft()
