"""The floor for a Python Unix filter doing routerd's job: run as ``python -m bench.plain_filter``.

It reads JSON lines on stdin a 64 KiB chunk at a time, decodes each into a message,
makes the three edits of :mod:`bench.plain_chain` (timing each, as a trace needs),
and writes one result line per input in routerd's shape, a chunk's results in one
write. No validation, no plugins, no event loop: what is left is JSON, the edits and
the pipe, the cost any filter in Python pays.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from plugin_sdk import Message

from .plain_chain import STEPS

__all__ = ["main"]

_NAMES = ("host-mount", "set-field", "authz")


def _result(line: bytes) -> dict[str, Any]:
    message = Message.from_wire(json.loads(line))
    trace = []
    clock = time.perf_counter
    for name, step in zip(_NAMES, STEPS, strict=True):
        start = clock()
        edited = step(message)
        verdict = "pass" if edited is message else "replace"
        duration = round(clock() - start, 6)
        trace.append(
            {
                "plugin": name,
                "message_id": message.id,
                "type": message.type,
                "verdict": verdict,
                "duration": duration,
                "reason": "",
            }
        )
        message = edited
    return {
        "id": message.id,
        "status": "delivered",
        "messages": [message.to_wire()],
        "by": None,
        "reason": "",
        "trace": trace,
    }


def main() -> None:
    """Filter stdin to stdout until EOF."""
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    rest = b""
    while True:
        chunk = os.read(0, 1 << 16)
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        out = [dumps(_result(line)).encode() + b"\n" for line in lines if line.strip()]
        data = b"".join(out)
        while data:
            data = data[os.write(1, data) :]
        if not chunk:
            return


if __name__ == "__main__":
    main()
