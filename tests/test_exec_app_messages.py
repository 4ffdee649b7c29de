"""The application-layer messages: shapes, round trips, and clear errors for anything else."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, OnError, PluginInfo, Reply, Verdict
from plugin_sdk.app import (
    APP_VERSION,
    AppProtocolError,
    Call,
    Fail,
    Ping,
    Ready,
    UnknownRequest,
    check_pong,
    parse_handshake,
    parse_reply,
    parse_request,
    pong,
    reply_to_wire,
)


class Ref:
    """Stands for the live reply channel the session layer would make of a reference."""


scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8)
values: st.SearchStrategy[Any] = st.recursive(
    scalars | st.binary(max_size=8) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
names = st.text(st.characters(categories=["L", "N", "Pd"]), min_size=1, max_size=12)
messages = st.builds(
    Message,
    type=names,
    body=values,
    id=names,
    headers=st.dictionaries(st.text(max_size=4), values, max_size=3),
)
infos = st.builds(
    PluginInfo,
    name=names,
    accepts=st.lists(names, min_size=1, max_size=3).map(tuple),
    version=st.text(max_size=5),
    priority=st.integers(-100, 100),
    concurrency=st.integers(1, 64),
    on_error=st.sampled_from(OnError),
    max_attempts=st.integers(1, 9),
    timeout=st.floats(0.001, 1e6),
)
replies = st.builds(
    Reply,
    verdict=st.sampled_from(Verdict),
    messages=st.lists(messages, max_size=3).map(tuple),
    reason=st.text(max_size=20),
)


@settings(max_examples=100)
@given(replies)
def test_a_reply_survives_its_wire_shape(reply: Reply) -> None:
    assert parse_reply(reply_to_wire(reply)) == reply


@settings(max_examples=100)
@given(infos, st.text(max_size=10))
def test_a_ready_handshake_carries_the_plugin_info_unchanged(info: PluginInfo, sdk: str) -> None:
    assert parse_handshake(Ready(info, sdk).to_wire()) == Ready(info, sdk, APP_VERSION)


def test_a_fail_handshake_carries_its_error_text() -> None:
    assert parse_handshake(Fail("bad option 'x'").to_wire()) == Fail("bad option 'x'")


@settings(max_examples=100)
@given(messages)
def test_a_call_keeps_its_message_and_reply_channel(message: Message) -> None:
    ref = Ref()
    request = parse_request(Call(message, ref).to_wire(), Ref)
    assert request == Call(message, ref)


def test_a_ping_is_answered_by_a_pong() -> None:
    ref = Ref()
    assert parse_request(Ping(ref).to_wire(), Ref) == Ping(ref)
    check_pong(pong())
    with pytest.raises(AppProtocolError, match="pong"):
        check_pong({"op": "pang"})


def test_an_unknown_op_is_reported_not_rejected() -> None:
    ref = Ref()
    assert parse_request({"op": "cancel", "reply": ref}, Ref) == UnknownRequest("cancel", ref)
    assert parse_request({"op": "cancel"}, Ref) == UnknownRequest("cancel", None)


def test_a_call_without_a_reply_channel_is_a_protocol_error() -> None:
    with pytest.raises(AppProtocolError, match="needs a 'reply' channel"):
        parse_request({"op": "call", "message": {"type": "a"}, "reply": 7}, Ref)


def test_a_newer_application_version_is_refused_naming_both_versions() -> None:
    info = PluginInfo("p", ("a",))
    wire = Ready(info, app=2).to_wire()
    with pytest.raises(AppProtocolError, match=r"version 2; this router supports \[1\]"):
        parse_handshake(wire)


def test_invalid_plugin_info_in_a_handshake_says_what_is_wrong() -> None:
    wire = {"op": "ready", "info": {"name": "p", "accepts": []}}
    with pytest.raises(AppProtocolError, match="accepts no message types"):
        parse_handshake(wire)


def test_a_bad_verdict_is_named_in_the_error() -> None:
    with pytest.raises(AppProtocolError, match="'maybe'"):
        parse_reply({"verdict": "maybe", "messages": []})


def test_error_texts_show_only_a_bounded_prefix_of_what_arrived() -> None:
    with pytest.raises(AppProtocolError) as info:
        parse_reply("x" * 100_000)
    assert len(str(info.value)) < 400


@settings(max_examples=200)
@given(values)
def test_any_value_parses_or_raises_app_protocol_error(value: Any) -> None:
    for parse in (parse_handshake, parse_reply, check_pong, lambda v: parse_request(v, Ref)):
        with contextlib.suppress(AppProtocolError):
            parse(value)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(["op", "info", "verdict", "messages", "reason", "message", "reply"]),
        values | st.sampled_from(["ready", "fail", "call", "ping", "continue", "drop"]),
    )
)
def test_near_miss_maps_parse_or_raise_app_protocol_error(value: dict[str, Any]) -> None:
    for parse in (parse_handshake, parse_reply, lambda v: parse_request(v, Ref)):
        with contextlib.suppress(AppProtocolError):
            parse(value)
