"""docs/PROTOCOL.md's application-layer vectors match what the code sends, byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

import msgpack
from exec_vectors import (
    VECTOR_ANSWERS,
    VECTOR_CALLS,
    VECTOR_CANCELLED,
    VECTOR_FEATURES,
    VECTOR_INFO,
    conversation,
    hex_lines,
)

from plugin_sdk.app import (
    APP_VERSION,
    CallBatch,
    Cancel,
    Ready,
    check_pong,
    parse_answers,
    parse_handshake,
    parse_request,
)
from plugin_sdk.wire import ChannelRef, RefKind

PROTOCOL = Path(__file__).parent.parent / "docs" / "PROTOCOL.md"
BLOCK = re.compile(r"```app-vector\n(.*?)```", re.S)


def documented() -> dict[str, tuple[str, list[str]]]:
    text = PROTOCOL.read_text()
    start = text.index("## Application layer: plugins")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    vectors = {}
    for block in BLOCK.findall(section):
        fields: dict[str, str] = {}
        hex_rows: list[str] = []
        for line in block.splitlines():
            if line.startswith("     "):
                hex_rows.append(line.strip())
            else:
                key, _, value = line.partition(": ")
                fields[key] = value.strip()
        vectors[fields["name"]] = (fields["sender"], [fields["hex"], *hex_rows])
    return vectors


def test_every_vector_in_the_document_is_the_codes_output_in_order() -> None:
    expected = {name: (sender, hex_lines(data)) for name, (sender, data) in conversation().items()}
    assert list(documented()) == list(expected)
    assert documented() == expected


def _ext(code: int, data: bytes) -> ChannelRef:
    assert code == RefKind.SENDER
    return ChannelRef(RefKind.SENDER, int.from_bytes(data, "big"))


def test_the_documented_bytes_decode_to_the_documented_payloads() -> None:
    frames = {}
    for name, (_sender, rows) in documented().items():
        data = bytes.fromhex("".join(rows).replace(" ", ""))
        assert int.from_bytes(data[:4], "big") == len(data) - 4, name
        frames[name] = msgpack.unpackb(data[4:], ext_hook=_ext, strict_map_key=False)
    assert frames["OPEN control channel"] == [1, 2]
    assert frames["OPEN calls channel"] == [1, 1]
    assert frames["CLOSE pong channel"] == [4, 3]
    code, channel, ready = frames["ready"]
    assert (code, channel) == (2, 2)
    assert parse_handshake(ready) == Ready(VECTOR_INFO, features=VECTOR_FEATURES)
    assert ready["app"] == APP_VERSION == 2
    code, channel, call = frames["call"]
    assert (code, channel) == (2, 1)
    assert parse_request(call, ChannelRef) == CallBatch(VECTOR_CALLS)
    code, channel, replies = frames["replies"]
    assert (code, channel) == (2, 2)  # the answers travel on the control channel
    assert parse_answers(replies) == list(VECTOR_ANSWERS)
    code, channel, ping = frames["ping"]
    assert (code, channel) == (2, 1)
    assert ping["op"] == "ping"
    assert isinstance(ping["reply"], ChannelRef) and ping["reply"].channel == 3
    code, channel, answer = frames["pong"]
    assert (code, channel) == (2, 3)
    check_pong(answer)
    code, channel, call = frames["call 3"]
    assert (code, channel) == (2, 1)
    assert parse_request(call, ChannelRef) == CallBatch((VECTOR_CANCELLED,))
    code, channel, cancel = frames["cancel"]
    assert (code, channel) == (2, 1)  # on the calls channel, after the call it names
    assert parse_request(cancel, ChannelRef) == Cancel((3,))
    code, channel, cancelled = frames["cancelled"]
    assert (code, channel) == (2, 2)
    [(call_id, reply)] = parse_answers(cancelled)
    assert call_id == 3 and reply.verdict == "error" and reply.reason.startswith("cancelled")
