"""The router side of the router benchmarks: route messages through a running Router.

Both drivers check every result is DELIVERED: a benchmark of failures would
measure the error path.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence

from plugin_sdk import Message
from router import Result, Router, Status

from .echo_plugin import MESSAGE_TYPE
from .raw_driver import PipelinedRun
from .stats import slice_size

__all__ = ["echo_messages", "route_one_at_a_time", "route_pipelined"]


def echo_messages(count: int, body_size: int) -> list[Message]:
    """``count`` fresh ``bench.echo`` messages with a ``body_size``-byte body."""
    body = b"x" * body_size
    return [Message(MESSAGE_TYPE, body, id=f"m{i}") for i in range(count)]


def _check(result: Result) -> None:
    if result.status is not Status.DELIVERED:
        raise RuntimeError(f"bench message {result.input_id} {result.status}: {result.reason}")


async def _items(messages: Sequence[Message]) -> AsyncIterator[Message]:
    for message in messages:
        yield message


async def route_pipelined(
    router: Router, messages: Sequence[Message], slices: int = 10
) -> PipelinedRun:
    """Route ``messages`` with ``route_stream`` (the router's in-flight bound applies)."""
    count = len(messages)
    per_slice = slice_size(count, slices, router.max_in_flight)
    clock = time.perf_counter_ns
    start = clock()
    marks = [start]
    done = 0
    # Consumed to the end (or abandoned with the exception), so no aclosing is needed.
    async for result in router.route_stream(_items(messages)):
        _check(result)
        done += 1
        if done % per_slice == 0:
            marks.append(clock())
    if done != count:
        raise RuntimeError(f"routed {count} messages but got {done} results")
    return PipelinedRun(count, clock() - start, tuple(marks), per_slice)


async def route_one_at_a_time(router: Router, messages: Sequence[Message]) -> list[int]:
    """Route each message alone with ``route``; return each one's duration in ns."""
    clock: Callable[[], int] = time.perf_counter_ns
    durations: list[int] = []
    for message in messages:
        start = clock()
        result = await router.route(message)
        durations.append(clock() - start)
        _check(result)
    return durations
