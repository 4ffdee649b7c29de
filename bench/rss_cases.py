"""routerd's peak resident memory with 10 subprocess plugins, vs routerd with none.

routerd runs as a real daemon process reading JSON lines on stdin; after every
result is back, its ``VmHWM`` (peak RSS) is read from ``/proc`` while it still
runs, so the figure is routerd's own, not its plugins'.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

from .case import Case, Unavailable
from .config import BenchConfig
from .figure import Better, Figure, figure_from_passes
from .paired import alternate
from .router_cases import echo_plugin_argv

__all__ = ["CASES", "routerd_peak_rss_mib"]

PLUGINS = 10
ROUTERD = [sys.executable, "-c", "from router.cli.routerd import main; main()"]


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    raise Unavailable("this kernel reports no VmHWM in /proc/PID/status")


def _feed(stdin: IO[bytes], lines: list[bytes]) -> None:
    with contextlib.suppress(BrokenPipeError):  # routerd died; the reader reports it
        stdin.writelines(lines)
        stdin.flush()


def routerd_peak_rss_mib(plugins: int, messages: int, body_size: int = 4096) -> float:
    """Run routerd with ``plugins`` echo plugins over ``messages`` inputs; its peak RSS."""
    argv = [*ROUTERD, "--log-level", "warning"]
    for i in range(plugins):
        argv += ["--plugin-exec", shlex.join(echo_plugin_argv(f"echo{i + 1}"))]
    body = "x" * body_size
    lines = [
        json.dumps({"type": "bench.echo", "body": body, "id": f"m{i}"}).encode() + b"\n"
        for i in range(messages)
    ]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdin is not None and proc.stdout is not None
        writer = threading.Thread(target=_feed, args=(proc.stdin, lines), daemon=True)
        writer.start()
        try:
            got = 0
            while got < messages and proc.stdout.readline():
                got += 1
            if got < messages:
                proc.wait(30)
                errors.seek(0)
                tail = errors.read().decode(errors="replace").strip().splitlines()[-1:]
                raise Unavailable(
                    f"routerd with {plugins} plugins ended after {got}/{messages} results"
                    f" (exit {proc.returncode}): {' '.join(tail)}"
                )
            peak = _peak_rss_mib(proc.pid)
        finally:
            writer.join(30)
            with contextlib.suppress(BrokenPipeError):  # routerd may be gone already
                proc.stdin.close()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    return peak


def rss_figures(cfg: BenchConfig) -> list[Figure]:
    """Peak RSS of routerd with 10 subprocess plugins, paired with routerd alone."""
    # Peak memory depends on what is in flight (64), not on how many pass: a few
    # hundred messages reach the steady state. Memory is not noisy: few passes.
    messages = cfg.count(500, 150)
    passes = 1 if cfg.quick else min(cfg.passes, 3)
    base, cand = alternate(
        passes,
        lambda: routerd_peak_rss_mib(0, messages),
        lambda: routerd_peak_rss_mib(PLUGINS, messages),
    )
    return [
        figure_from_passes("routerd.rss.bare", base, "MiB", Better.LOWER),
        figure_from_passes(
            f"routerd.rss.exec{PLUGINS}",
            cand,
            "MiB",
            Better.LOWER,
            "routerd.rss.bare",
            paired=base,
        ),
    ]


CASES = (Case("routerd.rss", f"routerd peak RSS with {PLUGINS} subprocess plugins", rss_figures),)
"""The memory cases."""
