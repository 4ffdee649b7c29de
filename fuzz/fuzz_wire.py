"""Coverage-guided fuzzing of the wire decoder with atheris: ``Connection.receive_data``.

The property: whatever bytes a peer sends, in whatever chunks, the sans-IO connection
either returns events or raises :class:`~plugin_sdk.wire.RemoteProtocolError`; any
other exception is a bug (h11's rule). Once it has raised, every later call raises the
same error. Run it as described in fuzz/README.md; without atheris installed the module
still imports, and :func:`one_input` can be called directly (tests/test_reliability_fuzz.py
does, so the harness cannot rot).

The first input byte steers the run: bit 0 picks our role, bit 1 puts a valid peer
HELLO in front (so the fuzzer spends its time past the handshake), bits 2-7 give the
chunk size (0: everything at once).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from plugin_sdk.wire import (
    ChannelRef,
    Connection,
    DataReceived,
    ErrorCode,
    Event,
    MessageReceived,
    RefKind,
    RemoteProtocolError,
    Role,
)

__all__ = ["main", "one_input", "seed_corpus"]

_OTHER = {Role.INITIATOR: Role.RESPONDER, Role.RESPONDER: Role.INITIATOR}


def _react(conn: Connection, events: list[Event]) -> None:
    """Do what an application would: consume what arrived (which returns credit)."""
    for event in events:
        if isinstance(event, MessageReceived | DataReceived):
            conn.acknowledge(event.channel, event.size)


def one_input(data: bytes) -> None:
    """Feed ``data`` (steered by its first byte) to a fresh connection; check the contract."""
    if not data:
        return
    flags, stream = data[0], data[1:]
    role = Role.INITIATOR if flags & 1 else Role.RESPONDER
    if flags & 2:
        stream = Connection(_OTHER[role]).hello() + stream
    step = (flags >> 2) or max(len(stream), 1)
    conn = Connection(role)
    conn.hello()
    try:
        for start in range(0, len(stream), step):
            _react(conn, conn.receive_data(stream[start : start + step]))
        _react(conn, conn.receive_data(b""))
    except RemoteProtocolError as first:
        # A dead connection stays dead, with the same error.
        try:
            conn.receive_data(b"x")
        except RemoteProtocolError as again:
            if again is not first:
                raise AssertionError("a dead connection raised a different error") from again
        else:
            raise AssertionError("a dead connection accepted more data") from first


def _session_bytes(role: Role) -> Iterator[bytes]:
    """What a well-behaved peer of ``role`` sends: every frame type once."""
    peer, me = Connection(_OTHER[role]), Connection(role)
    yield peer.hello()
    peer.receive_data(me.hello())
    channel, opened = peer.open()
    yield opened
    reply = ChannelRef(RefKind.SENDER)
    yield peer.send_message(channel, {"op": "call", "message": {"type": "t"}, "reply": reply})
    stream = ChannelRef(RefKind.STREAM)
    yield peer.send_message(channel, {"log": stream, "nested": [[{"k": b"v"}]]})
    assert stream.channel is not None
    yield peer.send_data(stream.channel, b"hello")
    yield peer.close(stream.channel)
    assert reply.channel is not None
    yield peer.reset(reply.channel, ErrorCode.CANCELLED, "not wanted")
    yield peer.goaway()


def seed_corpus() -> list[bytes]:
    """Starting inputs: whole valid sessions for each role and a few chunkings."""
    seeds: list[bytes] = []
    for role, bit in ((Role.RESPONDER, 0), (Role.INITIATOR, 1)):
        session = b"".join(_session_bytes(role))
        seeds += [bytes([bit]) + session, bytes([bit | (1 << 2)]) + session]
        # With bit 1 the harness adds the HELLO itself: the rest of the session follows.
        hello_len = 4 + int.from_bytes(session[:4], "big")
        seeds.append(bytes([bit | 2 | (7 << 2)]) + session[hello_len:])
    return seeds


def main(argv: list[str]) -> None:
    """Run atheris (``python fuzz/fuzz_wire.py [CORPUS_DIR] [libFuzzer flags]``)."""
    import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

    corpus = [a for a in argv[1:] if not a.startswith("-")]
    if corpus:
        from pathlib import Path

        directory = Path(corpus[0])
        directory.mkdir(parents=True, exist_ok=True)
        if not any(directory.iterdir()):
            for i, seed in enumerate(seed_corpus()):
                (directory / f"seed-{i}").write_bytes(seed)
    atheris.instrument_all()
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
