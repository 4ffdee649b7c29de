"""Measure a subprocess plugin's CPU per call against the raw msgpack echo's (issue 6).

``python -m bench.plugin_side_cpu [--calls N] [--window W] [--body BYTES] [--app 1|2]
[--sdk-path DIR] [--runner trio]`` (a profiling aid beside ``bin/bench``).

It drives ``bench/echo_plugin.py`` with a bare sans-IO connection (no trio, no router):
application layer 2 (calls in batches, answers on the control channel) or, with
``--app 1`` and ``--sdk-path`` pointing at a checkout of the version before it, the
old one (a SENDER reply channel per call). The same driver loop drives
``bench/raw_echo.py`` (plain msgpack objects, echoed) for the baseline. Both keep
``window`` calls in flight and send whatever the window allows in one write.

The figure is the child's CPU (``/proc/PID/task/*/schedstat``) per call, so the
driver's own cost does not count; the ratio divides it by the raw echo's. Each
subject is measured in alternating passes and the median is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import statistics
import sys
from pathlib import Path
from typing import Any

import msgpack

from plugin_sdk.wire import (
    ChannelRef,
    Connection,
    MessageReceived,
    RefKind,
    Role,
)

from .cpu import process_cpu_ns
from .fdpipes import FdChild, spawn_fd34

__all__ = ["PluginPeer", "drive", "main", "spawn_plugin"]

ROOT = Path(__file__).resolve().parent.parent


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _message(i: int, body: bytes) -> dict[str, Any]:
    return {"type": "bench.echo", "body": body, "id": f"m{i}", "headers": {}}


def _spawn(argv: list[str], sdk_path: str | None, runner: str | None) -> FdChild:
    env = dict(os.environ, CHANROUTER_PLUGIN="1")
    env["PYTHONPATH"] = sdk_path or str(ROOT)
    if runner:
        env["CHANROUTER_RUNNER"] = runner
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return spawn_fd34(argv, cwd=sdk_path or str(ROOT))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def spawn_plugin(argv: list[str]) -> FdChild:
    """Start ``argv`` as a plugin over FD 3/4 with this checkout's SDK."""
    return _spawn(argv, None, None)


class PluginPeer:
    """A router's minimal side of one plugin session, over blocking pipes."""

    def __init__(self, child: FdChild, app: int) -> None:
        self.child = child
        self.app = app
        self.conn = Connection(Role.INITIATOR)
        self.batch_bytes = 1 << 16
        """About how many bytes of calls go in one batch (at most ``max_frame``)."""
        self.events: list[Any] = []
        self.next_id = 1
        _write_all(child.to_child, self.conn.hello())
        while not any(isinstance(e, MessageReceived) for e in self.events):
            self._read()
        ready = next(e for e in self.events if isinstance(e, MessageReceived))
        assert ready.payload.get("op") == "ready", ready.payload
        self.control = ready.channel
        self.events.clear()
        _write_all(child.to_child, self.conn.acknowledge(self.control, ready.size))
        self.calls, frame = self.conn.open()
        _write_all(child.to_child, frame)

    def _read(self) -> None:
        data = os.read(self.child.from_child, 1 << 18)
        if not data:
            raise EOFError("the plugin closed FD 4")
        self.events += self.conn.receive_data(data)

    def send(self, messages: list[dict[str, Any]]) -> tuple[bytes, int]:
        """The frames making the first calls of ``messages`` that credit and the plugin's
        ``max_frame`` allow now, and how many that is (a router does the same)."""
        out = b""
        done = 0
        size = len(messages[0]["body"]) + 64 if messages else 1
        per_batch = max(1, self.batch_bytes // size) if self.app == 2 else 1
        while done < len(messages) and self.conn.credit(self.calls) > 0:
            batch = messages[done : done + per_batch]
            if self.app == 2:
                entries = [[self.next_id + i, m] for i, m in enumerate(batch)]
                self.next_id += len(batch)
                out += self.conn.send_message(self.calls, {"op": "call", "calls": entries})
            else:
                request = {"op": "call", "message": batch[0], "reply": ChannelRef(RefKind.SENDER)}
                out += self.conn.send_message(self.calls, request)
            done += len(batch)
        return out, done

    def answered(self) -> tuple[int, bytes]:
        """Read once; return how many calls were answered and the bytes to send back."""
        self._read()
        count = 0
        out = b""
        for event in self.events:
            if isinstance(event, MessageReceived):
                if self.app == 2:
                    assert event.channel == self.control
                    count += len(event.payload["replies"])
                    out += self.conn.acknowledge(self.control, event.size)
                else:
                    count += 1
        self.events.clear()
        return count, out + self.conn.data_to_send()


class _Raw:
    """The raw echo: msgpack objects both ways."""

    def __init__(self, child: FdChild) -> None:
        self.child = child
        self.packer = msgpack.Packer()
        self.unpacker = msgpack.Unpacker(raw=False, max_buffer_size=64 << 20)

    def send(self, messages: list[dict[str, Any]]) -> tuple[bytes, int]:
        return b"".join(self.packer.pack(m) for m in messages), len(messages)

    def answered(self) -> tuple[int, bytes]:
        data = os.read(self.child.from_child, 1 << 18)
        if not data:
            raise EOFError("the echo closed FD 4")
        self.unpacker.feed(data)
        return sum(1 for _ in self.unpacker), b""


def drive(peer: PluginPeer | _Raw, calls: int, window: int, body: bytes) -> int:
    """Make ``calls`` calls, ``window`` in flight; return the child's CPU ns meanwhile.

    Writes are non-blocking and interleaved with reads: with large messages in flight a
    blocking write would deadlock against a child blocked writing its answers back.
    """
    child = peer.child
    os.set_blocking(child.to_child, False)
    start = process_cpu_ns(child.proc.pid)
    sent = done = 0
    pending = b""
    while done < calls:
        free = min(window - (sent - done), calls - sent)
        if free > 0:
            data, count = peer.send([_message(sent + i, body) for i in range(free)])
            pending += data
            sent += count
        readable, writable, _ = select.select(
            [child.from_child], [child.to_child] if pending else [], []
        )
        if writable:
            with contextlib.suppress(BlockingIOError):
                pending = pending[os.write(child.to_child, pending) :]
        if readable:
            count, back = peer.answered()
            done += count
            pending += back
    spent = process_cpu_ns(child.proc.pid) - start
    os.set_blocking(child.to_child, True)
    _write_all(child.to_child, pending)  # CREDIT still owed: the next run needs it
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--body", type=int, default=60)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--app", type=int, default=2, choices=(1, 2))
    parser.add_argument("--sdk-path", default=None, help="where plugin_sdk comes from")
    parser.add_argument("--runner", default=None, help="CHANROUTER_RUNNER for the plugin")
    parser.add_argument("--batch-bytes", type=int, default=1 << 16, help="bytes of calls a batch")
    args = parser.parse_args()
    body = b"x" * args.body
    echo = str(ROOT / "bench" / "echo_plugin.py")
    raw = str(ROOT / "bench" / "raw_echo.py")
    plugin_child = _spawn([sys.executable, echo, "echo"], args.sdk_path, args.runner)
    raw_child = _spawn([sys.executable, raw], None, None)
    plugin = PluginPeer(plugin_child, args.app)
    plugin.batch_bytes = min(args.batch_bytes, plugin.conn.peer_max_frame // 2)
    raw_peer = _Raw(raw_child)
    drive(plugin, 2000, args.window, body)  # warm-up
    drive(raw_peer, 2000, args.window, body)
    ratios, plugin_us, raw_us = [], [], []
    for _ in range(args.passes):
        p = drive(plugin, args.calls, args.window, body) / args.calls / 1000
        r = drive(raw_peer, args.calls, args.window, body) / args.calls / 1000
        plugin_us.append(p)
        raw_us.append(r)
        ratios.append(p / r)
    plugin_child.close()
    raw_child.close()
    print(
        f"app {args.app} runner {args.runner or 'default'} body {args.body}B window "
        f"{args.window}: plugin {statistics.median(plugin_us):.2f} µs/call, raw echo "
        f"{statistics.median(raw_us):.2f} µs/call, ratio {statistics.median(ratios):.2f}x"
    )


if __name__ == "__main__":
    main()
