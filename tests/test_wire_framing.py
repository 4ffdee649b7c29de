"""Framing: length prefix, chunking, limits, EOF; bad bytes only raise RemoteProtocolError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_vectors import (
    VECTORS,
    connected_pair,
    feed_chunks,
    raw_body_frame,
    raw_frame,
    split_at,
)

from plugin_sdk.wire import (
    HELLO_MAX_FRAME,
    ChannelRef,
    Connection,
    ErrorCode,
    LocalProtocolError,
    MessageReceived,
    RefKind,
    RemoteProtocolError,
    Role,
    SessionEnded,
)


def _initiator_stream() -> bytes:
    """Everything the initiator sends in the vector session (a valid stream for a responder)."""
    return b"".join(v.data for v in VECTORS if v.sender is Role.INITIATOR)


def _fresh_responder() -> Connection:
    # A big window: this responder never acknowledges, unlike the one in the vector session.
    b = Connection(Role.RESPONDER)
    b.hello()
    return b


def _events_repr(data_chunks: list[bytes]) -> str:
    # ChannelRef compares by identity, so compare the repr of the events.
    return repr(feed_chunks(_fresh_responder(), data_chunks))


STREAM = _initiator_stream()
WHOLE = _events_repr([STREAM])


def test_whole_stream_yields_every_initiator_frame_as_an_event() -> None:
    assert WHOLE.count("(") > 7
    assert "DataReceived(channel=7, data=b'hello', size=10)" in WHOLE


def test_one_byte_at_a_time_yields_the_same_events() -> None:
    assert _events_repr([STREAM[i : i + 1] for i in range(len(STREAM))]) == WHOLE


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
@settings(max_examples=150)
def test_any_chunking_yields_the_same_events(cuts: list[int]) -> None:
    assert _events_repr(split_at(STREAM, cuts)) == WHOLE


def test_clean_eof_at_a_frame_boundary_ends_the_session() -> None:
    b = _fresh_responder()
    b.receive_data(VECTORS[0].data)
    assert b.receive_data(b"") == [SessionEnded()]
    assert b.receive_data(b"") == []
    with pytest.raises(LocalProtocolError, match="after EOF"):
        b.receive_data(b"x")


@pytest.mark.parametrize("keep", [1, 3, 4, 5, 20])
def test_eof_mid_frame_is_truncated_and_says_where(keep: int) -> None:
    b = _fresh_responder()
    hello = VECTORS[0].data
    b.receive_data(hello)
    b.receive_data(VECTORS[2].data[:keep] if keep < 7 else VECTORS[3].data[:keep])
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(b"")
    err = info.value
    assert err.code is ErrorCode.TRUNCATED
    assert err.offset == len(hello)
    assert f"at byte {len(hello)}" in str(err)
    if keep >= 4:
        assert f"EOF after {keep - 4} of " in str(err)


def test_huge_announced_length_is_refused_after_four_bytes_without_buffering() -> None:
    _a, b = connected_pair()
    b.receive_data(b"\xff\xff")
    assert len(b._buf) == 2
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(b"\xff\xff" + b"x" * 1000)
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE
    assert len(b._buf) == 0


@given(
    size=st.integers(min_value=(1 << 20) + 1, max_value=(1 << 32) - 1),
    junk=st.binary(max_size=64),
)
@settings(max_examples=100)
def test_any_length_above_max_frame_is_refused_at_once(size: int, junk: bytes) -> None:
    _, b = connected_pair()
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(size.to_bytes(4, "big") + junk)
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE
    assert info.value.offset == len(VECTORS[0].data)
    assert len(b._buf) == 0


def test_before_hello_the_limit_is_65536_whatever_max_frame_says() -> None:
    b = Connection(Role.RESPONDER, max_frame=1 << 24)
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data((HELLO_MAX_FRAME + 1).to_bytes(4, "big"))
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE
    # exactly 65536 is allowed: it waits for the body
    c = Connection(Role.RESPONDER)
    assert c.receive_data(HELLO_MAX_FRAME.to_bytes(4, "big")) == []


def test_after_hello_our_max_frame_applies() -> None:
    _, b = connected_pair(b_kwargs={"max_frame": 4096})
    assert b.receive_data((4096).to_bytes(4, "big")) == []
    _, b = connected_pair(b_kwargs={"max_frame": 4096})
    with pytest.raises(RemoteProtocolError, match="exceeds the limit"):
        b.receive_data((4097).to_bytes(4, "big"))


def test_after_a_remote_error_every_call_raises_the_same_error() -> None:
    _, b = connected_pair()
    bad = raw_frame([99])
    with pytest.raises(RemoteProtocolError) as first:
        b.receive_data(bad)
    with pytest.raises(RemoteProtocolError) as again:
        b.receive_data(raw_frame([4, 1]))
    assert again.value is first.value
    with pytest.raises(RemoteProtocolError):
        b.receive_data(b"")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "not a msgpack array"),
        (b"\x91", "frame type"),
        (b"\x93\x02", "channel id must be an integer"),
        (msgpack.packb(5), "not a msgpack array"),
        (msgpack.packb([]), "frame type"),
        (msgpack.packb(["x"]), "frame type"),
        (msgpack.packb([99, 1]), "unknown frame type 99"),
        (msgpack.packb([4, 1]) + b"\xc0", "malformed msgpack"),
        (b"\x92\x04", "malformed msgpack"),
        (b"\x92\x04\xc1", "malformed msgpack"),
        (msgpack.packb([4, "one"]), "channel id must be an integer"),
        (msgpack.packb([4, 1, 2]), "expected 2 elements"),
    ],
)
def test_malformed_bodies_are_protocol_errors_that_say_what(body: bytes, needle: str) -> None:
    _, b = connected_pair()
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(raw_body_frame(body))
    assert info.value.code is ErrorCode.PROTOCOL_ERROR
    assert needle in str(info.value)
    assert info.value.offset == len(VECTORS[0].data)


def test_non_shortest_integer_encodings_are_accepted() -> None:
    _a, b = connected_pair()
    # array16 header, int64 frame type, uint32 channel id
    body = b"\xdc\x00\x02" + b"\xd3" + (1).to_bytes(8, "big") + b"\xce" + (1).to_bytes(4, "big")
    assert repr(b.receive_data(raw_body_frame(body))) == "[ChannelOpened(channel=1)]"
    body = b"\x93\xcc\x02\xcf" + (1).to_bytes(8, "big") + msgpack.packb({"k": [1, 2]})
    [event] = b.receive_data(raw_body_frame(body))
    assert event == MessageReceived(1, {"k": [1, 2]}, len(body))


def _nested(levels: int) -> object:
    value: object = 0
    for _ in range(levels):
        value = [value]
    return value


def test_payload_at_max_depth_passes_and_one_deeper_is_limit_exceeded() -> None:
    a, b = connected_pair()
    ch, opened = a.open()
    b.receive_data(opened)
    [ok] = b.receive_data(raw_frame([2, ch, _nested(32)]))
    assert isinstance(ok, MessageReceived)
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(raw_frame([2, ch, _nested(33)]))
    assert info.value.code is ErrorCode.LIMIT_EXCEEDED


def test_nesting_beyond_msgpacks_own_stack_is_limit_exceeded() -> None:
    a, b = connected_pair(b_kwargs={"max_depth": 512})
    _ch, opened = a.open()
    b.receive_data(opened)
    body = b"\x93\x02\x01" + b"\x91" * 5000 + b"\xc0"
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(raw_body_frame(body))
    assert info.value.code is ErrorCode.LIMIT_EXCEEDED


def test_sending_a_payload_deeper_than_the_peer_accepts_is_refused_locally() -> None:
    a, _ = connected_pair(b_kwargs={"max_depth": 4})
    ch, _ = a.open()
    a.send_message(ch, _nested(4))
    with pytest.raises(LocalProtocolError, match="max_depth"):
        a.send_message(ch, _nested(5))


def test_a_depth_the_sender_states_is_checked_instead_of_walking_the_payload() -> None:
    a, _ = connected_pair(b_kwargs={"max_depth": 4})
    ch, _ = a.open()
    a.send_message(ch, _nested(4), depth=4)
    with pytest.raises(LocalProtocolError, match="max_depth"):
        a.send_message(ch, [1], depth=5)  # taken at its word: not walked
    with pytest.raises(LocalProtocolError, match="max_depth"):
        a.send_message(ch, _nested(5), depth=None)  # not stated: walked


def _drive(conn: Connection, chunks: list[bytes]) -> None:
    """Feed chunks then EOF; anything but RemoteProtocolError propagates and fails the test."""
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
        conn.receive_data(b"")
    except RemoteProtocolError:
        pass


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=8))
@settings(max_examples=200)
def test_random_bytes_only_ever_raise_remote_protocol_error(data: bytes, cuts: list[int]) -> None:
    _drive(_fresh_responder(), split_at(data, cuts))


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_random_bytes_after_a_valid_hello_only_raise_remote_protocol_error(data: bytes) -> None:
    _, b = connected_pair()
    _drive(b, [data])


@given(st.data())
@settings(max_examples=200)
def test_mutated_valid_streams_only_raise_remote_protocol_error(data: st.DataObject) -> None:
    stream = bytearray(STREAM)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        pos = data.draw(st.integers(min_value=0, max_value=len(stream) - 1))
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        byte = data.draw(st.integers(min_value=0, max_value=255))
        if op == "flip":
            stream[pos] = byte
        elif op == "insert":
            stream.insert(pos, byte)
        elif len(stream) > 1:
            del stream[pos]
    _drive(_fresh_responder(), [bytes(stream)])


@given(st.data())
@settings(max_examples=100)
def test_random_frames_with_valid_framing_only_raise_remote_protocol_error(
    data: st.DataObject,
) -> None:
    _, b = connected_pair()
    element = st.one_of(
        st.integers(min_value=-2, max_value=10),
        st.text(max_size=4),
        st.binary(max_size=4),
        st.none(),
        st.builds(
            lambda k, c: msgpack.ExtType(k, c.to_bytes(8, "big")),
            st.integers(min_value=0, max_value=4),
            st.integers(min_value=0, max_value=12),
        ),
        st.dictionaries(st.text(max_size=3), st.integers(-5, 5), max_size=3),
    )
    frames = data.draw(
        st.lists(
            st.builds(
                lambda code, rest: [code, *rest],
                st.integers(min_value=0, max_value=8),
                st.lists(element, max_size=4),
            ),
            max_size=12,
        )
    )
    _drive(b, [raw_frame(f) for f in frames])


def test_a_reference_is_refused_outside_a_message_payload() -> None:
    _, b = connected_pair()
    frame = raw_frame([4, msgpack.ExtType(1, (1).to_bytes(8, "big"))])
    with pytest.raises(RemoteProtocolError, match="only allowed in MESSAGE"):
        b.receive_data(frame)


def test_ref_objects_cannot_be_smuggled_into_control_frames_locally() -> None:
    with pytest.raises(LocalProtocolError, match="only appear in message payloads"):
        Connection(Role.INITIATOR, hello_fields={"x": ChannelRef(RefKind.SENDER)}).hello()
