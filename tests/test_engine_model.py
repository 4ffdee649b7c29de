"""The trio engine agrees with the reference model, one input at a time and streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
from fake_plugins import ModelHandle
from hypothesis import given, settings
from hypothesis import strategies as st
from routing_model import (
    TYPES,
    ScriptedPlugin,
    assert_agrees,
    model_route,
    observed,
    scripted_plugins,
)

import router
from plugin_sdk import Message
from router.result import Result


async def _route_all(
    plugins: list[ScriptedPlugin], messages: list[Message], max_in_flight: int
) -> list[Result]:
    async def items() -> AsyncIterator[Message]:
        for message in messages:
            yield message

    handles = [ModelHandle(p) for p in plugins]
    async with router.open(handles, hop_limit=4, max_messages=30, max_in_flight=max_in_flight) as r:
        return [result async for result in r.route_stream(items())]


@settings(max_examples=60, deadline=None)
@given(
    scripted_plugins(),
    st.lists(st.sampled_from(TYPES), min_size=1, max_size=6),
    st.integers(1, 4),
)
def test_streamed_results_match_the_model_in_input_order(
    plugins: list[ScriptedPlugin], types: list[str], max_in_flight: int
) -> None:
    messages = [Message(t, f"in{i}") for i, t in enumerate(types)]
    results = trio.run(_route_all, plugins, messages, max_in_flight)
    assert [r.input_id for r in results] == [m.id for m in messages]
    for message, result in zip(messages, results, strict=True):
        want = model_route(plugins, message, hop_limit=4, max_messages=30)
        assert_agrees(observed(result), want, exact_failure=False)
