"""Flow under pressure, against routerd as a real process: slow plugins push back to stdin,
chatty plugins never stall routing.

Backpressure is measured from outside: the test writes routerd's stdin as fast as the
pipe takes it and counts how far the inputs it got in run ahead of the results that
came out. A bounded lead means routerd stopped reading stdin while the plugin was busy;
its RSS, sampled from ``/proc``, stays bounded too; and every input still gets its result.
"""

from __future__ import annotations

import json

import pytest
import trio
from reliability_helpers import (
    RouterdProcess,
    job_lines,
    routerd,
    rss_kib,
    scripted_cmd,
    worker_cmd,
)

MAX_IN_FLIGHT = 16


async def _flood(daemon: RouterdProcess, lines: list[bytes], batch: int) -> int:
    """Write ``lines`` to stdin ``batch`` at a time; return the largest lead over results."""
    lead = 0
    for start in range(0, len(lines), batch):
        # The lead is measured after each write returns: what routerd has taken in
        # (the pipe buffer included) minus what it has answered.
        await daemon.send(b"".join(lines[start : start + batch]))
        lead = max(lead, start + batch - len(daemon.results))
    await daemon.close_stdin()
    return lead


async def _sample_rss(pid: int, peak: list[int]) -> None:
    while True:
        try:
            peak[0] = max(peak[0], rss_kib(pid))
        except (OSError, RuntimeError):
            return  # it exited
        await trio.sleep(0.02)


async def _slow_plugin_pushes_back(
    count: int, pad: int, max_lead: int, max_growth_mib: int, delay: float = 0.001
) -> None:
    args = [
        "--log-level",
        "warning",
        "--max-in-flight",
        str(MAX_IN_FLIGHT),
        "--plugin-exec",
        worker_cmd(f"name=slow delay={delay}"),
    ]
    lines = job_lines(count, pad=pad)
    async with routerd(args, slim=True) as daemon:
        # Warm up with one message: the baseline RSS is a started, routing daemon's.
        await daemon.send(json.dumps({"type": "job", "id": "warm-up"}).encode() + b"\n")
        await daemon.wait_results(1)
        baseline = rss_kib(daemon.pid)
        peak = [baseline]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sample_rss, daemon.pid, peak)
            with trio.fail_after(900):
                lead = await _flood(daemon, lines, batch=8)
                code = await daemon.wait_exit(within=900)
            nursery.cancel_scope.cancel()
    assert code == 0, daemon.log_text()
    results = daemon.results[1:]
    assert [r["id"] for r in results] == [f"m-{i:05d}" for i in range(count)]
    assert all(r["status"] == "delivered" for r in results)
    assert lead <= max_lead, f"routerd took in {lead} inputs ahead of its results"
    growth_mib = (peak[0] - baseline) / 1024
    total_mib = sum(map(len, lines)) / (1 << 20)
    assert growth_mib < max_growth_mib, f"RSS grew {growth_mib:.1f} MiB for {total_mib:.0f} MiB"


async def test_a_slow_plugin_pushes_back_to_stdin_with_bounded_memory_and_nothing_dropped() -> None:
    # 1,000 inputs of 32 KiB (32 MiB) against a plugin far slower than the pipe. The
    # lead bound: 16 inputs in flight plus what the stdin pipe, routerd's 64 KiB read
    # chunk and its output buffers hold (about 80 measured). Unbounded reading would
    # take in all 1,000 at once and hold the 32 MiB.
    await _slow_plugin_pushes_back(1_000, pad=32 * 1024, max_lead=200, max_growth_mib=16)


@pytest.mark.slow
async def test_a_slow_plugin_pushes_back_over_100000_messages() -> None:
    # No artificial delay: one plugin process is still far slower than a pipe.
    await _slow_plugin_pushes_back(100_000, pad=1024, max_lead=1_000, max_growth_mib=40, delay=0)


async def _chatty(size: int) -> None:
    # routerd logs each stderr line (~7 MB/s here): give the call time for the volume; the
    # claim is that output never blocks the plugin or routing, not that it is free.
    plugin = scripted_cmd(f"name=chatty concurrency=2 timeout={10 + size // 1_000_000}")
    args = ["--log-level", "warning", "--plugin-exec", plugin]
    async with routerd(args, slim=True) as daemon:
        await daemon.send(json.dumps({"type": "chatty", "id": "c", "body": size}).encode() + b"\n")
        for i in range(20):
            await daemon.send(
                json.dumps({"type": "echo", "id": f"e{i}", "body": i}).encode() + b"\n"
            )
        await daemon.close_stdin()
        with trio.fail_after(120):
            code = await daemon.wait_exit(within=120)
    assert code == 0
    assert [r["status"] for r in daemon.results] == ["delivered"] * 21, daemon.results[:2]
    # The plugin's stderr went through routerd's log (its stdout is INFO: filtered out).
    assert daemon.stderr_bytes > size


async def test_a_plugin_writing_5_mb_to_stdout_and_stderr_does_not_stall_routing() -> None:
    await _chatty(5_000_000)


@pytest.mark.slow
async def test_a_plugin_writing_50_mb_to_stdout_and_stderr_does_not_stall_routing() -> None:
    await _chatty(50_000_000)
