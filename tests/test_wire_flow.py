"""Per-channel byte credit: accounting, batching of CREDIT, and FLOW_CONTROL."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_vectors import connected_pair, deliver, raw_frame

from plugin_sdk.wire import (
    ChannelRef,
    Connection,
    CreditGranted,
    DataReceived,
    ErrorCode,
    LocalProtocolError,
    MessageReceived,
    RefKind,
    RemoteProtocolError,
)


def _pair(window: int) -> tuple[Connection, Connection, int]:
    a, b = connected_pair(b_kwargs={"window": window})
    ch, frame = a.open()
    b.receive_data(frame)
    return a, b, ch


def test_writer_starts_with_the_readers_window_and_pays_the_body_length() -> None:
    a, _b, ch = _pair(1000)
    assert a.credit(ch) == 1000
    frame = a.send_message(ch, "x" * 50)
    assert a.credit(ch) == 1000 - (len(frame) - 4)


def test_credit_may_go_negative_by_one_frame_then_sending_stops() -> None:
    a, _b, ch = _pair(16)
    a.send_message(ch, "a message much larger than the window")
    assert a.credit(ch) < 0
    with pytest.raises(LocalProtocolError, match="no send credit"):
        a.send_message(ch, "more")


def test_a_slow_channel_does_not_block_another() -> None:
    a, b, ch = _pair(16)
    other, frame = a.open()
    b.receive_data(frame)
    a.send_message(ch, "x" * 40)
    with pytest.raises(LocalProtocolError):
        a.send_message(ch, "y")
    b.receive_data(a.send_message(other, "fine"))


def test_acknowledge_batches_credit_until_half_the_window() -> None:
    a, b, ch = _pair(100)
    received = []
    for _ in range(6):
        [event] = b.receive_data(a.send_message(ch, "0123456789"))  # 14-byte bodies
        assert isinstance(event, MessageReceived)
        received.append(event.size)
    assert received == [14] * 6
    assert b.acknowledge(ch, 14) == b""
    assert b.acknowledge(ch, 14) == b""
    assert b.acknowledge(ch, 14) == b""
    credit = b.acknowledge(ch, 14)  # 56 >= 50
    assert credit
    before = a.credit(ch)
    assert a.receive_data(credit) == [CreditGranted(ch, 56)]
    assert a.credit(ch) == before + 56


def test_acknowledging_more_than_was_received_is_a_local_error() -> None:
    a, b, ch = _pair(100)
    [event] = b.receive_data(a.send_message(ch, "hi"))
    assert isinstance(event, MessageReceived)
    with pytest.raises(LocalProtocolError, match="unacknowledged"):
        b.acknowledge(ch, event.size + 1)
    with pytest.raises(LocalProtocolError):
        b.acknowledge(ch, -1)


def test_acknowledge_after_the_channel_ended_is_a_no_op() -> None:
    a, b, ch = _pair(10)
    [event] = b.receive_data(a.send_message(ch, "hi"))
    assert isinstance(event, MessageReceived)
    b.receive_data(a.close(ch))
    assert b.acknowledge(ch, event.size) == b""


def test_a_peer_sending_without_credit_is_flow_control() -> None:
    _a, b, ch = _pair(16)
    b.receive_data(raw_frame([2, ch, "x" * 30]))  # allowed: credit was positive
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(raw_frame([2, ch, "y"]))
    assert info.value.code is ErrorCode.FLOW_CONTROL
    assert info.value.channel == ch


def test_stream_data_follows_the_same_credit_rules() -> None:
    a, b, ch = _pair(16)
    out = ChannelRef(RefKind.STREAM)
    b.receive_data(a.send_message(ch, [out]))
    assert out.channel is not None
    [event] = b.receive_data(a.send_data(out.channel, b"z" * 20))
    assert isinstance(event, DataReceived) and event.size == 25
    with pytest.raises(LocalProtocolError, match="no send credit"):
        a.send_data(out.channel, b"more")
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(raw_frame([3, out.channel, b"more"]))
    assert info.value.code is ErrorCode.FLOW_CONTROL


def test_credit_overflowing_63_bits_is_flow_control() -> None:
    a, _b, ch = _pair(16)
    with pytest.raises(RemoteProtocolError) as info:
        a.receive_data(raw_frame([6, ch, (1 << 63) - 10]))
    assert info.value.code is ErrorCode.FLOW_CONTROL


@pytest.mark.parametrize("increment", [0, -5, "7", 1.5])
def test_credit_increment_must_be_a_positive_integer(increment: object) -> None:
    a, _b, ch = _pair(16)
    with pytest.raises(RemoteProtocolError, match="positive integer"):
        a.receive_data(raw_frame([6, ch, increment]))


@given(
    window=st.integers(min_value=1, max_value=300),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("send"), st.integers(min_value=0, max_value=200)),
            st.tuples(st.just("consume"), st.integers(min_value=0, max_value=3)),
        ),
        max_size=60,
    ),
)
@settings(max_examples=150)
def test_credit_bounds_buffered_bytes_and_never_deadlocks(
    window: int, steps: list[tuple[str, int]]
) -> None:
    a, b, ch = _pair(window)
    queue: list[int] = []  # sizes received by b, not yet consumed by the application
    largest = 0
    for op, n in steps:
        if op == "send":
            if a.credit(ch) <= 0:
                with pytest.raises(LocalProtocolError):
                    a.send_message(ch, b"x" * n)
                continue
            [event] = b.receive_data(a.send_message(ch, b"x" * n))
            assert isinstance(event, MessageReceived)
            queue.append(event.size)
            largest = max(largest, event.size)
        else:
            for size in queue[:n]:
                deliver(a, b.acknowledge(ch, size))
            del queue[:n]
        # the reader never holds more than the window plus one frame
        assert sum(queue) <= window + largest
        assert a.credit(ch) >= window - sum(queue) - window // 2 - largest
    # once the reader consumes everything, the writer can send again
    for size in queue:
        deliver(a, b.acknowledge(ch, size))
    assert a.credit(ch) > 0
