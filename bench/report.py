"""The table printed to the terminal and the JSON written for the record."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import BenchConfig
from .figure import Better, Row

__all__ = ["format_table", "format_value", "run_metadata", "write_json"]


def format_value(value: float) -> str:
    """Three significant figures, thousands separated for big numbers."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _ratio_text(row: Row) -> str:
    if row.figure.baseline is None:
        return "base"
    if row.ratio is None:
        return "n/a"
    return f"{row.ratio:.2f}x"


def format_table(rows: Sequence[Row]) -> str:
    """A fixed-width table: name, figure, unit, ratio to baseline, the baseline, direction."""
    header = ("name", "figure", "unit", "ratio", "vs baseline", "better")
    lines = [
        (
            r.figure.name,
            format_value(r.figure.value),
            r.figure.unit,
            _ratio_text(r),
            (r.figure.baseline or "-") + (" (paired)" if r.figure.paired else ""),
            "↑" if r.figure.better is Better.HIGHER else "↓",
        )
        for r in rows
    ]
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(header)]
    right = {1, 3}  # numbers line up on the right

    def fmt(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [fmt(header), fmt(["-" * w for w in widths])]
    out += [fmt(line) for line in lines]
    return "\n".join(out)


def _git_commit(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def run_metadata(cfg: BenchConfig, root: Path, elapsed_s: float) -> dict[str, Any]:
    """Where and how the figures were taken: enough to tell two JSON files apart."""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(root),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "config": asdict(cfg),
        "elapsed_s": round(elapsed_s, 3),
    }


def write_json(
    path: Path,
    rows: Sequence[Row],
    skipped: dict[str, str],
    meta: dict[str, Any],
) -> None:
    """Write the run as JSON: metadata, every figure with its passes, and skipped cases."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "figures": [r.to_json() for r in rows], "skipped": skipped}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
