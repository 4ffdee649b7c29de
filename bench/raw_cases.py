"""The raw baselines: a blocking msgpack echo subprocess over FD 3/4, no trio anywhere.

Every subprocess figure in the suite is divided by one of these, measured in the
same run on the same noisy machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .case import Case
from .config import BenchConfig
from .fdpipes import FdChild, spawn_fd34
from .figure import Better, Figure, figure_from_passes
from .raw_driver import make_messages, round_trips, run_pipelined
from .stats import percentile, steady_rate

__all__ = ["BODY_SIZES", "CASES", "WINDOW", "echo_children", "raw_echo_argv"]

BODY_SIZES: tuple[tuple[str, int], ...] = (("60B", 60), ("4KiB", 4096), ("64KiB", 65536))
"""Body sizes as (label, bytes): a small request, a page, a pipe buffer's worth."""
WINDOW = 64
"""Messages in flight for the pipelined figures."""
CHAIN = 3

# (full, quick) message counts: big enough for ten slices of measurable length.
_RTT_COUNTS = {"60B": (3000, 400), "4KiB": (2000, 300), "64KiB": (400, 80)}
_PIPELINED_COUNTS = {"60B": (40000, 6000), "4KiB": (20000, 3000), "64KiB": (2000, 400)}
_CHAIN_SIZES = {"full": ("60B", "4KiB"), "quick": ("60B",)}


def raw_echo_argv() -> list[str]:
    """The command line of the raw echo child (run by path: it needs only msgpack)."""
    return [sys.executable, str(Path(__file__).with_name("raw_echo.py"))]


@contextmanager
def echo_children(count: int) -> Iterator[list[FdChild]]:
    """``count`` raw echo children, closed (EOF, wait) on exit."""
    with ExitStack() as stack:
        children: list[FdChild] = []
        for _ in range(count):
            child = spawn_fd34(raw_echo_argv())
            stack.callback(child.close)
            children.append(child)
        yield children


def _size(label: str) -> int:
    return dict(BODY_SIZES)[label]


def round_trip_figures(cfg: BenchConfig) -> list[Figure]:
    """p50/p99 round trip of one message at a time, per body size."""
    figures: list[Figure] = []
    for label, size in BODY_SIZES:
        count = cfg.count(*_RTT_COUNTS[label])
        messages = make_messages(count, size)
        p50s: list[float] = []
        p99s: list[float] = []
        with echo_children(1) as (child,):
            round_trips(child, messages[: max(1, count // 10)])  # warm up both processes
            for _ in range(cfg.passes):
                rtts = round_trips(child, messages)
                p50s.append(percentile(rtts, 50) / 1e3)
                p99s.append(percentile(rtts, 99) / 1e3)
        figures.append(figure_from_passes(f"raw.rtt.{label}.p50", p50s, "µs", Better.LOWER))
        figures.append(figure_from_passes(f"raw.rtt.{label}.p99", p99s, "µs", Better.LOWER))
    return figures


def _pipelined(
    cfg: BenchConfig, name: str, chain: int, label: str, baseline: str | None
) -> list[Figure]:
    count = cfg.count(*_PIPELINED_COUNTS[label])
    messages = make_messages(count, _size(label))
    walls: list[float] = []
    steadies: list[float] = []
    with echo_children(chain) as children:
        run_pipelined(children, messages[: max(1, count // 10)], WINDOW, cfg.slices)
        for _ in range(cfg.passes):
            run = run_pipelined(children, messages, WINDOW, cfg.slices)
            walls.append(run.wall_rate)
            steadies.append(steady_rate(run.marks_ns, run.per_slice))
    wall_base = f"{baseline}.wall" if baseline else None
    steady_base = f"{baseline}.steady" if baseline else None
    return [
        figure_from_passes(f"{name}.wall", walls, "msg/s", Better.HIGHER, wall_base),
        figure_from_passes(f"{name}.steady", steadies, "msg/s", Better.HIGHER, steady_base),
    ]


def pipelined_figures(cfg: BenchConfig) -> list[Figure]:
    """Messages/s with 64 in flight through one echo, per body size."""
    figures: list[Figure] = []
    for label, _ in BODY_SIZES:
        figures += _pipelined(cfg, f"raw.w{WINDOW}.{label}", 1, label, None)
    return figures


def chain_figures(cfg: BenchConfig) -> list[Figure]:
    """Messages/s with 64 in flight through 3 echoes in turn, vs one echo (expect ~1/3)."""
    figures: list[Figure] = []
    for label in _CHAIN_SIZES["quick" if cfg.quick else "full"]:
        name = f"raw.chain{CHAIN}.w{WINDOW}.{label}"
        figures += _pipelined(cfg, name, CHAIN, label, f"raw.w{WINDOW}.{label}")
    return figures


def spawn_figures(cfg: BenchConfig) -> list[Figure]:
    """Spawn the raw echo and complete its first round trip: the floor for plugin start-up."""
    message = make_messages(1, 60)
    times: list[float] = []
    for _ in range(max(cfg.passes, 5)):
        start = time.perf_counter_ns()
        with echo_children(1) as (child,):
            round_trips(child, message)
            times.append((time.perf_counter_ns() - start) / 1e6)
    return [figure_from_passes("raw.spawn.ready", times, "ms", Better.LOWER)]


CASES = (
    Case("raw.rtt", "raw echo, one message at a time: round trip p50/p99", round_trip_figures),
    Case("raw.pipelined", f"raw echo, {WINDOW} in flight: messages/s", pipelined_figures),
    Case("raw.chain", f"raw chain of {CHAIN} echoes, {WINDOW} in flight", chain_figures),
    Case("raw.spawn", "raw echo spawn to first echo", spawn_figures),
)
"""The raw cases, in the order they run."""
