"""The pure routing core agrees with the reference model on random plugin sets."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from routing_model import (
    TYPES,
    ScriptedPlugin,
    answer,
    assert_agrees,
    drive_routing,
    model_route,
    observed,
    scripted_plugins,
)

from plugin_sdk import Message, Reply
from router.pipeline import Call, Plan, Routing
from router.result import Result


def drive(
    plugins: list[ScriptedPlugin],
    message: Message,
    pick: Callable[[int], int],
    *,
    hop_limit: int,
    max_messages: int,
) -> Result:
    """Route ``message`` with the pure core, completing calls in ``pick`` order."""
    by_name = {p.info.name: p for p in plugins}
    routing = Routing(
        message, Plan(p.info for p in plugins), hop_limit=hop_limit, max_messages=max_messages
    )
    # Enough for every message of the budget to visit every plugin with every attempt.
    bound = max_messages * (len(plugins) + 1) * 3 + 1

    def respond(call: Call) -> Reply | Exception:
        return answer(by_name[call.plugin], call.message, call.attempt)

    result: Result = drive_routing(routing, respond, pick, max_steps=bound)
    return result


limits = st.tuples(st.integers(1, 5), st.integers(1, 40))


@settings(max_examples=200, deadline=None)
@given(scripted_plugins(), st.sampled_from(TYPES), limits)
def test_depth_first_driving_matches_the_model_exactly(
    plugins: list[ScriptedPlugin], mtype: str, limit: tuple[int, int]
) -> None:
    hop_limit, max_messages = limit
    message = Message(mtype, "in")
    want = model_route(plugins, message, hop_limit=hop_limit, max_messages=max_messages)
    got = drive(plugins, message, lambda n: n - 1, hop_limit=hop_limit, max_messages=max_messages)
    assert got.input_id == message.id
    assert_agrees(observed(got), want)


@settings(max_examples=200, deadline=None)
@given(scripted_plugins(), st.sampled_from(TYPES), limits, st.data())
def test_any_completion_order_gives_the_same_result(
    plugins: list[ScriptedPlugin], mtype: str, limit: tuple[int, int], data: st.DataObject
) -> None:
    hop_limit, max_messages = limit
    message = Message(mtype, "in")
    want = model_route(plugins, message, hop_limit=hop_limit, max_messages=max_messages)

    def pick(n: int) -> int:
        return data.draw(st.integers(0, n - 1))

    got = drive(plugins, message, pick, hop_limit=hop_limit, max_messages=max_messages)
    assert_agrees(observed(got), want, exact_failure=False)
