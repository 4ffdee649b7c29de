"""The in-flight bound: a counter whose freed places go to waiters in line order."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from router.engine._inflight import InFlight


async def test_waiters_get_freed_places_in_the_order_they_came() -> None:
    limit = InFlight(1)
    assert limit.try_take()
    order: list[int] = []

    async def waiter(n: int) -> None:
        await limit.take()
        order.append(n)

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(waiter, n)
            await trio.testing.wait_all_tasks_blocked()
        assert not limit.try_take()  # nobody jumps the line
        for _ in range(3):
            limit.give_back()
            await trio.testing.wait_all_tasks_blocked()
    assert order == [0, 1, 2]
    assert limit.used == 1


async def test_a_cancelled_waiter_takes_no_place() -> None:
    limit = InFlight(1)
    await limit.take()
    with trio.move_on_after(0.01):
        await limit.take()
    limit.give_back()
    assert limit.used == 0 and limit.try_take()


async def test_a_place_given_back_just_after_its_waiter_was_cancelled_is_not_lost() -> None:
    # The waiter is out of line the moment it is cancelled, before it runs again.
    limit = InFlight(1)
    await limit.take()
    scope = trio.CancelScope()

    async def wait() -> None:
        with scope:
            await limit.take()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        assert limit.waiting == 1
        scope.cancel()
        limit.give_back()
    assert limit.used == 0 and limit.waiting == 0 and limit.try_take()


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        InFlight(0)


@settings(max_examples=100)
@given(st.integers(1, 4), st.lists(st.booleans(), max_size=40))
def test_places_taken_never_exceed_the_limit_and_all_come_back(
    limit_to: int, steps: list[bool]
) -> None:
    limit = InFlight(limit_to)
    held = 0
    for take in steps:
        if take:
            if limit.try_take():
                held += 1
        elif held:
            limit.give_back()
            held -= 1
        assert limit.used == held <= limit_to
