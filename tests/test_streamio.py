"""routerd's stdin decoders: chunking never changes what is decoded; bad input never stops it."""

from __future__ import annotations

import json

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message
from router.cli.streamio import (
    BadInput,
    Item,
    JsonLinesDecoder,
    MsgpackDecoder,
    encode_json_line,
)


def _decode_chunks(
    decoder: JsonLinesDecoder | MsgpackDecoder, data: bytes, cuts: list[int]
) -> list[Item]:
    out: list[Item] = []
    prev = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        out += decoder.feed(data[prev:cut]) if cut > prev else []
        prev = max(prev, cut)
    out += decoder.feed(data[prev:])
    out += decoder.feed(b"")
    return out


def _summary(items: list[Item]) -> list[tuple[str, object]]:
    return [
        ("bad", i.reason) if isinstance(i, BadInput) else ("msg", (i.type, i.body, i.id))
        for i in items
    ]


bodies = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=10,
)
messages = st.builds(
    lambda t, b, i: {"type": t, "body": b, "id": f"m{i}"},
    st.sampled_from(["container.create", "a.b", "x"]),
    bodies,
    st.integers(0, 10**6),
)
lines = st.one_of(
    messages.map(lambda m: json.dumps(m).encode()),
    st.sampled_from([b"{not json", b"[1, 2]", b'{"body": 1}', b'{"type": ""}', b"   "]),
)


@settings(max_examples=150)
@given(st.lists(lines, max_size=12), st.lists(st.integers(0, 10_000), max_size=8))
def test_jsonl_any_chunking_decodes_the_same(raw_lines: list[bytes], cuts: list[int]) -> None:
    data = b"\n".join(raw_lines) + b"\n"
    whole = _decode_chunks(JsonLinesDecoder(), data, [])
    chunked = _decode_chunks(JsonLinesDecoder(), data, cuts)
    assert _summary(whole) == _summary(chunked)
    # One item per non-blank line: nothing is lost, bad lines included.
    assert len(whole) == sum(1 for line in raw_lines if line.strip())


def test_jsonl_bad_line_names_the_line_and_the_stream_goes_on() -> None:
    data = b'{"type": "a", "id": "1"}\n{oops\n\n{"type": "b"}\n{"body": 3, "id": "x"}'
    dec = JsonLinesDecoder()
    items = dec.feed(data) + dec.feed(b"")
    assert isinstance(items[0], Message) and items[0].id == "1"
    assert isinstance(items[1], BadInput)
    assert items[1].reason.startswith("line 2: invalid JSON")
    assert isinstance(items[2], Message) and items[2].type == "b"
    assert isinstance(items[3], BadInput)
    assert items[3].id == "x" and "line 5" in items[3].reason and "'type'" in items[3].reason


def test_jsonl_over_long_line_is_reported_once_and_never_buffered() -> None:
    dec = JsonLinesDecoder(max_line=100)
    out = dec.feed(b'{"type": "a"}\n' + b"x" * 150)
    out += dec.feed(b"y" * 500)
    assert len(dec._buf) == 0
    out += dec.feed(b'z\n{"type": "b"}\n') + dec.feed(b"")
    assert [type(i).__name__ for i in out] == ["Message", "BadInput", "Message"]
    assert isinstance(out[1], BadInput) and "line 2: longer than 100 bytes" in out[1].reason


@settings(max_examples=150)
@given(st.lists(messages, max_size=10), st.lists(st.integers(0, 10_000), max_size=8))
def test_msgpack_any_chunking_decodes_the_same(
    msgs: list[dict[str, object]], cuts: list[int]
) -> None:
    data = b"".join(msgpack.packb(m) for m in msgs)
    whole = _decode_chunks(MsgpackDecoder(), data, [])
    chunked = _decode_chunks(MsgpackDecoder(), data, cuts)
    assert _summary(whole) == _summary(chunked)
    assert [i.id for i in whole if isinstance(i, Message)] == [m["id"] for m in msgs]


@settings(max_examples=150)
@given(st.binary(max_size=200), st.lists(st.integers(0, 10_000), max_size=5))
def test_msgpack_garbage_only_yields_bad_inputs_or_messages(junk: bytes, cuts: list[int]) -> None:
    good = msgpack.packb({"type": "after", "id": "z"})
    items = _decode_chunks(MsgpackDecoder(), junk, cuts)
    assert all(isinstance(i, Message | BadInput) for i in items)
    dec = MsgpackDecoder()
    dec.feed(junk)
    items = dec.feed(b"") + dec.feed(good) + dec.feed(b"")
    assert isinstance(items[-1], Message) and items[-1].id == "z"


def test_msgpack_undecodable_byte_is_reported_with_its_offset() -> None:
    good = msgpack.packb({"type": "a", "id": "1"})
    dec = MsgpackDecoder()
    items = dec.feed(good + b"\xc1" + good) + dec.feed(b"")
    assert isinstance(items[1], BadInput)
    assert f"at byte {len(good)}" in items[1].reason
    assert [i.id for i in items if isinstance(i, Message)] == ["1", "1"]


def test_msgpack_truncated_object_at_eof_is_reported() -> None:
    data = msgpack.packb({"type": "a", "id": "1", "body": "x" * 50})
    dec = MsgpackDecoder()
    items = dec.feed(data[:-5]) + dec.feed(b"")
    assert len(items) == 1 and isinstance(items[0], BadInput)
    assert "truncated" in items[0].reason


def test_json_output_carries_bytes_as_base64() -> None:
    line = encode_json_line({"body": b"\x00\xff"})
    assert json.loads(line) == {"body": {"$base64": "AP8="}}
