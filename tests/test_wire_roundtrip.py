"""Every frame type survives encode -> bytes -> decode with arbitrary contents."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from wire_vectors import connected_pair, depth, msgpack_values

from plugin_sdk.wire import (
    ChannelClosed,
    ChannelOpened,
    ChannelRef,
    ChannelReset,
    CreditGranted,
    DataReceived,
    ErrorCode,
    GoAwayReceived,
    MessageReceived,
    RefKind,
)


@given(payload=msgpack_values)
@settings(max_examples=200)
def test_any_msgpack_payload_round_trips(payload: Any) -> None:
    assume(depth(payload) <= 32)
    a, b = connected_pair()
    ch, opened = a.open()
    assert b.receive_data(opened) == [ChannelOpened(ch)]
    frame = a.send_message(ch, payload)
    assert b.receive_data(frame) == [MessageReceived(ch, payload, len(frame) - 4)]


@given(
    payload=msgpack_values,
    kinds=st.lists(st.sampled_from(list(RefKind)), min_size=1, max_size=4),
)
@settings(max_examples=100)
def test_references_anywhere_in_a_payload_round_trip(payload: Any, kinds: list[RefKind]) -> None:
    assume(depth(payload) <= 30)
    a, b = connected_pair()
    ch, opened = a.open()
    b.receive_data(opened)
    refs = [ChannelRef(k) for k in kinds]
    [event] = b.receive_data(a.send_message(ch, {"payload": payload, "refs": refs}))
    assert isinstance(event, MessageReceived)
    assert event.payload["payload"] == payload
    got = [(r.kind, r.channel) for r in event.payload["refs"]]
    assert got == [(r.kind, r.channel) for r in refs]
    for r in refs:
        assert r.channel is not None
        assert a.is_writer(r.channel) == (r.kind is not RefKind.SENDER)
        assert b.is_writer(r.channel) == (r.kind is RefKind.SENDER)
        assert a.is_stream(r.channel) == b.is_stream(r.channel) == (r.kind is RefKind.STREAM)


@given(data=st.binary(max_size=5000))
@settings(max_examples=100)
def test_any_bytes_round_trip_on_a_stream(data: bytes) -> None:
    a, b = connected_pair()
    ch, opened = a.open()
    b.receive_data(opened)
    out = ChannelRef(RefKind.STREAM)
    b.receive_data(a.send_message(ch, out))
    assert out.channel is not None
    frame = a.send_data(out.channel, data)
    assert b.receive_data(frame) == [DataReceived(out.channel, data, len(frame) - 4)]


@given(code=st.sampled_from(list(ErrorCode)), reason=st.text(max_size=300), by_reader=st.booleans())
@settings(max_examples=100)
def test_reset_round_trips_from_either_side(code: ErrorCode, reason: str, by_reader: bool) -> None:
    a, b = connected_pair()
    ch, opened = a.open()
    b.receive_data(opened)
    if by_reader:
        assert a.receive_data(b.reset(ch, code, reason)) == [ChannelReset(ch, code, reason)]
    else:
        assert b.receive_data(a.reset(ch, code, reason)) == [ChannelReset(ch, code, reason)]
    assert a.open_channels == b.open_channels == 0


@given(code=st.sampled_from(list(ErrorCode)), reason=st.text(max_size=300))
@settings(max_examples=100)
def test_goaway_round_trips(code: ErrorCode, reason: str) -> None:
    a, b = connected_pair()
    assert b.receive_data(a.goaway(code, reason)) == [GoAwayReceived(code, reason)]


@given(sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=10))
@settings(max_examples=100)
def test_credit_and_close_round_trip(sizes: list[int]) -> None:
    a, b = connected_pair(b_kwargs={"window": 1})
    ch, opened = a.open()
    b.receive_data(opened)
    for n in sizes:
        [event] = b.receive_data(a.send_message(ch, b"x" * n))
        assert isinstance(event, MessageReceived)
        assert a.receive_data(b.acknowledge(ch, event.size)) == [CreditGranted(ch, event.size)]
        assert a.credit(ch) == 1
    assert b.receive_data(a.close(ch)) == [ChannelClosed(ch)]
