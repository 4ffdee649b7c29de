"""The raw baselines: a blocking msgpack echo subprocess over FD 3/4, no trio anywhere.

Every subprocess figure in the suite is divided by one of these, measured in the
same run on the same noisy machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .case import Case
from .config import BenchConfig
from .cpu import CpuMeter
from .fdpipes import FdChild, spawn_fd34
from .figure import Better, Figure, figure_from_passes
from .paired import alternate
from .raw_driver import PipelinedRun, make_messages, round_trips, run_pipelined
from .stats import percentile, steady_rate

__all__ = [
    "BODY_SIZES",
    "CASES",
    "CHAIN",
    "PIPELINED_COUNTS",
    "RTT_COUNTS",
    "WINDOW",
    "Latency",
    "Rates",
    "body_sizes",
    "chain_sizes",
    "echo_children",
    "latency_figures",
    "rate_figures",
    "raw_echo_argv",
    "raw_latency",
    "raw_rates",
]

BODY_SIZES: tuple[tuple[str, int], ...] = (("60B", 60), ("4KiB", 4096), ("64KiB", 65536))
"""Body sizes as (label, bytes): a small request, a page, a pipe buffer's worth."""
WINDOW = 64
"""Messages in flight for the pipelined figures."""
CHAIN = 3
"""Echoes (and plugins) in the chain figures."""

RTT_COUNTS = {"60B": (3000, 400), "4KiB": (2000, 300), "64KiB": (400, 80)}
"""(full, quick) messages per one-at-a-time pass, by body size."""
PIPELINED_COUNTS = {"60B": (60000, 20000), "4KiB": (20000, 6000), "64KiB": (2000, 600)}
"""(full, quick) messages per pipelined pass: ten slices of measurable length."""
_CHAIN_SIZES = {"full": ("60B", "4KiB"), "quick": ("60B",)}


def body_sizes(cfg: BenchConfig) -> list[tuple[str, int]]:
    """The (label, bytes) body sizes this run measures."""
    return [(label, size) for label, size in BODY_SIZES if cfg.wants_size(label)]


def chain_sizes(cfg: BenchConfig) -> list[tuple[str, int]]:
    """The body sizes of the chain figures (fewer: three hops per message cost time)."""
    chain = _CHAIN_SIZES["quick" if cfg.quick else "full"]
    return [(label, size) for label, size in body_sizes(cfg) if label in chain]


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


def round_trip_figures(cfg: BenchConfig) -> list[Figure]:
    """p50/p99 round trip of one message at a time, per body size."""
    figures: list[Figure] = []
    for label, size in body_sizes(cfg):
        count = cfg.count(*RTT_COUNTS[label])
        messages = make_messages(count, size)
        with echo_children(1) as (child,):
            round_trips(child, messages[: max(1, count // 10)])  # warm up both processes
            passes = [raw_latency(child, messages) for _ in range(cfg.passes)]
        figures += latency_figures(f"raw.rtt.{label}", passes)
    return figures


@dataclass(frozen=True, slots=True)
class Rates:
    """Wall and steady-state messages/s of one pipelined pass, and its CPU cost."""

    wall: float
    steady: float
    cpu: float | None = None
    """CPU µs per message, this process and the children involved together."""

    @classmethod
    def of(cls, run: PipelinedRun, cpu_ns: int | None = None) -> Rates:
        """The rates of a finished run (``cpu_ns``: the CPU the whole run took)."""
        cpu = cpu_ns / run.count / 1e3 if cpu_ns is not None else None
        if len(run.marks_ns) < 2:
            # Too short for one whole slice (a smoke run): the wall rate is all there is.
            return cls(run.wall_rate, run.wall_rate, cpu)
        return cls(run.wall_rate, steady_rate(run.marks_ns, run.per_slice), cpu)


@dataclass(frozen=True, slots=True)
class Latency:
    """p50 and p99 round trip of one pass, in µs."""

    p50: float
    p99: float

    @classmethod
    def of(cls, durations_ns: Sequence[int]) -> Latency:
        """Percentiles of a pass's round trips."""
        return cls(percentile(durations_ns, 50) / 1e3, percentile(durations_ns, 99) / 1e3)


def raw_rates(children: list[FdChild], messages: list[dict[str, Any]], slices: int) -> Rates:
    """One pipelined pass of ``messages`` through ``children`` at :data:`WINDOW` in flight."""
    meter = CpuMeter(c.proc.pid for c in children)
    run = run_pipelined(children, messages, WINDOW, slices)
    return Rates.of(run, meter.stop())


def raw_latency(child: FdChild, messages: list[dict[str, Any]]) -> Latency:
    """One one-at-a-time pass of ``messages`` through ``child``."""
    return Latency.of(round_trips(child, messages))


def latency_figures(
    name: str, cand: list[Latency], baseline: str | None = None, base: list[Latency] | None = None
) -> list[Figure]:
    """``name.p50`` and ``name.p99`` figures in µs, paired with ``base`` passes if given."""
    return [
        figure_from_passes(
            f"{name}.{q}",
            [getattr(r, q) for r in cand],
            "µs",
            Better.LOWER,
            f"{baseline}.{q}" if baseline else None,
            paired=[getattr(r, q) for r in base] if base else (),
        )
        for q in ("p50", "p99")
    ]


def rate_figures(
    name: str, cand: list[Rates], baseline: str | None = None, base: list[Rates] | None = None
) -> list[Figure]:
    """``name.wall``, ``name.steady`` (msg/s) and ``name.cpu`` (CPU µs/msg) figures.

    Paired with ``base`` passes if given; ``cpu`` only when every pass measured it.
    """
    kinds = [("wall", "msg/s", Better.HIGHER), ("steady", "msg/s", Better.HIGHER)]
    if all(r.cpu is not None for r in [*cand, *(base or [])]):
        kinds.append(("cpu", "µs/msg", Better.LOWER))
    return [
        figure_from_passes(
            f"{name}.{kind}",
            [getattr(r, kind) for r in cand],
            unit,
            better,
            f"{baseline}.{kind}" if baseline else None,
            paired=[getattr(r, kind) for r in base] if base else (),
        )
        for kind, unit, better in kinds
    ]


def pipelined_figures(cfg: BenchConfig) -> list[Figure]:
    """Messages/s with 64 in flight through one echo, per body size."""
    figures: list[Figure] = []
    for label, size in body_sizes(cfg):
        count = cfg.count(*PIPELINED_COUNTS[label])
        messages = make_messages(count, size)
        with echo_children(1) as children:
            run_pipelined(children, messages[: max(1, count // 10)], WINDOW, cfg.slices)
            passes = [raw_rates(children, messages, cfg.slices) for _ in range(cfg.passes)]
        figures += rate_figures(f"raw.w{WINDOW}.{label}", passes)
    return figures


def chain_figures(cfg: BenchConfig) -> list[Figure]:
    """Messages/s with 64 in flight through 3 echoes in turn, paired with one echo (~1/3)."""
    figures: list[Figure] = []
    for label, size in chain_sizes(cfg):
        count = cfg.count(*PIPELINED_COUNTS[label])
        messages = make_messages(count, size)
        with echo_children(1) as single, echo_children(CHAIN) as chain:
            warm = messages[: max(1, count // 10)]
            run_pipelined(single, warm, WINDOW, cfg.slices)
            run_pipelined(chain, warm, WINDOW, cfg.slices)
            base, cand = alternate(
                cfg.passes,
                partial(raw_rates, single, messages, cfg.slices),
                partial(raw_rates, chain, messages, cfg.slices),
            )
        name = f"raw.chain{CHAIN}.w{WINDOW}.{label}"
        figures += rate_figures(name, cand, f"raw.w{WINDOW}.{label}", base)
    return figures


def spawn_figures(cfg: BenchConfig) -> list[Figure]:
    """Spawn the raw echo and complete its first round trip: the floor for plugin start-up."""
    message = make_messages(1, 60)
    times: list[float] = []
    for _ in range(cfg.passes):
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
