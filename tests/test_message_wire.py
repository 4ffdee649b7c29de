"""Message.from_wire: exactly the documented rules, on any map (its fast path included)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, MessageFormatError

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
_maps = st.dictionaries(
    st.sampled_from(["type", "body", "id", "headers", "extra"]), _values, max_size=5
)


def reference(obj: Any) -> tuple[str, Any, str | None, dict[str, Any]] | None:
    """(type, body, id or None for a fresh one, headers), or None where it must fail."""
    if not isinstance(obj, dict):
        return None
    mtype, mid, headers = obj.get("type"), obj.get("id"), obj.get("headers")
    if not isinstance(mtype, str) or not mtype:
        return None
    if mid is not None and not isinstance(mid, str):
        return None
    if headers is not None and not isinstance(headers, dict):
        return None
    if not set(obj) <= {"type", "body", "id", "headers"}:
        return None
    return mtype, obj.get("body"), mid, {} if headers is None else headers


@settings(max_examples=500)
@given(st.one_of(_maps, _values))
def test_from_wire_follows_the_rules_on_any_value(obj: Any) -> None:
    want = reference(obj)
    if want is None:
        with pytest.raises(MessageFormatError, match=r"^line 7: "):
            Message.from_wire(obj, where="line 7")
        return
    got = Message.from_wire(obj)
    mtype, body, mid, headers = want
    assert (got.type, got.body, got.headers) == (mtype, body, headers)
    if mid is None:
        assert got.id  # a fresh one
    else:
        assert got.id == mid


def test_an_unknown_field_is_refused_beside_the_type_alone() -> None:
    with pytest.raises(MessageFormatError, match=r"unknown field\(s\) \['extra'\]"):
        Message.from_wire({"type": "t", "extra": 1})


@given(st.builds(Message, st.text(min_size=1, max_size=3), _values, st.text(max_size=3)))
def test_to_wire_round_trips(message: Message) -> None:
    assert Message.from_wire(message.to_wire()) == message


def test_the_usual_shape_builds_the_same_message_as_the_constructor_and_a_subclass_its_own() -> (
    None
):
    wire = {"type": "t", "body": [1], "id": "m1", "headers": {"h": 1}}
    made = Message.from_wire(wire)
    assert type(made) is Message and made == Message("t", [1], "m1", {"h": 1})

    class Traced(Message):
        pass

    assert type(Traced.from_wire(wire)) is Traced
