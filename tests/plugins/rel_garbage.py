"""Test plugin (run as a script): breaks the protocol in one chosen way.

argv[1] is ``MODE [state=PATH]``. Mid-session modes answer the handshake properly and
misbehave on the first ``job`` call, writing straight onto FD 4 behind the session:

- ``random``: 4096 seeded random bytes;
- ``truncated``: a length prefix announcing 100 bytes, 10 of them, then FD 4 is closed;
- ``oversized``: a length prefix announcing 4 GiB, then 1 MiB of filler;
- ``unknown-channel``: a well-formed MESSAGE frame for a channel nobody opened.

Start-up modes behave on the first start (creating ``state``) and crash on the first
``job``; every later start misbehaves before or during the wire handshake:

- ``wrong-version``: a HELLO that speaks only protocol version 99;
- ``exit-before-hello``: exits 4 without a byte on FD 4.
"""

from __future__ import annotations

import os
import random
import struct
import sys
import time
from pathlib import Path

import msgpack

from plugin_sdk import Message, Plugin, handles, split_option
from plugin_sdk.runner import run

START_MODES = ("wrong-version", "exit-before-hello")


def frame(body: object) -> bytes:
    """One wire frame: a 4-byte big-endian length, then the msgpack body."""
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return struct.pack(">I", len(packed)) + packed


def hold() -> None:
    """Stay alive (but silent) until the router kills us."""
    while True:
        time.sleep(60)


def misbehave_mid_session(mode: str) -> None:
    """Write what ``mode`` says onto the protocol pipe, behind the session's back."""
    if mode == "random":
        os.write(4, random.Random(7).randbytes(4096))
    elif mode == "truncated":
        os.write(4, struct.pack(">I", 100) + b"0123456789")
        os.close(4)
    elif mode == "oversized":
        os.write(4, struct.pack(">I", 0xFFFFFFFF))
        os.write(4, b"z" * (1 << 20))
    elif mode == "unknown-channel":
        os.write(4, frame([2, 9998, "for nobody"]))
    else:  # a start-up mode: crash, so that the next start misbehaves
        os._exit(3)
    hold()


class Garbage(Plugin):
    """Accepts ``job``; its handler breaks the protocol (see the module docstring)."""

    name = "bad"

    def configure(self, option: str) -> None:
        """``MODE [state=PATH]``."""
        words = split_option(option)
        self.mode = words[0]

    @handles("job")
    def job(self, msg: Message) -> None:
        """Misbehave."""
        misbehave_mid_session(self.mode)


def main() -> None:
    """Misbehave at start when asked to, else serve :class:`Garbage`."""
    words = split_option(sys.argv[1])
    mode = words[0]
    settings = dict(w.split("=", 1) for w in words[1:])
    if mode in START_MODES:
        state = Path(settings["state"])
        if state.exists():
            if mode == "exit-before-hello":
                print("bad: giving up before saying hello", file=sys.stderr, flush=True)
                os._exit(4)
            os.write(4, frame([0, {"versions": [99]}]))
            hold()
        state.write_text("started once")
    run(Garbage)


if __name__ == "__main__":
    main()
