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
    model_route,
    observed,
    scripted_plugins,
)

from plugin_sdk import Message
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
    """Run the pure core to the end, completing the call ``pick(len(open))`` each step.

    Open calls are kept as a stack with each new batch pushed in reverse, so
    ``pick = lambda n: n - 1`` is the depth-first order the model walks in.
    """
    by_name = {p.info.name: p for p in plugins}
    routing = Routing(
        message, Plan(p.info for p in plugins), hop_limit=hop_limit, max_messages=max_messages
    )
    open_calls: list[Call] = []
    # Enough for every message of the budget to visit every plugin with every attempt.
    bound = max_messages * (len(plugins) + 1) * 3 + 1
    for _ in range(bound):
        open_calls.extend(reversed(routing.pending()))
        if routing.done:
            return routing.result()
        call = open_calls.pop(pick(len(open_calls)))
        out = answer(by_name[call.plugin], call.message, call.attempt)
        if isinstance(out, Exception):
            routing.complete(call.token, None, duration=0.0, error=f"{type(out).__name__}: {out}")
        else:
            routing.complete(call.token, out, duration=0.0)
    raise AssertionError("routing did not terminate")


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
