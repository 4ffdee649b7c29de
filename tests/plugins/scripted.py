"""Test plugin (run as a script): what it does is chosen per message type.

Option: ``key=value`` words: ``name=`` (default "scripted"), ``concurrency=``,
``timeout=``, ``on_error=``,
``refuse=1`` (the option is rejected: a ``fail`` handshake), ``stop-note=PATH`` (the
stop hook writes "stopped" there).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import trio

from plugin_sdk import Message, OptionError, Plugin, Reply, drop, handles, split_option
from plugin_sdk.runner import run


class Scripted(Plugin):
    """Echo, delay, stubborn, stuck-once, gate, crash, hang, garbage, chatty: one per type."""

    name = "scripted"

    def configure(self, option: str) -> None:
        """Read ``key=value`` words."""
        settings: dict[str, Any] = dict(w.split("=", 1) for w in split_option(option))
        if settings.get("refuse"):
            raise OptionError("refused as asked (refuse=1)")
        self.name = settings.get("name", self.name)
        self.concurrency = int(settings.get("concurrency", 1))
        self.timeout = float(settings.get("timeout", self.timeout))
        self.on_error = settings.get("on_error", self.on_error)
        self.stop_note = settings.get("stop-note")
        self.waiting = 0
        self.gate_open = trio.Event()
        self.seen: set[str] = set()

    async def stop(self) -> None:
        """Leave a note that the stop hook ran."""
        if self.stop_note:
            Path(self.stop_note).write_text("stopped")

    @handles("echo")
    def echo(self, msg: Message) -> Message:
        """Answer with the body wrapped, and this process's pid."""
        return Message("echo", {"echo": msg.body, "pid": os.getpid()}, id=msg.id)

    @handles("drop")
    def drop_it(self, msg: Message) -> Reply:
        """Drop with the body as reason."""
        return drop(str(msg.body))

    @handles("delay")
    async def delay(self, msg: Message) -> Message:
        """Answer after ``body`` seconds (trio sleep: the plugin stays responsive)."""
        await trio.sleep(float(msg.body))
        return Message("delay", msg.body, id=msg.id)

    @handles("stubborn")
    async def stubborn(self, msg: Message) -> Message:
        """Like ``delay``, but deaf to the router's cancel (the sleep is shielded)."""
        with trio.CancelScope(shield=True):
            await trio.sleep(float(msg.body))
        return Message("stubborn", msg.body, id=msg.id)

    @handles("stuck-once")
    async def stuck_once(self, msg: Message) -> Message:
        """Wait for ever on the first call for a message id; answer later ones at once."""
        if msg.id not in self.seen:
            self.seen.add(msg.id)
            await trio.sleep_forever()
        return Message("stuck-once", {"pid": os.getpid()}, id=msg.id)

    @handles("gate")
    async def gate(self, msg: Message) -> Message:
        """Answer once ``body`` gate calls are in flight at the same time."""
        self.waiting += 1
        if self.waiting >= int(msg.body):
            self.gate_open.set()
        await self.gate_open.wait()
        return Message("gate", self.waiting, id=msg.id)

    @handles("crash")
    def crash(self, msg: Message) -> None:
        """Exit at once with status 3, mid-call."""
        os._exit(3)

    @handles("crash-once")
    def crash_once(self, msg: Message) -> Message:
        """Exit with status 3 unless the file named by ``body`` exists (creating it first)."""
        marker = Path(str(msg.body))
        if not marker.exists():
            marker.write_text("crashed once")
            os._exit(3)
        return Message("crash-once", "survived", id=msg.id)

    @handles("hang")
    def hang(self, msg: Message) -> None:
        """Block the whole event loop (a synchronous sleep): pings go unanswered too."""
        time.sleep(float(msg.body))

    @handles("garbage")
    def garbage(self, msg: Message) -> None:
        """Write bytes that are not a frame onto the protocol pipe."""
        os.write(4, b"\x00\x00\x00\x05hello this is not msgpack")

    @handles("chatty")
    def chatty(self, msg: Message) -> Message:
        """Write ``body`` bytes to stdout and to stderr (blocking writes) before answering."""
        size = int(msg.body)
        line = b"x" * 99 + b"\n"
        for fd in (1, 2):
            os.write(fd, b"one very long line " + b"y" * 100_000 + b"\n")
            written = 0
            while written < size:
                written += os.write(fd, line * 1000)
        return Message("chatty", size, id=msg.id)

    @handles("stderr")
    def stderr(self, msg: Message) -> None:
        """Log ``body`` at error level (it reaches the router's log through stderr)."""
        self.log.error("%s", msg.body)
        print(f"plain {msg.body}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    run(Scripted)
