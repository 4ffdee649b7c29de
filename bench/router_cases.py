"""Router figures: the engine with subprocess and builtin plugins vs the baselines.

Every figure is paired with its baseline, passes alternating in the same run:

* one subprocess echo plugin vs the raw echo (one at a time, and 64 in flight);
* three subprocess echo plugins vs the raw chain of three;
* three builtin plugins in process vs the plain three-call chain;
* plugin start-up (spawn + handshake to ready) vs the raw echo's spawn to first echo.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import trio

import router
from plugin_sdk import Plugin
from router import Router
from router.builtins.authz import Authz
from router.builtins.host_mount import HostMount
from router.builtins.set_field import SetField
from router.exec import ExecHandle

from .case import Case
from .config import BenchConfig
from .cpu import CpuMeter
from .figure import Better, Figure, figure_from_passes
from .paired import alternate_async
from .plain_chain import container_create, plain_chain_pass
from .raw_cases import (
    CHAIN,
    PIPELINED_COUNTS,
    RTT_COUNTS,
    WINDOW,
    Latency,
    Rates,
    body_sizes,
    chain_sizes,
    echo_children,
    latency_figures,
    rate_figures,
    raw_latency,
    raw_rates,
)
from .raw_driver import make_messages, round_trips, run_pipelined
from .router_driver import echo_messages, route_one_at_a_time, route_pipelined
from .stats import median

__all__ = ["CASES", "echo_plugin_argv"]

ROUTER_RTT_COUNTS = {"60B": (1000, 200), "4KiB": (1000, 200), "64KiB": (300, 80)}
"""(full, quick) messages per one-at-a-time pass through the router."""
ROUTER_COUNTS = {"60B": (10000, 2000), "4KiB": (6000, 1500), "64KiB": (1000, 400)}
"""(full, quick) messages per pipelined pass through the router."""


def echo_plugin_argv(name: str) -> list[str]:
    """The command line of the bench echo plugin named ``name``."""
    return [sys.executable, str(Path(__file__).with_name("echo_plugin.py")), name]


def _plugin_pids(r: Router) -> list[int]:
    pids = [h.pid for h in r.handles.values() if isinstance(h, ExecHandle)]
    return [pid for pid in pids if pid is not None]


@asynccontextmanager
async def _exec_router(plugins: int) -> AsyncIterator[Router]:
    handles = [ExecHandle(echo_plugin_argv(f"echo{i + 1}")) for i in range(plugins)]
    async with router.open(handles, max_in_flight=WINDOW) as r:
        yield r


async def _exec_figures(cfg: BenchConfig) -> list[Figure]:
    async def routed_rates(r: Router, count: int, size: int) -> Rates:
        messages = echo_messages(count, size)  # fresh: the router owns what it routes
        meter = CpuMeter(_plugin_pids(r))
        run = await route_pipelined(r, messages, cfg.slices)
        return Rates.of(run, meter.stop())

    async def routed_latency(r: Router, count: int, size: int) -> Latency:
        return Latency.of(await route_one_at_a_time(r, echo_messages(count, size)))

    figures: list[Figure] = []
    for label, size in body_sizes(cfg):
        raw_rtt = make_messages(cfg.count(*RTT_COUNTS[label]), size)
        raw_messages = make_messages(cfg.count(*PIPELINED_COUNTS[label]), size)
        with echo_children(1) as raw:
            round_trips(raw[0], raw_rtt[: cfg.warm_count(30)])
            run_pipelined(raw, raw_messages[: cfg.warm_count()], WINDOW)
            async with _exec_router(1) as r:
                warm = await route_one_at_a_time(r, echo_messages(cfg.warm_count(30), size))
                rate = 1e9 / median(warm)
                rtt_count = cfg.sized(rate, *ROUTER_RTT_COUNTS[label], floor=50)
                base_l, cand_l = await alternate_async(
                    cfg.passes,
                    partial(raw_latency, raw[0], raw_rtt),
                    partial(routed_latency, r, rtt_count, size),
                )
                rate = (await routed_rates(r, cfg.warm_count(), size)).wall
                count = cfg.sized(rate, *ROUTER_COUNTS[label])
                base_r, cand_r = await alternate_async(
                    cfg.passes,
                    partial(raw_rates, raw, raw_messages, cfg.slices),
                    partial(routed_rates, r, count, size),
                )
        figures += latency_figures(f"router.exec1.rtt.{label}", cand_l, f"raw.rtt.{label}", base_l)
        figures += rate_figures(
            f"router.exec1.w{WINDOW}.{label}", cand_r, f"raw.w{WINDOW}.{label}", base_r
        )
    for label, size in chain_sizes(cfg):
        raw_messages = make_messages(cfg.count(*PIPELINED_COUNTS[label]), size)
        with echo_children(CHAIN) as chain:
            run_pipelined(chain, raw_messages[: cfg.warm_count()], WINDOW)
            async with _exec_router(CHAIN) as r:
                rate = (await routed_rates(r, cfg.warm_count(), size)).wall
                count = cfg.sized(rate, *ROUTER_COUNTS[label])
                base, cand = await alternate_async(
                    cfg.passes,
                    partial(raw_rates, chain, raw_messages, cfg.slices),
                    partial(routed_rates, r, count, size),
                )
        base_name = f"raw.chain{CHAIN}.w{WINDOW}.{label}"
        figures += rate_figures(f"router.exec{CHAIN}.w{WINDOW}.{label}", cand, base_name, base)
    return figures


def exec_figures(cfg: BenchConfig) -> list[Figure]:
    """Subprocess echo plugins through the router, paired with the raw echo and chain."""
    return trio.run(_exec_figures, cfg)


def builtin3_plugins() -> list[Plugin]:
    """The three builtins of ``router.builtin3``, configured as :mod:`.plain_chain` edits."""
    return [
        HostMount("/var/lib/shared /shared"),
        SetField("N Labels.n"),
        Authz("allow container.*"),
    ]


async def _builtin_figures(cfg: BenchConfig) -> list[Figure]:
    plain_messages = [container_create(i) for i in range(cfg.count(200_000, 40_000))]
    plugins = builtin3_plugins()

    async def routed(r: Router, n: int) -> tuple[float, float]:
        rates = Rates.of(await route_pipelined(r, [container_create(i) for i in range(n)]))
        return 1e9 / rates.wall, 1e9 / rates.steady

    async with router.open(plugins, max_in_flight=WINDOW) as r:
        per_message_ns, _ = await routed(r, cfg.warm_count(500))
        count = cfg.sized(1e9 / per_message_ns, 20_000, 4_000)
        plain_chain_pass(plain_messages[: len(plain_messages) // 10], cfg.slices)
        base, cand = await alternate_async(
            cfg.passes,
            partial(plain_chain_pass, plain_messages, cfg.slices),
            partial(routed, r, count),
        )
    return [
        figure_from_passes(
            f"router.builtin3.{kind}",
            [c[i] for c in cand],
            "ns/msg",
            Better.LOWER,
            f"plain.chain3.{kind}",
            paired=[b[i] for b in base],
        )
        for i, kind in enumerate(("wall", "steady"))
    ]


def builtin_figures(cfg: BenchConfig) -> list[Figure]:
    """host-mount, set-field and authz in process, paired with the plain 3-call chain."""
    return trio.run(_builtin_figures, cfg)


def _raw_spawn_ms() -> float:
    start = time.perf_counter_ns()
    with echo_children(1) as (child,):
        round_trips(child, make_messages(1, 60))
        return (time.perf_counter_ns() - start) / 1e6


async def _startup_figures(cfg: BenchConfig) -> list[Figure]:
    async def exec_start_ms() -> float:
        handle = ExecHandle(echo_plugin_argv("echo"))
        start = time.perf_counter_ns()
        await handle.start()
        elapsed = (time.perf_counter_ns() - start) / 1e6
        await handle.stop()
        return elapsed

    base, cand = await alternate_async(cfg.passes, _raw_spawn_ms, exec_start_ms)
    return [
        figure_from_passes(
            "router.exec.start", cand, "ms", Better.LOWER, "raw.spawn.ready", paired=base
        )
    ]


def startup_figures(cfg: BenchConfig) -> list[Figure]:
    """A subprocess plugin's start (spawn + handshake to ready), paired with the raw spawn."""
    return trio.run(_startup_figures, cfg)


CASES = (
    Case("router.exec", "subprocess echo plugins via the router vs raw (paired)", exec_figures),
    Case("router.builtin", "3 builtins in process vs the plain chain (paired)", builtin_figures),
    Case("router.start", "subprocess plugin start-up vs raw spawn (paired)", startup_figures),
)
"""The router cases."""
