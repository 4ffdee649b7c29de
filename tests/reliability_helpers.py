"""Shared helpers for the reliability tests: routerd as a real process, process-tree checks.

- :func:`routerd`: run ``routerd`` as a real process for the block, with its stdout parsed
  into results and its stderr drained continuously (a chatty daemon never stalls the test).
- :func:`worker_cmd`: the command line of ``tests/plugins/rel_worker.py``.
- :func:`children_of`, :func:`rss_kib`: what ``/proc`` says about a process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from exec_helpers import kill_quietly, plugin_cmd

__all__ = [
    "RouterdProcess",
    "children_of",
    "job_lines",
    "routerd",
    "routerd_argv",
    "rss_kib",
    "scripted_cmd",
    "worker_cmd",
]


def worker_cmd(option: str = "") -> str:
    """The command line of ``tests/plugins/rel_worker.py`` with ``option``."""
    return plugin_cmd("rel_worker.py", option)


def scripted_cmd(option: str = "") -> str:
    """The command line of ``tests/plugins/scripted.py`` (the exec helper's) with ``option``."""
    return plugin_cmd("scripted.py", option)


def routerd_argv(*args: str) -> list[str]:
    """The argv that runs routerd from this interpreter's environment with ``args``."""
    script = Path(sys.executable).parent / "routerd"
    if script.exists():
        return [str(script), *args]
    # No console script (not an editable install): call the click entry point directly.
    return [sys.executable, "-c", "from router.cli.routerd import main; main()", *args]


def children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (read from ``/proc``; zombies included)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue  # it went away while we looked
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def rss_kib(pid: int) -> int:
    """The resident set size of ``pid`` in KiB (``VmRSS`` in ``/proc/PID/status``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"process {pid} has no VmRSS (a zombie?)")


def job_lines(count: int, *, prefix: str = "m", type: str = "job", pad: int = 0) -> list[bytes]:
    """``count`` JSON input lines with ids ``{prefix}-00000``...; ``pad`` bytes of filler each."""
    body: dict[str, Any] = {"pad": "p" * pad} if pad else {}
    return [
        json.dumps({"type": type, "id": f"{prefix}-{i:05d}", "body": body}).encode() + b"\n"
        for i in range(count)
    ]


class RouterdProcess:
    """A running routerd: feed its stdin, read its results, signal it, wait for its exit.

    ``results`` fills as result lines arrive on stdout; ``log`` holds routerd's own log
    lines from stderr (plugin output forwarded by routerd is counted in ``stderr_bytes``
    and only its tail kept, so a chatty plugin costs the test no memory).
    """

    def __init__(self, process: trio.Process, *, json_results: bool, slim: bool) -> None:
        self.process = process
        self._json = json_results
        self._slim = slim
        self.raw_stdout = bytearray()
        """stdout as is, when results are not JSON lines (``--format msgpack``)."""
        self.pid: int = process.pid
        self.results: list[dict[str, Any]] = []
        self.log: list[str] = []
        self.stderr_tail: deque[str] = deque(maxlen=50)
        self.stderr_bytes = 0
        self.stdout_closed = trio.Event()
        self._changed = trio.Event()

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        buf = b""
        async for chunk in self.process.stdout:
            if not self._json:
                self.raw_stdout += chunk
                continue
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                result = json.loads(line)
                if self._slim:
                    result = {k: result[k] for k in ("id", "status", "by", "reason")}
                self.results.append(result)
            self._changed.set()
            self._changed = trio.Event()
        self.stdout_closed.set()
        self._changed.set()

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        buf = b""
        async for chunk in self.process.stderr:
            self.stderr_bytes += len(chunk)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace")
                self.stderr_tail.append(line[:500])
                if " chanrouter.plugin." not in line:
                    self.log.append(line)

    def log_text(self) -> str:
        """routerd's own log so far, one line per entry."""
        return "\n".join(self.log)

    async def send(self, data: bytes) -> None:
        """Write ``data`` to routerd's stdin (blocks while routerd is not reading)."""
        assert self.process.stdin is not None
        await self.process.stdin.send_all(data)

    async def close_stdin(self) -> None:
        """End routerd's input."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    async def wait_results(self, count: int, within: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``count`` results came out (or stdout ended); return them all."""
        with trio.fail_after(within):
            while len(self.results) < count and not self.stdout_closed.is_set():
                await self._changed.wait()
        return self.results

    async def wait_exit(self, within: float = 30.0) -> int:
        """Wait for routerd to exit and its stdout to be read to the end; its status."""
        with trio.fail_after(within):
            code = await self.process.wait()
            await self.stdout_closed.wait()
        return code

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to routerd."""
        self.process.send_signal(sig)


@asynccontextmanager
async def routerd(
    args: Sequence[str], *, slim: bool = False, cwd: str | None = None
) -> AsyncIterator[RouterdProcess]:
    """Run ``routerd ARGS`` for the block; on the way out it and its children are killed.

    ``args`` are routerd's options (``--plugin-exec`` commands and so on). With
    ``--format msgpack`` stdout is kept raw (``raw_stdout``); ``slim`` keeps only each
    result's id, status, by and reason (for tests that route megabytes).
    """
    process = await trio.lowlevel.open_process(
        routerd_argv(*args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
    )
    daemon = RouterdProcess(process, json_results="msgpack" not in args, slim=slim)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(daemon._read_stdout)
            nursery.start_soon(daemon._read_stderr)
            try:
                yield daemon
            finally:
                if process.returncode is None:
                    # Plugins die with routerd (parent-death signal); reap them anyway.
                    plugins = children_of(process.pid)
                    process.kill()
                    for pid in plugins:
                        kill_quietly(pid)
                with trio.CancelScope(shield=True), trio.move_on_after(10):
                    await process.wait()
                nursery.cancel_scope.cancel()
    finally:
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
                    await stream.aclose()


def describe(daemon: RouterdProcess) -> str:
    """What routerd logged, for assertion messages."""
    tail = "\n".join(daemon.stderr_tail)
    return f"routerd (pid {daemon.pid}) stderr tail:\n{tail}\ncommand: {shlex.join(routerd_argv())}"
