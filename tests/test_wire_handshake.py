"""HELLO, version negotiation and GOAWAY."""

from __future__ import annotations

from typing import Any

import pytest
from wire_vectors import connected_pair, raw_frame

from plugin_sdk.wire import (
    Connection,
    ErrorCode,
    GoAwayReceived,
    HelloReceived,
    LocalProtocolError,
    RemoteProtocolError,
    Role,
)


def _hello(**fields: Any) -> bytes:
    return raw_frame([0, {"versions": [1], **fields}])


def test_highest_common_version_is_chosen() -> None:
    a = Connection(Role.INITIATOR, versions=[1, 2, 5])
    b = Connection(Role.RESPONDER, versions=[2, 3, 1])
    [event] = a.receive_data(b.hello())
    b.receive_data(a.hello())
    assert isinstance(event, HelloReceived)
    assert event.version == 2
    assert a.version == b.version == 2


def test_no_common_version_is_version_mismatch_listing_both_sides() -> None:
    a = Connection(Role.INITIATOR, versions=[1])
    b = Connection(Role.RESPONDER, versions=[2, 3])
    with pytest.raises(RemoteProtocolError) as info:
        a.receive_data(b.hello())
    assert info.value.code is ErrorCode.VERSION_MISMATCH
    assert "[1]" in str(info.value)
    assert "[2, 3]" in str(info.value)
    assert a.version is None


def test_unknown_hello_fields_are_ignored_and_kept() -> None:
    b = Connection(Role.RESPONDER)
    [event] = b.receive_data(_hello(plugin="demo", future={"x": [1, 2]}))
    assert isinstance(event, HelloReceived)
    assert event.fields["plugin"] == "demo"
    assert b.peer_hello == {"versions": [1], "plugin": "demo", "future": {"x": [1, 2]}}


def test_missing_optional_fields_take_the_defaults() -> None:
    b = Connection(Role.RESPONDER)
    b.hello()
    b.receive_data(_hello())
    assert b.peer_max_frame == 1 << 20
    assert b.peer_window == 256 << 10


def test_extra_hello_fields_are_sent() -> None:
    a = Connection(Role.INITIATOR, hello_fields={"name": "router"})
    b = Connection(Role.RESPONDER)
    [event] = b.receive_data(a.hello())
    assert isinstance(event, HelloReceived)
    assert event.fields["name"] == "router"


@pytest.mark.parametrize(
    "fields",
    [
        {"versions": []},
        {"versions": "1"},
        {"versions": [1, "2"]},
        {"versions": [1], "max_frame": 100},
        {"versions": [1], "max_frame": 1 << 33},
        {"versions": [1], "window": 0},
        {"versions": [1], "window": True},
        {"versions": [1], "max_channels": -1},
        {},
    ],
)
def test_invalid_hello_fields_are_protocol_errors(fields: dict[str, Any]) -> None:
    b = Connection(Role.RESPONDER)
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(raw_frame([0, fields]))
    assert info.value.code is ErrorCode.PROTOCOL_ERROR


def test_hello_must_be_a_map() -> None:
    with pytest.raises(RemoteProtocolError, match="HELLO must be"):
        Connection(Role.RESPONDER).receive_data(raw_frame([0, [1]]))


@pytest.mark.parametrize("frame", [[1, 1], [2, 1, None], [4, 1], [6, 1, 5]])
def test_anything_but_hello_or_goaway_first_is_expected_hello(frame: list[Any]) -> None:
    with pytest.raises(RemoteProtocolError, match="expected HELLO") as info:
        Connection(Role.RESPONDER).receive_data(raw_frame(frame))
    assert info.value.offset == 0


def test_goaway_may_arrive_before_hello() -> None:
    b = Connection(Role.RESPONDER)
    assert b.receive_data(raw_frame([7, 3, "version 9 only"])) == [
        GoAwayReceived(ErrorCode.VERSION_MISMATCH, "version 9 only")
    ]


def test_second_hello_is_a_protocol_error() -> None:
    _, b = connected_pair()
    with pytest.raises(RemoteProtocolError, match="second HELLO"):
        b.receive_data(_hello())


def test_hello_must_be_called_before_any_send() -> None:
    a = Connection(Role.INITIATOR)
    a.receive_data(Connection(Role.RESPONDER).hello())
    with pytest.raises(LocalProtocolError, match="hello"):
        a.open()
    with pytest.raises(LocalProtocolError, match="hello"):
        a.goaway()
    a.hello()
    with pytest.raises(LocalProtocolError, match="already"):
        a.hello()
    assert a.open()[0] == 1


def test_channels_wait_for_the_peers_hello() -> None:
    a = Connection(Role.INITIATOR)
    a.hello()
    with pytest.raises(LocalProtocolError, match="HELLO has not been received"):
        a.open()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"versions": []},
        {"max_frame": 4095},
        {"window": 0},
        {"max_depth": 0},
        {"hello_fields": {"window": 5}},
    ],
)
def test_bad_constructor_arguments_are_local_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        Connection(Role.INITIATOR, **kwargs)


def test_goaway_carries_code_and_reason_and_unknown_codes_become_internal_error() -> None:
    a, b = connected_pair()
    assert b.receive_data(a.goaway(ErrorCode.PROTOCOL_ERROR, "bad frame")) == [
        GoAwayReceived(ErrorCode.PROTOCOL_ERROR, "bad frame")
    ]
    assert b.receive_data(raw_frame([7, 77, "new code"])) == [
        GoAwayReceived(ErrorCode.INTERNAL_ERROR, "new code")
    ]


def test_long_reasons_are_truncated_on_send() -> None:
    a, b = connected_pair()
    [event] = b.receive_data(a.goaway(ErrorCode.INTERNAL_ERROR, "é" * 2000))
    assert isinstance(event, GoAwayReceived)
    assert event.reason == "é" * 512


def test_no_new_channels_after_goaway_either_way() -> None:
    a, b = connected_pair()
    ch, opened = a.open()
    b.receive_data(opened)
    b.receive_data(a.goaway())
    with pytest.raises(LocalProtocolError, match="GOAWAY"):
        a.open()
    with pytest.raises(LocalProtocolError, match="GOAWAY"):
        b.open()
    # existing channels keep working: a graceful drain
    b.receive_data(a.send_message(ch, "still here"))
    # the peer creating a channel after its own GOAWAY is a protocol error
    with pytest.raises(RemoteProtocolError, match="after the peer's GOAWAY"):
        b.receive_data(raw_frame([1, 3]))


def test_a_channel_crossing_our_goaway_is_still_accepted() -> None:
    a, b = connected_pair()
    b.goaway()
    ch, opened = a.open()
    assert [e.channel for e in b.receive_data(opened)] == [ch]  # type: ignore[union-attr]
