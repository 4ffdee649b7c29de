"""The payload depth check agrees with the plain recursive definition of depth."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk.wire import nesting
from plugin_sdk.wire._state import (
    CONTAINER_TYPES,
    _items_of,
    _items_of_each,
    may_nest_deeper,
    payload_too_deep,
)


def depth(value: Any) -> int:
    """Containers nested in ``value``, itself included (a scalar is 0); a map's keys
    count as its values do."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in [*value, *value.values()]), default=0)
    if isinstance(value, list | tuple):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


# Keys that are not text: ints, and tuples (msgpack packs them as arrays, so they nest).
keys: st.SearchStrategy[Any] = st.recursive(
    st.integers(0, 3), lambda inner: st.lists(inner, max_size=2).map(tuple), max_leaves=4
)

payloads: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=2), inner)
        | st.dictionaries(keys, inner, max_size=2)
    ),
    max_leaves=40,
)


@settings(max_examples=300)
@given(payloads, st.integers(1, 12))
def test_too_deep_exactly_when_depth_exceeds_the_limit(payload: Any, limit: int) -> None:
    # Tuples too: msgpack packs one as an array, so it nests on the wire like a list.
    assert payload_too_deep(payload, limit) == (depth(payload) > limit)


def test_a_tuple_key_nests_like_the_array_it_is_packed_as() -> None:
    payload = {(1, (2,)): "v"}
    assert nesting(payload) == 3
    assert nesting(_items_of_each([payload])[0]) == 2  # the walk's loop lists it too


def test_a_tuple_nests_like_a_list() -> None:
    nested: Any = "leaf"
    for _ in range(5):
        nested = (nested,)
    assert payload_too_deep({"body": nested}, 5)
    assert not payload_too_deep({"body": nested}, 6)


def test_a_wide_shallow_batch_is_not_too_deep() -> None:
    message = {"type": "t", "body": {"a": [1, {"b": 2}]}, "id": "m", "headers": {}}
    batch = {"op": "replies", "replies": [[i, "continue", [message], ""] for i in range(500)]}
    assert depth(batch) == 8
    assert not payload_too_deep(batch, 8)
    assert payload_too_deep(batch, 7)


@settings(max_examples=300)
@given(payloads, st.integers(1, 12), st.binary(max_size=2000))
def test_the_byte_scan_never_clears_a_frame_whose_payload_is_too_deep(
    payload: Any, limit: int, padding: bytes
) -> None:
    # A frame is [type, channel, payload]; padding makes some frames big enough that
    # they are walked without a scan.
    frame = msgpack.packb([2, 1, [padding, payload]])
    if not may_nest_deeper(frame, limit):
        assert depth([padding, payload]) <= limit
    assert may_nest_deeper(memoryview(frame), limit) == may_nest_deeper(frame, limit)


@settings(max_examples=300)
@given(payloads, st.integers(1, 12))
def test_nesting_is_the_depth_up_to_the_limit(payload: Any, limit: int) -> None:
    assert nesting(payload, limit) == min(depth(payload), limit + 1)
    assert nesting(payload) == depth(payload)


@settings(max_examples=200)
@given(st.lists(payloads.filter(lambda p: isinstance(p, list | tuple | dict)), max_size=4))
def test_a_level_s_items_are_the_same_from_the_gc_as_from_a_loop(level: list[Any]) -> None:
    # The walk lists a level's items with gc.get_referents on CPython: every item of
    # a list or tuple, every value of a map, and its keys unless they are all text
    # (which never nest). The loop lists every key: the containers among them agree.
    def ids(items: list[Any]) -> list[int]:
        return sorted(id(item) for item in items if type(item) in CONTAINER_TYPES)

    assert ids(_items_of(*level)) == ids(_items_of_each(level))
