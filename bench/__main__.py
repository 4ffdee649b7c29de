"""``python -m bench``: run the cases, print the table, write the JSON."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .case import Unavailable
from .config import BenchConfig
from .figure import Figure, rows_with_ratios
from .raw_cases import BODY_SIZES
from .registry import ALL_CASES, select_cases
from .report import format_table, run_metadata, write_json

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"


@click.command()
@click.option("--quick", is_flag=True, help="Fewer messages and passes: well under 30 s.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_JSON,
    show_default=True,
    help="Where to write the JSON results.",
)
@click.option("--only", multiple=True, metavar="GLOB", help="Run only cases matching GLOB.")
@click.option("--passes", type=click.IntRange(min=1), help="Passes per figure (median taken).")
@click.option("--messages", type=click.IntRange(min=1), help="Messages per case (override).")
@click.option(
    "--size",
    "sizes",
    multiple=True,
    type=click.Choice([label for label, _ in BODY_SIZES]),
    help="Measure only this body size (repeatable; default: all).",
)
@click.option("--list", "list_only", is_flag=True, help="List the cases and exit.")
def main(
    quick: bool,
    json_path: Path,
    only: tuple[str, ...],
    passes: int | None,
    messages: int | None,
    sizes: tuple[str, ...],
    list_only: bool,
) -> None:
    """Measure chanrouter against baselines taken in the same run; print ratios."""
    if list_only:
        for case in ALL_CASES:
            click.echo(f"{case.name:16} {case.summary}")
        return
    cases = select_cases(only)
    if not cases:
        raise click.UsageError(f"no case matches {', '.join(only)} (see --list)")
    cfg = BenchConfig.for_mode(quick=quick, passes=passes, messages=messages, sizes=sizes)
    figures: list[Figure] = []
    skipped: dict[str, str] = {}
    started = time.monotonic()
    for case in cases:
        click.echo(f"… {case.name}: {case.summary}", err=True)
        try:
            figures += case.run(cfg)
        except Unavailable as exc:
            skipped[case.name] = str(exc)
            click.echo(f"  skipped: {exc}", err=True)
    rows = rows_with_ratios(figures)
    click.echo(format_table(rows))
    for name, why in skipped.items():
        click.echo(f"skipped {name}: {why}")
    write_json(json_path, rows, skipped, run_metadata(cfg, ROOT, time.monotonic() - started))
    click.echo(f"wrote {json_path}", err=True)


if __name__ == "__main__":
    sys.exit(main())
