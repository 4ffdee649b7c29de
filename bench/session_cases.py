"""Session figures: ``plugin_sdk.session`` over a real FD 3/4 child vs the raw echo.

Each figure is paired with raw echo passes taken alternately in the same run, at
the same body size and window, so the ratio says what the Session layer (framing,
channels, credit, trio) costs over bare msgpack on pipes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from .case import Case, Unavailable
from .config import BenchConfig
from .cpu import CpuMeter
from .figure import Figure
from .paired import alternate_async
from .raw_cases import (
    PIPELINED_COUNTS,
    RTT_COUNTS,
    WINDOW,
    Latency,
    Rates,
    body_sizes,
    echo_children,
    latency_figures,
    rate_figures,
    raw_latency,
    raw_rates,
)
from .raw_driver import PipelinedRun, make_messages, round_trips, run_pipelined

__all__ = ["CASES"]

MODES = ("channel", "request")
SESSION_COUNTS = {"60B": (20000, 3000), "4KiB": (10000, 2000), "64KiB": (1000, 400)}
"""(full, quick) messages per Session pipelined pass (its raw pair uses the raw counts)."""

Messages = list[dict[str, Any]]


def _require_session() -> None:
    try:
        import plugin_sdk.session  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"plugin_sdk.session cannot be imported yet ({exc})") from None


async def _pipelined(cfg: BenchConfig) -> list[Figure]:
    from .session_driver import EchoPeer, open_echo_peer, run_calls, run_channel

    async def calls_run(peer: EchoPeer, messages: Messages, window: int) -> PipelinedRun:
        run, _ = await run_calls(peer, messages, window, cfg.slices)
        return run

    async def channel_run(peer: EchoPeer, messages: Messages, window: int) -> PipelinedRun:
        return await run_channel(peer, messages, window, cfg.slices)

    runners: dict[str, Callable[[EchoPeer, Messages, int], Awaitable[PipelinedRun]]] = {
        "channel": channel_run,
        "request": calls_run,
    }

    async def session_rates(mode: str, peer: EchoPeer, messages: Messages) -> Rates:
        meter = CpuMeter([peer.pid])
        run = await runners[mode](peer, messages, WINDOW)
        return Rates.of(run, meter.stop())

    figures: list[Figure] = []
    for label, size in body_sizes(cfg):
        raw_messages = make_messages(cfg.count(*PIPELINED_COUNTS[label]), size)
        warm = raw_messages[: cfg.warm_count()]
        with echo_children(1) as raw:
            run_pipelined(raw, warm, WINDOW, cfg.slices)
            for mode in MODES:
                async with open_echo_peer(mode) as peer:
                    rate = (await runners[mode](peer, warm, WINDOW)).wall_rate
                    messages = raw_messages[: cfg.sized(rate, *SESSION_COUNTS[label])]
                    base, cand = await alternate_async(
                        cfg.passes,
                        partial(raw_rates, raw, raw_messages, cfg.slices),
                        partial(session_rates, mode, peer, messages),
                    )
                name = f"session.{mode}.w{WINDOW}.{label}"
                figures += rate_figures(name, cand, f"raw.w{WINDOW}.{label}", base)
    return figures


async def _round_trips(cfg: BenchConfig) -> list[Figure]:
    from .session_driver import EchoPeer, open_echo_peer, run_calls

    async def session_latency(peer: EchoPeer, messages: Messages) -> Latency:
        _, durations = await run_calls(peer, messages, 1, cfg.slices)
        return Latency.of(durations)

    figures: list[Figure] = []
    for label, size in body_sizes(cfg):
        raw_messages = make_messages(cfg.count(*RTT_COUNTS[label]), size)
        warm = raw_messages[: cfg.warm_count(30)]
        with echo_children(1) as (raw,):
            round_trips(raw, warm)
            async with open_echo_peer("request") as peer:
                rate = (await run_calls(peer, warm, 1, cfg.slices))[0].wall_rate
                messages = raw_messages[: cfg.sized(rate, *RTT_COUNTS[label], floor=50)]
                base, cand = await alternate_async(
                    cfg.passes,
                    partial(raw_latency, raw, raw_messages),
                    partial(session_latency, peer, messages),
                )
        figures += latency_figures(f"session.request.rtt.{label}", cand, f"raw.rtt.{label}", base)
    return figures


def pipelined_figures(cfg: BenchConfig) -> list[Figure]:
    """Session messages/s at 64 in flight, channel and request modes, paired with raw."""
    _require_session()
    return trio.run(_pipelined, cfg)


def round_trip_figures(cfg: BenchConfig) -> list[Figure]:
    """Session call round trip one at a time (request mode), paired with raw."""
    _require_session()
    return trio.run(_round_trips, cfg)


CASES = (
    Case(
        "session.pipelined",
        f"Session echo over FD 3/4, {WINDOW} in flight, vs raw (paired)",
        pipelined_figures,
    ),
    Case(
        "session.rtt", "Session call one at a time vs raw round trip (paired)", round_trip_figures
    ),
)
"""The Session cases; they need ``plugin_sdk.session``."""
