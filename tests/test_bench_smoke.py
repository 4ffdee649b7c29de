"""The benchmark scripts run end to end: a handful of messages, no timing assertions."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.plain_chain import container_create
from bench.stats import median, percentile, slice_rates, slice_size

ROOT = Path(__file__).resolve().parent.parent


def _bench(tmp_path: Path, argv: list[str], timeout: float) -> tuple[dict[str, Any], str]:
    """Run ``python -m bench ARGV`` to the end: its JSON document and its table."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", *argv, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc, done.stdout


def test_every_case_runs_end_to_end_and_writes_its_figures(tmp_path: Path) -> None:
    # Every case but routerd.rss (ten plugin processes per pass: too slow for a smoke test)
    # and routerd.filter (its own test below).
    cases = ["raw.*", "plain.*", "session.*", "router.*"]
    argv = [*(a for c in cases for a in ("--only", c)), "--messages", "20", "--passes", "1"]
    argv += ["--size", "60B", "--size", "64KiB"]  # small, and more than a pipe buffer
    doc, table = _bench(tmp_path, argv, timeout=60)
    figures = {f["name"]: f for f in doc["figures"]}
    for size in ("60B", "64KiB"):
        assert f"raw.rtt.{size}.p50" in figures
        assert f"raw.w64.{size}.steady" in figures
    assert {"raw.chain3.w64.60B.wall", "raw.spawn.ready", "plain.chain3.steady"} <= set(figures)
    chain = figures["raw.chain3.w64.60B.wall"]
    assert chain["baseline"] == "raw.w64.60B.wall"
    pairs = zip(chain["passes"], chain["paired_baseline_passes"], strict=True)
    assert chain["ratio"] == statistics.median(p / b for p, b in pairs)
    session = figures["session.request.w64.60B.steady"]
    assert session["baseline"] == "raw.w64.60B.steady" and session["paired_baseline_passes"]
    assert "session.channel.w64.64KiB.wall" in figures
    assert "session.request.rtt.64KiB.p99" in figures
    assert not any(".4KiB." in name for name in figures)
    for name, base in [
        ("router.exec1.rtt.64KiB.p50", "raw.rtt.64KiB.p50"),
        ("router.exec1.w64.64KiB.steady", "raw.w64.64KiB.steady"),
        ("router.exec1.w64.60B.cpu", "raw.w64.60B.cpu"),
        ("session.channel.w64.60B.cpu", "raw.w64.60B.cpu"),
        ("router.exec3.w64.60B.wall", "raw.chain3.w64.60B.wall"),
        ("router.builtin3.steady", "plain.chain3.steady"),
        ("router.exec.start", "raw.spawn.ready"),
    ]:
        assert figures[name]["baseline"] == base and figures[name]["paired_baseline_passes"]
    assert doc["skipped"] == {}
    assert all(f["value"] > 0 and f["passes"] for f in figures.values())
    assert "raw.chain3.w64.60B.wall" in table  # the table names it too


def test_the_filter_case_runs_routerd_and_the_plain_filter_as_processes(tmp_path: Path) -> None:
    argv = ["--only", "routerd.filter", "--messages", "50", "--passes", "1"]
    doc, _ = _bench(tmp_path, argv, timeout=120)
    figures = {f["name"]: f for f in doc["figures"]}
    for kind in ("cpu", "wall"):
        subject = figures[f"routerd.filter.builtin3.{kind}"]
        assert subject["baseline"] == f"plain.filter.{kind}"
        assert len(subject["passes"]) == len(subject["paired_baseline_passes"]) == 1
    # 50 extra lines are too few to measure (start-up jitter dominates): no value checks.


def test_the_plain_filter_writes_one_result_line_per_input_in_routerds_shape() -> None:
    lines = [json.dumps(container_create(i).to_wire()) for i in range(3)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.plain_filter"],
        cwd=ROOT,
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in results] == ["c0", "c1", "c2"]
    body = results[1]["messages"][0]["body"]
    assert body["HostConfig"]["Binds"] == ["/var/lib/shared:/shared"]
    assert body["Labels"] == {"n": "1"}
    assert [h["verdict"] for h in results[1]["trace"]] == ["replace", "replace", "pass"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1e9, allow_nan=False), min_size=1), st.floats(0, 100))
def test_percentile_is_an_observed_value_between_min_and_max(xs: list[float], q: float) -> None:
    p = percentile(xs, q)
    assert p in xs
    assert min(xs) <= median(xs) <= max(xs)
    assert percentile(xs, 0) == min(xs) and percentile(xs, 100) == max(xs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=30), st.integers(1, 1000))
def test_slice_rates_give_one_rate_per_slice_that_took_time(
    steps: list[int], per_slice: int
) -> None:
    marks = [0]
    for step in steps:
        marks.append(marks[-1] + step)
    rates = slice_rates(marks, per_slice)
    assert rates == [per_slice * 1e9 / s for s in steps]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 100), st.integers(1, 256))
def test_a_slice_holds_two_windows_and_a_run_has_fewer_than_twice_the_slices_asked(
    count: int, slices: int, window: int
) -> None:
    size = slice_size(count, slices, window)
    assert size >= 2 * window
    assert count // size < 2 * slices  # rounding may add slices, never double them


@pytest.mark.parametrize("case", ["builtin3", "exec1", "plugin"])
def test_each_instruction_count_workload_runs_natively(case: str) -> None:
    # What bench.instructions runs under callgrind (valgrind itself is too slow here).
    subprocess.run(
        [sys.executable, "-m", "bench.instructions", "--run", case, "20"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )


def test_an_unknown_instruction_count_case_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown case(s) nope" in done.stderr
