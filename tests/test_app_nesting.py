"""The application layer knows how deep its batches nest without walking them."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from plugin_sdk import Message, Reply, Verdict
from plugin_sdk.app import (
    ANSWERS_NESTING,
    CALLS_NESTING,
    answer_entry,
    answers_to_wire,
    call_entry,
    calls_to_wire,
    message_nesting,
)
from plugin_sdk.wire import nesting

_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.integers(-5, 5) | st.text(max_size=2) | st.binary(max_size=2),
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.lists(inner, max_size=2).map(tuple)
        | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=12,
)
_messages = st.builds(
    Message,
    st.text(min_size=1, max_size=3),
    _values,
    st.text(max_size=3),
    st.dictionaries(st.text(max_size=3), _values, max_size=2),
)


@given(_messages)
def test_a_messages_nesting_is_that_of_its_wire_shape(message: Message) -> None:
    assert message_nesting(message) == nesting(message.to_wire())


@given(st.lists(_messages, min_size=1, max_size=4))
def test_a_call_request_nests_its_deepest_message_plus_the_envelope(
    messages: list[Message],
) -> None:
    request = calls_to_wire([call_entry(i, m) for i, m in enumerate(messages, 1)])
    assert nesting(request) == CALLS_NESTING + max(map(message_nesting, messages))


@given(st.lists(st.lists(_messages, max_size=2), min_size=1, max_size=3))
def test_a_replies_message_nests_its_deepest_message_plus_the_envelope(
    replies: list[list[Message]],
) -> None:
    answers = [
        answer_entry(i, Reply(Verdict.CONTINUE, tuple(ms))) for i, ms in enumerate(replies, 1)
    ]
    deepest = max((message_nesting(m) for ms in replies for m in ms), default=0)
    assert nesting(answers_to_wire(answers)) == ANSWERS_NESTING + deepest
