"""The byte-exact vectors of docs/PROTOCOL.md: the encoder makes them, the decoder reads them."""

from __future__ import annotations

import pathlib
import re

import msgpack
from wire_vectors import VECTORS, vector_session

from plugin_sdk.wire import (
    ChannelClosed,
    ChannelOpened,
    ChannelRef,
    ChannelReset,
    CreditGranted,
    DataReceived,
    ErrorCode,
    GoAwayReceived,
    HelloReceived,
    MessageReceived,
    RefKind,
)

PROTOCOL_MD = pathlib.Path(__file__).resolve().parent.parent / "docs" / "PROTOCOL.md"


def _doc_vectors() -> dict[str, str]:
    """Name -> hex of every ```vector block in PROTOCOL.md (hex runs to the block's end)."""
    found: dict[str, str] = {}
    for block in re.findall(r"```vector\n(.*?)```", PROTOCOL_MD.read_text(), flags=re.S):
        name = re.search(r"^name: (.*)$", block, flags=re.M)
        hex_part = block.split("hex:", 1)
        assert name is not None and len(hex_part) == 2, block
        found[name.group(1).strip()] = "".join(hex_part[1].split())
    return found


def test_protocol_md_holds_exactly_the_tested_vectors() -> None:
    assert _doc_vectors() == {v.name: v.hex for v in VECTORS}


def test_encoder_produces_every_vector_byte_for_byte() -> None:
    sent, _ = vector_session()
    assert [s.hex() for s in sent] == [v.hex for v in VECTORS]


def test_every_vector_is_a_length_prefix_and_one_msgpack_value() -> None:
    for v in VECTORS:
        data = v.data
        assert int.from_bytes(data[:4], "big") == len(data) - 4, v.name
        assert msgpack.unpackb(data[4:], raw=False) == v.value, v.name


def test_decoder_turns_every_vector_into_its_event() -> None:
    _, events = vector_session()
    hello_a, hello_b, opened, ping, pong, credit, copy, data, closed, reset, goaway = events
    assert hello_a == [HelloReceived(1, VECTORS[0].value[1])]
    assert hello_b == [HelloReceived(1, VECTORS[1].value[1])]
    assert opened == [ChannelOpened(1)]
    [msg] = ping
    assert isinstance(msg, MessageReceived)
    assert (msg.channel, msg.size, msg.payload["type"]) == (1, 30, "ping")
    reply = msg.payload["reply"]
    assert isinstance(reply, ChannelRef)
    assert (reply.kind, reply.channel) == (RefKind.SENDER, 3)
    assert pong == [MessageReceived(3, {"type": "pong"}, 14)]
    assert credit == [CreditGranted(1, 30)]
    [msg] = copy
    assert isinstance(msg, MessageReceived)
    refs = {k: (v.kind, v.channel) for k, v in msg.payload.items() if isinstance(v, ChannelRef)}
    assert refs == {"events": (RefKind.RECEIVER, 5), "data": (RefKind.STREAM, 7)}
    assert data == [DataReceived(7, b"hello", 10)]
    assert closed == [ChannelClosed(7)]
    assert reset == [ChannelReset(5, ErrorCode.CANCELLED, "no thanks")]
    assert goaway == [GoAwayReceived(ErrorCode.NO_ERROR, "")]
