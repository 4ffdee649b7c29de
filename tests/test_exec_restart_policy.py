"""The restart policy: exponential backoff, its cap, quarantine, and the sliding window."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.exec import CrashHistory, RestartPolicy


def test_default_backoff_doubles_from_one_second_and_quarantines_the_fifth_crash() -> None:
    history = CrashHistory(RestartPolicy())
    assert [history.crash(t) for t in (0.0, 1.0, 2.0, 3.0)] == [1.0, 2.0, 4.0, 8.0]
    assert history.crash(4.0) is None


def test_backoff_is_capped_at_thirty_seconds() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in (5, 6, 7, 1000)] == [16.0, 30.0, 30.0, 30.0]


def test_crashes_older_than_the_window_no_longer_count() -> None:
    history = CrashHistory(RestartPolicy(window=60.0))
    for t in (0.0, 10.0, 20.0, 30.0):
        history.crash(t)
    assert history.recent(30.0) == 4
    # Up for a whole window: the next crash starts from the shortest delay again.
    assert history.crash(100.0) == 1.0
    assert history.recent(100.0) == 1


def test_clearing_the_history_lifts_the_quarantine_count() -> None:
    history = CrashHistory(RestartPolicy(quarantine_after=2))
    history.crash(0.0)
    history.clear()
    assert history.crash(1.0) == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"backoff_initial": -1.0},
        {"backoff_initial": 5.0, "backoff_max": 1.0},
        {"backoff_factor": 0.5},
        {"quarantine_after": 0},
        {"window": 0.0},
    ],
)
def test_nonsensical_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="restart policy"):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]


policies = st.builds(
    RestartPolicy,
    backoff_initial=st.floats(0.0, 5.0),
    backoff_factor=st.floats(1.0, 4.0),
    backoff_max=st.floats(5.0, 100.0),
    quarantine_after=st.integers(1, 8),
    window=st.floats(0.1, 100.0),
)


@settings(max_examples=200)
@given(policies, st.lists(st.floats(0.0, 50.0), max_size=30))
def test_every_crash_restarts_after_a_bounded_nondecreasing_delay_or_quarantines(
    policy: RestartPolicy, gaps: list[float]
) -> None:
    history = CrashHistory(policy)
    now = 0.0
    for gap in gaps:
        now += gap
        before = history.recent(now)
        delay = history.crash(now)
        recent = history.recent(now)
        assert recent == before + 1
        if recent >= policy.quarantine_after:
            assert delay is None
            history.clear()
            continue
        assert delay is not None
        assert policy.backoff_initial <= delay <= policy.backoff_max
        # More recent crashes never mean a shorter wait.
        assert delay >= policy.delay(recent - 1) or recent == 1
