"""routerd as a Unix filter (JSON lines in, results out) with three builtins, vs a plain filter.

Both are real processes reading a file of ``container.create`` lines and writing to
/dev/null: routerd with ``host-mount``, ``set-field`` and ``authz`` (the plugins of
the ``router.builtin`` case), and the plain Python filter :mod:`bench.plain_filter`
making the same edits. Each pass runs each process twice, over a short and a long
file; the cost per message is the difference in CPU (user + system, from the
children's rusage) or wall time, divided by the difference in lines, so interpreter
start-up and plugin start cancel out.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .case import Case
from .config import BenchConfig
from .figure import Better, Figure, figure_from_passes
from .paired import alternate
from .plain_chain import container_create
from .rss_cases import ROUTERD

__all__ = ["CASES", "PLAIN_FILTER", "ROUTERD_FILTER"]

ROUTERD_FILTER = [
    *ROUTERD,
    "--log-level",
    "warning",
    "--plugin",
    "host-mount",
    "/var/lib/shared /shared",
    "--plugin",
    "set-field",
    "N Labels.n",
    "--plugin",
    "authz",
    "allow container.*",
]
"""routerd with the three builtins of the in-process case."""
PLAIN_FILTER = [sys.executable, "-m", "bench.plain_filter"]


def _write_lines(path: Path, count: int) -> None:
    lines = (json.dumps(container_create(i).to_wire()) for i in range(count))
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _run(argv: Sequence[str], path: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``argv`` filtering ``path`` to /dev/null."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with path.open("rb") as stdin:
        done = subprocess.run(
            argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[-1]!r} filter exited {done.returncode}: {done.stderr[-500:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def _per_message(argv: Sequence[str], short: Path, long: Path, extra: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per message: the long run minus the short one, per extra line."""
    cpu_short, wall_short = _run(argv, short)
    cpu_long, wall_long = _run(argv, long)
    return (cpu_long - cpu_short) / extra * 1e6, (wall_long - wall_short) / extra * 1e6


def filter_figures(cfg: BenchConfig) -> list[Figure]:
    """routerd's cost per message as a filter, paired with the plain filter's."""
    short_count = cfg.count(2_000, 500)
    long_count = short_count + cfg.count(20_000, 5_000)
    with tempfile.TemporaryDirectory(prefix="chanrouter-bench-") as tmp:
        short, long = Path(tmp, "short.jsonl"), Path(tmp, "long.jsonl")
        _write_lines(short, short_count)
        _write_lines(long, long_count)
        extra = long_count - short_count

        def measure(argv: Sequence[str]) -> Callable[[], tuple[float, float]]:
            return lambda: _per_message(argv, short, long, extra)

        _run(ROUTERD_FILTER, short)  # warm the page cache and bytecode
        base, cand = alternate(cfg.passes, measure(PLAIN_FILTER), measure(ROUTERD_FILTER))
    figures = []
    for i, kind in enumerate(("cpu", "wall")):
        base_name = f"plain.filter.{kind}"
        figures.append(figure_from_passes(base_name, [b[i] for b in base], "µs/msg", Better.LOWER))
        figures.append(
            figure_from_passes(
                f"routerd.filter.builtin3.{kind}",
                [c[i] for c in cand],
                "µs/msg",
                Better.LOWER,
                base_name,
                paired=[b[i] for b in base],
            )
        )
    return figures


CASES = (
    Case(
        "routerd.filter",
        "routerd as a JSON-lines filter with 3 builtins vs a plain Python filter (paired)",
        filter_figures,
    ),
)
