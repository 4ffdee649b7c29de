"""Stream mode's input decoders and output encoders (pure: bytes in, items out).

routerd reads messages from stdin as JSON lines (the default) or as a msgpack stream,
and writes one result per input to stdout in the same format. A malformed input never
stops the stream: it becomes a :class:`BadInput` (which routerd turns into a failed
result naming the line or byte offset and the problem) and decoding goes on.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgpack

from plugin_sdk import Message, MessageFormatError

__all__ = [
    "MAX_INPUT_BYTES",
    "BadInput",
    "Decoder",
    "JsonLinesDecoder",
    "MsgpackDecoder",
    "encode_json_line",
    "encode_msgpack",
    "make_decoder",
]

MAX_INPUT_BYTES: Final = 16 << 20
"""Largest single input (a JSON line or a msgpack object) accepted on stdin."""


@dataclass(frozen=True, slots=True)
class BadInput:
    """An input that could not be read as a message: where it was and what was wrong."""

    id: str
    reason: str


Item = Message | BadInput


class Decoder(Protocol):
    """Turns chunks of stdin into messages and bad inputs, in input order."""

    def feed(self, data: bytes) -> list[Item]:
        """Consume ``data``; ``b""`` means end of input (flushes a last unterminated item)."""
        ...


class JsonLinesDecoder:
    """One JSON object per line; blank lines are skipped; lines are counted from 1."""

    def __init__(self, max_line: int = MAX_INPUT_BYTES) -> None:
        self._buf = bytearray()
        self._line = 0
        self._max = max_line
        self._skipping = False  # inside an over-long line, dropping bytes until its newline

    def feed(self, data: bytes) -> list[Item]:
        """See :meth:`Decoder.feed`."""
        out: list[Item] = []
        if not data:
            if self._buf or self._skipping:
                self._take(bytes(self._buf), out)
                self._buf.clear()
            return out
        self._buf += data
        start = 0
        while True:
            nl = self._buf.find(b"\n", start)
            if nl < 0:
                break
            self._take(bytes(self._buf[start:nl]), out)
            start = nl + 1
        del self._buf[:start]
        if len(self._buf) > self._max and not self._skipping:
            # Report the over-long line once, now, and drop it up to its newline:
            # its bytes are never held past the limit.
            self._line += 1
            out.append(self._bad(f"line {self._line}: longer than {self._max} bytes"))
            self._skipping = True
            self._buf.clear()
        elif self._skipping:
            self._buf.clear()
        return out

    def _take(self, raw: bytes, out: list[Item]) -> None:
        if self._skipping:
            self._skipping = False
            return
        self._line += 1
        if not raw.strip():
            return
        where = f"line {self._line}"
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            out.append(self._bad(f"{where}: invalid JSON: {exc}"))
            return
        try:
            out.append(Message.from_wire(obj, where=where))
        except MessageFormatError as exc:
            mid = obj.get("id") if isinstance(obj, dict) else None
            out.append(BadInput(mid if isinstance(mid, str) else f"line-{self._line}", str(exc)))

    def _bad(self, reason: str) -> BadInput:
        return BadInput(f"line-{self._line}", reason)


class MsgpackDecoder:
    """A stream of msgpack maps. On undecodable bytes it reports the offset and resyncs.

    Resync skips one byte and tries again: a stream cut in the middle of an object loses
    that object (reported) but the objects after it still decode.
    """

    def __init__(self, max_object: int = MAX_INPUT_BYTES) -> None:
        self._max = max_object
        self._pending = bytearray()  # fed but not yet decoded
        self._base = 0  # stream offset of _pending[0]
        self._count = 0

    def feed(self, data: bytes) -> list[Item]:
        """See :meth:`Decoder.feed`."""
        out: list[Item] = []
        if data:
            self._pending += data
        self._drain(out, eof=not data)
        return out

    def _drain(self, out: list[Item], *, eof: bool) -> None:
        while self._pending:
            unpacker = msgpack.Unpacker(
                raw=False, strict_map_key=False, max_buffer_size=max(self._max, len(self._pending))
            )
            unpacker.feed(bytes(self._pending))
            consumed = 0
            try:
                for obj in unpacker:
                    consumed = unpacker.tell()
                    self._count += 1
                    self._take(obj, self._base + consumed, out)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
                offset = self._base + consumed
                self._count += 1
                out.append(
                    BadInput(f"input-{self._count}", f"msgpack input at byte {offset}: {exc}")
                )
                self._advance(consumed + 1)
                continue
            self._advance(consumed)
            if not self._pending:
                return
            if eof:
                offset = self._base
                self._count += 1
                out.append(
                    BadInput(
                        f"input-{self._count}",
                        f"msgpack input at byte {offset}: truncated object at end of input "
                        f"({len(self._pending)} bytes)",
                    )
                )
                self._advance(len(self._pending))
                return
            if len(self._pending) > self._max:
                self._count += 1
                out.append(
                    BadInput(
                        f"input-{self._count}",
                        f"msgpack input at byte {self._base}: object larger than {self._max} bytes",
                    )
                )
                self._advance(len(self._pending))
            return

    def _advance(self, n: int) -> None:
        del self._pending[:n]
        self._base += n

    def _take(self, obj: Any, end: int, out: list[Item]) -> None:
        where = f"msgpack object {self._count} (ending at byte {end})"
        try:
            out.append(Message.from_wire(obj, where=where))
        except MessageFormatError as exc:
            mid = obj.get("id") if isinstance(obj, dict) else None
            out.append(BadInput(mid if isinstance(mid, str) else f"input-{self._count}", str(exc)))


def make_decoder(fmt: str) -> Decoder:
    """The decoder for ``--format`` (``jsonl`` or ``msgpack``)."""
    return MsgpackDecoder() if fmt == "msgpack" else JsonLinesDecoder()


def _json_default(value: object) -> object:
    # JSON has no bytes: carry them as base64 under a marker key so nothing is lost.
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    return repr(value)


# Made once: ``json.dumps`` with any option builds a new encoder per call.
_encode_json = json.JSONEncoder(separators=(",", ":"), default=_json_default).encode


def encode_json_line(obj: object) -> bytes:
    """One compact JSON line (with its newline)."""
    return _encode_json(obj).encode() + b"\n"


_packer = msgpack.Packer(use_bin_type=True, autoreset=True)


def encode_msgpack(obj: object) -> bytes:
    """One msgpack object."""
    data: bytes = _packer.pack(obj)
    return data
