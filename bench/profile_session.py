"""Profile the Session echo: ``python -m bench.profile_session MODE [-n N] [--profile]``.

MODE is ``channel`` or ``request`` (see ``bench/session_echo.py``). Prints messages/s
and the CPU each side spent per message, so a change can be judged by the cost it
removes rather than by a wall-clock rate that the shared host makes noisy. With
``--profile`` the host side runs under pyinstrument (a profiling aid only).
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Awaitable, Callable

from .profiling import run_profiled
from .raw_driver import make_messages
from .session_driver import open_echo_peer, run_calls, run_channel

__all__ = ["main"]


async def _case(mode: str, count: int, size: int, begin: Callable[[], Awaitable[None]]) -> None:
    messages = make_messages(count, size)
    async with open_echo_peer(mode) as peer:
        warm = messages[:500]
        if mode == "channel":
            await run_channel(peer, warm, 64)
        else:
            await run_calls(peer, warm, 64)
        child_before = _child_cpu(peer.pid)
        cpu = time.process_time()
        await begin()
        if mode == "channel":
            run = await run_channel(peer, messages, 64)
        else:
            run, _ = await run_calls(peer, messages, 64)
        host_us = (time.process_time() - cpu) / count * 1e6
        child_us = (_child_cpu(peer.pid) - child_before) / count * 1e6
    print(
        f"{mode}: {run.wall_rate:,.0f} msg/s; CPU per message: host {host_us:.1f} µs,"
        f" child {child_us:.1f} µs"
    )


def _child_cpu(pid: int) -> float:
    """The child's CPU seconds so far, from /proc (it is still running)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Run one mode, optionally profiled."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["channel", "request"])
    parser.add_argument("-n", "--messages", type=int, default=20000)
    parser.add_argument("--size", type=int, default=60)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    run_profiled(
        functools.partial(_case, args.mode, args.messages, args.size), profile=args.profile
    )


if __name__ == "__main__":
    main()
