"""A chanrouter plugin written from docs/PROTOCOL.md alone: no plugin_sdk, no trio.

It proves the spec is enough. Plain blocking reads of FD 3 and writes to FD 4, msgpack
for the bodies; every call read in one go is answered with one ``replies`` message and
one write. What it does: stamps every ``container.create`` with the label
``"org.chanrouter.raw": "seen"``.

    routerd --plugin-exec "python examples/raw_plugin.py"
"""

from __future__ import annotations

import os
import struct
import sys
from typing import Any

import msgpack

IN_FD, OUT_FD = 3, 4  # section 1: the plugin reads FD 3 and writes FD 4
HELLO, OPEN, MESSAGE, DATA, CLOSE, RESET, CREDIT, GOAWAY = range(8)  # section 3
SENDER = 1  # section 6: ext type 1, the recipient writes on it
WINDOW = 262144  # section 4: the default window we grant (we send no "window" field)
CONTROL, CALLS = 2, 1  # A.2 and A.3: the channel ids of the first OPENs
LABEL = ("org.chanrouter.raw", "seen")
# A.3: concurrency is how many calls the router may have unanswered at once; we answer
# each batch as soon as we read it, so any number will do.
INFO = {"name": "raw-label", "accepts": ["container.create"], "version": "1.0", "concurrency": 16}


class Ref:
    """A channel reference found in a payload (section 6)."""

    def __init__(self, kind: int, channel: int) -> None:
        self.kind, self.channel = kind, channel


def ext_hook(code: int, data: bytes) -> Any:
    if code in (1, 2, 3) and len(data) == 8:
        return Ref(code, int.from_bytes(data, "big"))
    return msgpack.ExtType(code, data)


def frame(*fields: Any) -> bytes:
    """Section 2: a 4-byte big-endian length, then the msgpack array."""
    body: bytes = msgpack.packb(list(fields), use_bin_type=True)
    return struct.pack(">I", len(body)) + body


def write(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(OUT_FD, view) :]


def reads() -> Any:
    """Yield, for every read of FD 3 until EOF, the (body length, decoded body) of each
    frame it completed (maybe none)."""
    buf = b""
    while True:
        chunk = os.read(IN_FD, 65536)
        if not chunk:
            if buf:
                sys.exit(f"raw-label: stream ended inside a frame ({len(buf)} bytes)")
            return
        buf += chunk
        done = []
        while len(buf) >= 4:
            (n,) = struct.unpack_from(">I", buf)
            if n > 1 << 20:  # the default max_frame we accept (section 9)
                write(frame(GOAWAY, 2, f"frame of {n} bytes is too large"))
                sys.exit(1)
            if len(buf) < 4 + n:
                break
            body = msgpack.unpackb(buf[4 : 4 + n], raw=False, ext_hook=ext_hook)
            buf = buf[4 + n :]
            done.append((n, body))
        yield done


def handle(call_id: Any, message: Any) -> list[Any]:
    """The plugin's logic: the answer to one call, ``[id, verdict, messages, reason]`` (A.3)."""
    if not isinstance(message, dict) or not isinstance(message.get("body"), dict):
        return [call_id, "error", [], "container.create body must be a map"]
    body = message["body"]
    labels = dict(body.get("Labels") or {})
    labels[LABEL[0]] = LABEL[1]
    return [call_id, "continue", [{**message, "body": {**body, "Labels": labels}}], ""]


def main() -> int:
    if os.environ.get("CHANROUTER_PLUGIN") != "1":
        print(
            "raw_plugin.py is a chanrouter plugin: run it with routerd --plugin-exec",
            file=sys.stderr,
        )
        return 2
    write(frame(HELLO, {"versions": [1]}))  # section 4: at once, without waiting
    unacknowledged = 0
    credit = 0  # section 7: what we may still send on the control channel
    answers: list[Any] = []  # answered, not sent yet
    for read in reads():
        out, ending = b"", False
        for size, body in read:
            kind = body[0]
            if kind == HELLO:
                if 1 not in body[1].get("versions", []):
                    write(frame(GOAWAY, 3, "no common protocol version: we speak [1]"))
                    return 1
                credit = body[1].get("window", WINDOW)
                # A.2: open the control channel and say who we are.
                ready = frame(MESSAGE, CONTROL, {"op": "ready", "info": INFO, "app": 2})
                credit -= len(ready) - 4
                out += frame(OPEN, CONTROL) + ready
            elif kind == MESSAGE and body[1] == CALLS:
                request = body[2] if isinstance(body[2], dict) else {}
                op, reply = request.get("op"), request.get("reply")
                if op == "call":
                    # A.3: every call gets one answer, matched by its id.
                    answers += [
                        handle(*call) for call in request.get("calls", []) if len(call) == 2
                    ]
                elif isinstance(reply, Ref) and reply.kind == SENDER:
                    if op == "ping":
                        out += frame(MESSAGE, reply.channel, {"op": "pong"})
                        out += frame(CLOSE, reply.channel)
                    else:
                        out += frame(RESET, reply.channel, 9, f"unsupported op {op!r}")
                # Section 7: give back the credit for what we consumed, half a window at a time.
                unacknowledged += size
                if unacknowledged >= WINDOW // 2:
                    out += frame(CREDIT, CALLS, unacknowledged)
                    unacknowledged = 0
            elif kind == CREDIT and body[1] == CONTROL:
                credit += body[2]
            elif (kind == CLOSE and body[1] == CALLS) or kind == GOAWAY:
                ending = True  # A.5: no more calls; answer those we got, then exit 0
            # OPEN of the calls channel, CREDIT for a pong's channel: nothing to do.
        if answers and credit > 0:
            # One replies message for everything answered since the last one (A.3).
            replies = frame(MESSAGE, CONTROL, {"op": "replies", "replies": answers})
            credit -= len(replies) - 4
            out += replies
            answers = []
        if out:
            write(out)
        if ending:
            return 0
    return 0  # EOF on FD 3: the router is gone (section 8)


if __name__ == "__main__":
    sys.exit(main())
