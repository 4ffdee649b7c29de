"""Profile the router's hot paths: ``python -m bench.profile_router CASE [options]``.

Cases: ``builtin3`` (three builtins in process), ``exec1`` / ``exec3`` (one or three
subprocess echo plugins, 64 in flight), ``rtt`` (one subprocess echo, one at a time),
``start`` (ExecHandle start-up). Prints messages/s (or µs per round trip); with
``--profile`` runs the router side under pyinstrument (``pip install pyinstrument``;
a profiling aid only, never a dependency). Profile the plugin side with
``py-spy record --subprocesses``.
"""

from __future__ import annotations

import argparse
import functools
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import router
from router import Router
from router.exec import ExecHandle

from .plain_chain import container_create
from .profiling import run_profiled
from .router_cases import builtin3_plugins, echo_plugin_argv
from .router_driver import echo_messages, route_one_at_a_time, route_pipelined

__all__ = ["main"]


@asynccontextmanager
async def _exec_router(plugins: int) -> AsyncIterator[Router]:
    handles = [ExecHandle(echo_plugin_argv(f"echo{i + 1}")) for i in range(plugins)]
    async with router.open(handles, max_in_flight=64) as r:
        yield r


async def _pipelined(r: Router, count: int, size: int, builtin: bool) -> tuple[float, float]:
    """One pipelined run: (messages/s, router CPU µs per message)."""
    messages = (
        [container_create(i) for i in range(count)] if builtin else echo_messages(count, size)
    )
    cpu = time.process_time()
    run = await route_pipelined(r, messages)
    return run.wall_rate, (time.process_time() - cpu) / count * 1e6


async def _case(name: str, count: int, size: int, measure: Callable[[], Awaitable[None]]) -> None:
    if name == "start":
        for _ in range(count):
            handle = ExecHandle(echo_plugin_argv("echo"))
            start = time.perf_counter()
            await handle.start()
            print(f"start: {(time.perf_counter() - start) * 1e3:.1f} ms")
            await handle.stop()
        return
    if name == "builtin3":
        plugins = builtin3_plugins()
        async with router.open(plugins, max_in_flight=64) as r:
            await _pipelined(r, 500, size, True)
            await measure()
            _report(name, [await _pipelined(r, count, size, True) for _ in range(_REPEATS)])
        return
    async with _exec_router(3 if name == "exec3" else 1) as r:
        if name == "rtt":
            await route_one_at_a_time(r, echo_messages(50, size))
            await measure()
            durations = sorted(await route_one_at_a_time(r, echo_messages(count, size)))
            print(f"rtt: p50 {durations[len(durations) // 2] / 1e3:.1f} µs")
            return
        await _pipelined(r, 500, size, False)
        await measure()
        _report(name, [await _pipelined(r, count, size, False) for _ in range(_REPEATS)])


_REPEATS = 3


def _report(name: str, runs: list[tuple[float, float]]) -> None:
    # The best run: the host is shared, and noise only ever adds time.
    rate = max(r for r, _ in runs)
    cpu = min(c for _, c in runs)
    print(f"{name}: best of {len(runs)}: {rate:,.0f} msg/s, router CPU {cpu:.1f} µs/msg")


def main() -> None:
    """Run one case, optionally profiled."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case", choices=["builtin3", "exec1", "exec3", "rtt", "start"])
    parser.add_argument("-n", "--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=60)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run_profiled(
        functools.partial(_case, args.case, args.messages, args.size), profile=args.profile
    )
    if not args.profile:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        print(f"  plugin processes' CPU, start-up included: {cpu:.2f} s")


if __name__ == "__main__":
    main()
