"""Count instructions per message under callgrind: ``python -m bench.instructions [CASE...]``.

A profiling aid beside ``bin/bench`` (not part of its table). Wall and CPU times swing
several-fold on a shared host; an instruction count does not: it is the same for the
same code and inputs, whatever else the machine does. So this is how to tell whether
a change made the hot path cheaper, by how much, before a noisy ``bin/bench`` can.

Cases (default: all):

* ``builtin3``: the router side of three builtins in process (``host-mount``,
  ``set-field``, ``authz``) through ``route_stream``, as ``router.builtin3``;
* ``exec1`` / ``exec3``: the router side of one / three subprocess echo plugins, 64 in
  flight, 60 B bodies, as ``router.exec1.w64`` / ``router.exec3.w64``;
* ``plugin``: the echo plugin's own side (``bench/echo_plugin.py`` on the SDK's runner),
  driven by a bare sans-IO host, as ``python -m bench.plugin_side_cpu``.

Each case runs twice under ``valgrind --tool=callgrind`` (``--small`` and ``--large``
messages, after the same warm-up) with ``PYTHONHASHSEED=0``, and the figure is the
difference over the extra messages, so start-up and warm-up cancel out. Only the
process under study is counted. The subprocess cases vary by about 1% between runs
(how answers batch depends on timing); ``builtin3`` repeats exactly. valgrind comes
from the system's packages (Debian's ``valgrind``); it is not a dependency.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
CASES = ("builtin3", "exec1", "exec3", "plugin")
_TOTAL = re.compile(rb"^summary: (\d+)", re.MULTILINE)
_WARM_UP = 500


def _callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]


def _total(out: Path) -> int:
    """The instructions a callgrind output file counted."""
    found = _TOTAL.search(out.read_bytes())
    if found is None:
        raise RuntimeError(f"no summary line in {out}: did the process under study exit?")
    return int(found.group(1))


def _count(case: str, messages: int, workdir: Path) -> int:
    """Instructions of one run of ``case`` with ``messages`` messages after the warm-up."""
    out = workdir / f"{case}.{messages}.callgrind"
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=str(ROOT))
    if case == "plugin":
        # The host runs natively; the plugin it spawns runs under callgrind.
        argv = [sys.executable, "-m", "bench.instructions", "--run", case, str(messages)]
        env["BENCH_PLUGIN_PREFIX"] = " ".join(_callgrind(out))
    else:
        argv = [*_callgrind(out), sys.executable, "-m", "bench.instructions", "--run", case]
        argv.append(str(messages))
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{case} with {messages} messages failed:\n{done.stderr[-2000:]}")
    return _total(out)


def _run(case: str, messages: int) -> None:
    """Run ``case`` natively: the warm-up, then ``messages`` messages (what is counted)."""
    if case == "plugin":
        _run_plugin(messages)
        return
    import trio

    import router
    from router.exec import ExecHandle

    from .plain_chain import container_create
    from .router_cases import builtin3_plugins, echo_plugin_argv
    from .router_driver import echo_messages, route_pipelined

    async def main() -> None:
        if case == "builtin3":
            plugins = builtin3_plugins()
            async with router.open(plugins, max_in_flight=64) as r:
                await route_pipelined(r, [container_create(i) for i in range(_WARM_UP)])
                await route_pipelined(r, [container_create(i) for i in range(messages)])
            return
        count = 3 if case == "exec3" else 1
        handles = [ExecHandle(echo_plugin_argv(f"echo{i + 1}")) for i in range(count)]
        async with router.open(handles, max_in_flight=64) as r:
            await route_pipelined(r, echo_messages(_WARM_UP, 60))
            await route_pipelined(r, echo_messages(messages, 60))

    trio.run(main)


def _run_plugin(messages: int) -> None:
    from . import plugin_side_cpu

    prefix = os.environ.get("BENCH_PLUGIN_PREFIX", "").split()
    argv = [*prefix, sys.executable, str(ROOT / "bench" / "echo_plugin.py"), "echo"]
    child = plugin_side_cpu.spawn_plugin(argv)
    try:
        peer = plugin_side_cpu.PluginPeer(child, 2)
        body = b"x" * 60
        plugin_side_cpu.drive(peer, _WARM_UP, 64, body)
        plugin_side_cpu.drive(peer, messages, 64, body)
    finally:
        child.close()  # the plugin exits at EOF: callgrind writes its counts then


def main() -> None:
    """Print instructions per message for each case asked for."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description="Instructions per message under callgrind (see the module docstring).",
    )
    parser.add_argument("cases", nargs="*", metavar="CASE", help=f"one of {', '.join(CASES)}")
    parser.add_argument("--small", type=int, default=2000, help="messages of the short run")
    parser.add_argument("--large", type=int, default=6000, help="messages of the long run")
    parser.add_argument("--run", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        _run(args.run[0], int(args.run[1]))
        return
    unknown = [case for case in args.cases if case not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}: choose from {', '.join(CASES)}")
    if args.large <= args.small:
        parser.error("--large must be more than --small")
    if shutil.which("valgrind") is None:
        parser.exit(2, "valgrind is not installed (Debian: apt-get install valgrind)\n")
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        for case in args.cases or CASES:
            small = _count(case, args.small, Path(tmp))
            large = _count(case, args.large, Path(tmp))
            per = (large - small) / (args.large - args.small)
            print(f"{case}: {per:,.0f} instructions a message", flush=True)


if __name__ == "__main__":
    main()
