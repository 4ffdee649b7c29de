"""Channel ids, references, lifecycle, late frames and limits."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_vectors import connected_pair, raw_frame

from plugin_sdk.wire import (
    ChannelClosed,
    ChannelOpened,
    ChannelRef,
    ChannelReset,
    Connection,
    DataReceived,
    ErrorCode,
    LocalProtocolError,
    MessageReceived,
    RefKind,
    RemoteProtocolError,
)


def _ref(kind: int, channel: int) -> msgpack.ExtType:
    return msgpack.ExtType(kind, channel.to_bytes(8, "big"))


def _opened(a: Connection, b: Connection) -> int:
    ch, frame = a.open()
    assert b.receive_data(frame) == [ChannelOpened(ch)]
    return ch


def test_initiator_ids_are_odd_and_responder_ids_even_and_increasing() -> None:
    a, b = connected_pair()
    assert [a.open()[0] for _ in range(3)] == [1, 3, 5]
    assert [b.open()[0] for _ in range(3)] == [2, 4, 6]


@given(st.lists(st.sampled_from(["open", "ref"]), min_size=1, max_size=20))
@settings(max_examples=50)
def test_ids_from_open_and_references_interleave_strictly_increasing(ops: list[str]) -> None:
    a, b = connected_pair()
    first = _opened(a, b)
    seen = [first]
    for op in ops:
        if op == "open":
            ch, frame = a.open()
        else:
            ref = ChannelRef(RefKind.RECEIVER)
            frame = a.send_message(first, [ref])
            assert ref.channel is not None
            ch = ref.channel
        b.receive_data(frame)
        seen.append(ch)
    assert seen == sorted(set(seen))
    assert all(c % 2 == 1 for c in seen)


@pytest.mark.parametrize("channel", [0, 2, 1])
def test_peer_open_with_wrong_parity_or_reused_id_is_a_protocol_error(channel: int) -> None:
    a, b = connected_pair()
    if channel == 1:
        _opened(a, b)
    with pytest.raises(RemoteProtocolError, match=f"channel {channel} is not a new id") as info:
        b.receive_data(raw_frame([1, channel]))
    assert info.value.channel == channel


def test_ids_may_skip_but_never_go_back() -> None:
    _, b = connected_pair()
    assert b.receive_data(raw_frame([1, 9])) == [ChannelOpened(9)]
    with pytest.raises(RemoteProtocolError, match="not a new id"):
        b.receive_data(raw_frame([1, 7]))


def test_frames_on_a_never_opened_channel_name_it() -> None:
    _, b = connected_pair()
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(raw_frame([2, 7, "hi"]))
    assert "(MESSAGE, channel 7): channel 7 was never opened" in str(info.value)
    assert info.value.channel == 7


@pytest.mark.parametrize(
    ("frame", "needle"),
    [
        ([2, 2, "x"], "we write channel 2"),
        ([3, 2, b"x"], "we write channel 2"),
        ([4, 2], "only its writer closes"),
    ],
)
def test_writing_on_a_channel_the_sender_reads_is_a_protocol_error(
    frame: list[Any], needle: str
) -> None:
    a, b = connected_pair()
    _opened(b, a)  # b writes channel 2
    with pytest.raises(RemoteProtocolError, match=needle):
        b.receive_data(raw_frame(frame))


def test_credit_on_a_channel_we_read_is_a_protocol_error() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    with pytest.raises(RemoteProtocolError, match="only its reader grants credit"):
        b.receive_data(raw_frame([6, ch, 10]))


def test_data_on_a_message_channel_and_message_on_a_stream_are_protocol_errors() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    with pytest.raises(RemoteProtocolError, match="DATA is not allowed"):
        b.receive_data(raw_frame([3, ch, b"x"]))
    a, b = connected_pair()
    ch = _opened(a, b)
    b.receive_data(raw_frame([2, ch, {"s": _ref(3, 3)}]))
    with pytest.raises(RemoteProtocolError, match="MESSAGE is not allowed"):
        b.receive_data(raw_frame([2, 3, "text"]))


def test_sender_reference_lets_the_recipient_reply() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    reply = ChannelRef(RefKind.SENDER)
    [request] = b.receive_data(a.send_message(ch, {"reply": reply}))
    assert isinstance(request, MessageReceived)
    got = request.payload["reply"]
    assert (got.kind, got.channel) == (RefKind.SENDER, reply.channel)
    assert b.is_writer(got.channel) and not a.is_writer(got.channel)
    assert a.receive_data(b.send_message(got.channel, "pong")) == [
        MessageReceived(got.channel, "pong", 8)
    ]
    assert a.receive_data(b.close(got.channel)) == [ChannelClosed(got.channel)]
    assert a.open_channels == b.open_channels == 1


def test_receiver_reference_lets_the_author_keep_writing() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    events = ChannelRef(RefKind.RECEIVER)
    b.receive_data(a.send_message(ch, {"events": events}))
    assert events.channel is not None
    assert a.is_writer(events.channel) and not b.is_writer(events.channel)
    [event] = b.receive_data(a.send_message(events.channel, {"n": 1}))
    assert isinstance(event, MessageReceived) and event.payload == {"n": 1}


def test_stream_reference_carries_bytes() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    out = ChannelRef(RefKind.STREAM)
    b.receive_data(a.send_message(ch, [out]))
    assert out.channel is not None
    assert a.is_stream(out.channel) and b.is_stream(out.channel)
    [event] = b.receive_data(a.send_data(out.channel, b"\x00\x01"))
    assert event == DataReceived(out.channel, b"\x00\x01", 7)
    with pytest.raises(LocalProtocolError, match="byte stream"):
        a.send_message(out.channel, "no")
    with pytest.raises(LocalProtocolError, match="message channel"):
        a.send_data(ch, b"no")


def test_on_bound_is_called_with_the_new_id_and_a_ref_can_be_sent_once() -> None:
    bound: list[int] = []

    class LiveRef(ChannelRef):
        def _on_bound(self, channel: int) -> None:
            bound.append(channel)

    a, b = connected_pair()
    ch = _opened(a, b)
    ref = LiveRef(RefKind.SENDER)
    a.send_message(ch, [ref])
    assert bound == [3] and ref.channel == 3
    with pytest.raises(LocalProtocolError, match="sent once"):
        a.send_message(ch, [ref])
    twice = ChannelRef(RefKind.SENDER)
    with pytest.raises(LocalProtocolError, match="sent once"):
        a.send_message(ch, [twice, twice])
    assert twice.channel is None


def test_ref_factory_builds_received_references_after_registering_them() -> None:
    made: list[tuple[RefKind, int, bool]] = []
    b_box: list[Connection] = []

    def factory(kind: RefKind, channel: int) -> tuple[str, int]:
        made.append((kind, channel, b_box[0].is_open(channel)))
        return ("live", channel)

    a, b = connected_pair(b_kwargs={"ref_factory": factory})
    b_box.append(b)
    ch = _opened(a, b)
    [event] = b.receive_data(a.send_message(ch, [ChannelRef(RefKind.RECEIVER)]))
    assert isinstance(event, MessageReceived)
    assert event.payload == [("live", 3)]
    assert made == [(RefKind.RECEIVER, 3, True)]


def test_a_failed_send_message_leaves_no_trace() -> None:
    a, b = connected_pair(b_kwargs={"max_frame": 4096})
    ch = _opened(a, b)
    refs = [ChannelRef(RefKind.SENDER), ChannelRef(RefKind.STREAM)]
    with pytest.raises(LocalProtocolError, match="max_frame"):
        a.send_message(ch, [*refs, "x" * 5000])
    assert [r.channel for r in refs] == [None, None]
    assert a.open_channels == 1
    credit = a.credit(ch)
    with pytest.raises(LocalProtocolError, match="cannot be encoded"):
        a.send_message(ch, [ChannelRef(RefKind.SENDER), object()])
    assert a.credit(ch) == credit
    # the next id is still 3: nothing was consumed
    ref = ChannelRef(RefKind.SENDER)
    b.receive_data(a.send_message(ch, [ref]))
    assert ref.channel == 3


@pytest.mark.parametrize(
    ("ext", "needle"),
    [
        (_ref(1, 4), "not a new id"),  # wrong parity: the author is the initiator
        (_ref(1, 1), "not a new id"),  # the channel carrying it
        (msgpack.ExtType(1, b"\x00" * 7), "8 bytes"),
        (msgpack.ExtType(9, b"x"), "unknown msgpack ext type 9"),
    ],
)
def test_bad_received_references_are_protocol_errors(ext: msgpack.ExtType, needle: str) -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    with pytest.raises(RemoteProtocolError, match=needle):
        b.receive_data(raw_frame([2, ch, [ext]]))


def test_writer_close_ends_the_channel_on_both_sides() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    assert b.receive_data(a.close(ch)) == [ChannelClosed(ch)]
    assert not a.is_open(ch) and not b.is_open(ch)
    assert a.close(ch) == b""  # closing twice is harmless
    with pytest.raises(LocalProtocolError, match="has ended"):
        a.send_message(ch, "late")
    second = _opened(a, b)
    with pytest.raises(LocalProtocolError, match="only its writer closes"):
        b.close(second)


def test_reader_reset_ends_the_channel_and_late_frames_are_ignored() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    in_flight = a.send_message(ch, "crossing the reset")
    reset = b.reset(ch, ErrorCode.CANCELLED, "not interested")
    assert b.receive_data(in_flight) == []
    assert b.receive_data(a.close(ch)) == []
    assert a.receive_data(reset) == []  # a already closed: ignored
    assert b.reset(ch, ErrorCode.CANCELLED, "again") == b""
    assert a.open_channels == b.open_channels == 0


def test_reset_is_delivered_to_the_writer() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    assert a.receive_data(b.reset(ch, ErrorCode.APPLICATION_ERROR, "boom")) == [
        ChannelReset(ch, ErrorCode.APPLICATION_ERROR, "boom")
    ]
    with pytest.raises(LocalProtocolError):
        a.send_message(ch, "x")


def test_credit_after_close_is_ignored() -> None:
    a, b = connected_pair(b_kwargs={"window": 2})
    ch = _opened(a, b)
    [msg] = b.receive_data(a.send_message(ch, "x"))
    assert isinstance(msg, MessageReceived)
    credit = b.acknowledge(ch, msg.size)
    a.close(ch)
    assert a.receive_data(credit) == []


def test_late_reference_in_a_dropped_message_is_reset_back_to_its_author() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    reply = ChannelRef(RefKind.SENDER)
    in_flight = a.send_message(ch, {"reply": reply})
    b.reset(ch, ErrorCode.CANCELLED, "gone")
    assert b.receive_data(in_flight) == []
    out = b.data_to_send()
    assert out
    assert b.data_to_send() == b""
    events = a.receive_data(out)
    assert events == [ChannelReset(3, ErrorCode.CANCELLED, "referenced by a dropped message")]
    # the id counts as used: a frame for it is a late frame, not a never-opened one
    assert b.receive_data(raw_frame([4, 3])) == []


def test_orphan_resets_ride_along_with_the_next_send() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    in_flight = a.send_message(ch, [ChannelRef(RefKind.STREAM)])
    b.reset(ch, ErrorCode.CANCELLED, "gone")
    b.receive_data(in_flight)
    _, frame = b.open()
    events = a.receive_data(frame)
    assert [type(e).__name__ for e in events] == ["ChannelReset", "ChannelOpened"]


def test_peer_exceeding_our_max_channels_is_limit_exceeded() -> None:
    a, b = connected_pair(b_kwargs={"max_channels": 2})
    _opened(a, b)
    _opened(a, b)
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(raw_frame([1, 5]))
    assert info.value.code is ErrorCode.LIMIT_EXCEEDED


def test_exceeding_the_peers_max_channels_is_refused_locally_and_frees_on_close() -> None:
    a, b = connected_pair(b_kwargs={"max_channels": 2})
    first = _opened(a, b)
    _opened(a, b)
    with pytest.raises(LocalProtocolError, match="max_channels"):
        a.open()
    with pytest.raises(LocalProtocolError, match="max_channels"):
        a.send_message(first, [ChannelRef(RefKind.SENDER)])
    b.receive_data(a.close(first))
    _opened(a, b)


def test_channels_created_by_us_do_not_count_against_our_own_limit() -> None:
    a, b = connected_pair(b_kwargs={"max_channels": 1})
    for _ in range(3):
        _opened(b, a)
    _opened(a, b)


def test_local_misuse_raises_local_protocol_error() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    with pytest.raises(LocalProtocolError, match="never opened"):
        a.send_message(99, "x")
    with pytest.raises(LocalProtocolError, match="we read channel"):
        b.send_message(ch, "x")
    with pytest.raises(LocalProtocolError, match="only its reader acknowledges"):
        a.acknowledge(ch, 1)
    with pytest.raises(LocalProtocolError, match="never opened"):
        a.reset(99, ErrorCode.CANCELLED, "")
    with pytest.raises(LocalProtocolError, match="unknown error code"):
        a.reset(ch, 99, "")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="needs bytes"):
        ref = ChannelRef(RefKind.STREAM)
        b.receive_data(a.send_message(ch, [ref]))
        assert ref.channel is not None
        a.send_data(ref.channel, "text")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="has ended"):
        b.receive_data(a.close(ch))
        a.is_writer(ch)


def test_message_size_is_the_frame_body_length() -> None:
    a, b = connected_pair()
    ch = _opened(a, b)
    frame = a.send_message(ch, {"a": [1, 2.5, None, b"x"]})
    assert b.receive_data(frame) == [
        MessageReceived(ch, {"a": [1, 2.5, None, b"x"]}, len(frame) - 4)
    ]
