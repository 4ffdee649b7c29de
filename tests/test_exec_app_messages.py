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
    FEATURE_CANCEL,
    AppProtocolError,
    CallBatch,
    Cancel,
    Fail,
    Ping,
    Ready,
    UnknownRequest,
    answer_entry,
    answers_to_wire,
    call_entry,
    calls_to_wire,
    cancel_to_wire,
    check_pong,
    parse_answers,
    parse_handshake,
    parse_request,
    pong,
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


call_ids = st.integers(1, 2**64 - 1)


def parse_calls(value: object) -> object:
    return parse_request(value, Ref)


@settings(max_examples=100)
@given(st.lists(st.tuples(call_ids, replies), min_size=1, max_size=5))
def test_a_batch_of_answers_survives_its_wire_shape(answers: list[tuple[int, Reply]]) -> None:
    wire = answers_to_wire([answer_entry(call_id, reply) for call_id, reply in answers])
    assert parse_answers(wire) == answers


@settings(max_examples=100)
@given(st.lists(st.tuples(call_ids, messages), min_size=1, max_size=5))
def test_a_batch_of_calls_keeps_ids_and_messages_in_order(
    calls: list[tuple[int, Message]],
) -> None:
    wire = calls_to_wire([call_entry(call_id, message) for call_id, message in calls])
    assert parse_request(wire, Ref) == CallBatch(tuple(calls))


@settings(max_examples=100)
@given(infos, st.text(max_size=10))
def test_a_ready_handshake_carries_the_plugin_info_unchanged(info: PluginInfo, sdk: str) -> None:
    assert parse_handshake(Ready(info, sdk).to_wire()) == Ready(info, sdk, APP_VERSION)


@settings(max_examples=100)
@given(infos, st.lists(st.text(max_size=8), max_size=3).map(tuple))
def test_a_ready_handshake_carries_its_features_and_omits_none(
    info: PluginInfo, features: tuple[str, ...]
) -> None:
    wire = Ready(info, features=features).to_wire()
    assert ("features" in wire) == bool(features)
    assert parse_handshake(wire) == Ready(info, features=features)


@pytest.mark.parametrize("features", ["cancel", [FEATURE_CANCEL, 3], {"cancel": True}, None])
def test_features_that_are_not_a_list_of_strings_are_refused(features: object) -> None:
    wire = Ready(PluginInfo("p", ("a",))).to_wire()
    wire["features"] = features
    with pytest.raises(AppProtocolError, match="'features' must be a list of strings, got"):
        parse_handshake(wire)


@settings(max_examples=100)
@given(st.lists(call_ids, min_size=1, max_size=8))
def test_a_cancel_keeps_its_ids_in_order(ids: list[int]) -> None:
    assert cancel_to_wire(ids) == Cancel(tuple(ids)).to_wire() == {"op": "cancel", "ids": ids}
    assert parse_request(cancel_to_wire(ids), Ref) == Cancel(tuple(ids))


@pytest.mark.parametrize("ids", [None, [], [0], [1, "2"], [1, -3], 7, [True], [1.0]])
def test_a_cancel_without_usable_ids_is_a_protocol_error(ids: object) -> None:
    with pytest.raises(AppProtocolError, match="'cancel' request needs a non-empty 'ids' list"):
        parse_request({"op": "cancel", "ids": ids}, Ref)


def test_a_fail_handshake_carries_its_error_text() -> None:
    assert parse_handshake(Fail("bad option 'x'").to_wire()) == Fail("bad option 'x'")


def test_a_malformed_message_in_a_batch_is_kept_as_that_calls_error() -> None:
    batch = parse_request({"op": "call", "calls": [[1, {"type": "a"}], [2, {"type": 3}]]}, Ref)
    assert isinstance(batch, CallBatch)
    (first_id, first), (second_id, second) = batch.calls
    assert first_id == 1 and isinstance(first, Message) and first.type == "a"
    assert second_id == 2 and isinstance(second, AppProtocolError)
    assert "call 2 message: 'type' must be a non-empty string" in str(second)


def test_an_entry_without_a_usable_id_is_skipped_and_the_rest_of_its_batch_kept() -> None:
    batch = parse_request({"op": "call", "calls": [[0, {"type": "a"}], [5, {"type": "b"}]]}, Ref)
    assert isinstance(batch, CallBatch)
    assert [(call_id, m.type) for call_id, m in batch.calls if isinstance(m, Message)] == [(5, "b")]
    [why] = batch.skipped
    assert "integer id >= 1" in why and "[0, {'type': 'a'}]" in why


@pytest.mark.parametrize(
    "request_map",
    [
        {"op": "call"},
        {"op": "call", "calls": []},
        {"op": "call", "calls": [[0, {"type": "a"}]]},
        {"op": "call", "calls": [["1", {"type": "a"}]]},
        {"op": "call", "calls": [[1, {"type": "a"}, "extra"]]},
        {"op": "call", "calls": [[True, {"type": "a"}]]},
    ],
)
def test_a_call_batch_without_usable_ids_is_a_protocol_error(request_map: object) -> None:
    with pytest.raises(AppProtocolError, match="call"):
        parse_request(request_map, Ref)


def test_a_ping_is_answered_by_a_pong() -> None:
    ref = Ref()
    assert parse_request(Ping(ref).to_wire(), Ref) == Ping(ref)
    check_pong(pong())
    with pytest.raises(AppProtocolError, match="pong"):
        check_pong({"op": "pang"})


def test_a_ping_without_a_reply_channel_is_a_protocol_error() -> None:
    with pytest.raises(AppProtocolError, match="needs a 'reply' channel"):
        parse_request({"op": "ping", "reply": 7}, Ref)


def test_an_unknown_op_is_reported_not_rejected() -> None:
    ref = Ref()
    assert parse_request({"op": "resume", "reply": ref}, Ref) == UnknownRequest("resume", ref)
    assert parse_request({"op": "resume"}, Ref) == UnknownRequest("resume", None)


@pytest.mark.parametrize(
    ("app", "shown_as"), [(1, "1"), (3, "3"), (None, "1")], ids=["older", "newer", "absent"]
)
def test_another_application_version_is_refused_naming_both_versions(
    app: int | None, shown_as: str
) -> None:
    wire = Ready(PluginInfo("p", ("a",))).to_wire()
    if app is None:
        del wire["app"]
    else:
        wire["app"] = app
    with pytest.raises(AppProtocolError, match=rf"version {shown_as}; this router supports \[2\]"):
        parse_handshake(wire)


def test_invalid_plugin_info_in_a_handshake_says_what_is_wrong() -> None:
    wire = {"op": "ready", "info": {"name": "p", "accepts": []}, "app": APP_VERSION}
    with pytest.raises(AppProtocolError, match="accepts no message types"):
        parse_handshake(wire)


_OK = {"type": "t", "body": None}


@pytest.mark.parametrize(
    ("answers", "complaint"),
    [
        ({"op": "replies", "replies": [[1, "maybe", [], ""]]}, "answer 1: verdict .*'maybe'"),
        ({"op": "replies", "replies": [[1, "drop", {}, ""]]}, "answer 1: messages must be a list"),
        ({"op": "replies", "replies": [[1, "drop", [], 5]]}, "answer 1: reason must be a string"),
        ({"op": "replies", "replies": [[1, "drop", [{"x": 1}], ""]]}, "answer 1 message 0"),
        (
            {"op": "replies", "replies": [[3, "continue", [_OK, _OK, {"type": 5}], ""]]},
            "^answer 3 message 2: 'type' must be a non-empty string, got 5$",
        ),
        ({"op": "replies", "replies": [[0, "drop", [], ""]]}, "integer id >= 1"),
        ({"op": "replies", "replies": [[1, "drop", []]]}, r"\[id, verdict, messages, reason\]"),
        ({"op": "replies", "replies": []}, "non-empty list"),
        ({"op": "reply", "replies": [[1, "drop", [], ""]]}, "'op': 'replies'"),
    ],
)
def test_a_malformed_answer_is_named_in_the_error(answers: object, complaint: str) -> None:
    with pytest.raises(AppProtocolError, match=complaint):
        parse_answers(answers)


def test_error_texts_show_only_a_bounded_prefix_of_what_arrived() -> None:
    with pytest.raises(AppProtocolError) as info:
        parse_answers("x" * 100_000)
    assert len(str(info.value)) < 400


@settings(max_examples=200)
@given(values)
def test_any_value_parses_or_raises_app_protocol_error(value: Any) -> None:
    for parse in (parse_handshake, parse_answers, check_pong, parse_calls):
        with contextlib.suppress(AppProtocolError):
            parse(value)


near_miss_values = values | st.sampled_from(
    ["ready", "fail", "call", "cancel", "ping", "replies", "drop"]
)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(["op", "info", "calls", "ids", "replies", "reply", "app", "features"]),
        near_miss_values | st.lists(st.lists(call_ids | near_miss_values, max_size=5), max_size=3),
    )
)
def test_near_miss_maps_parse_or_raise_app_protocol_error(value: dict[str, Any]) -> None:
    for parse in (parse_handshake, parse_answers, parse_calls):
        with contextlib.suppress(AppProtocolError):
            parse(value)


@pytest.mark.parametrize("app", [[], {}, "2", 2.0, True])
def test_an_application_version_that_is_not_an_integer_is_refused(app: object) -> None:
    wire = Ready(PluginInfo("p", ("a",))).to_wire()
    wire["app"] = app
    with pytest.raises(AppProtocolError, match="application protocol version"):
        parse_handshake(wire)
