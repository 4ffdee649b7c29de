"""The routing core's fast paths decide exactly what its general rules decide.

``Routing.complete_next`` (complete a call and get the next calls in one step) is
driven in lockstep with ``complete`` + ``pending`` on the same plugin set, in the
same random completion order: every step must hand out the same calls and both
must end in equal results. The single-branch shortcuts (a pass or a one-message
same-type replace, and a result that needs no sorting) are checked against the
reference model here on chains of common replies, and everywhere else by
tests/test_pipeline_model.py.
"""

from __future__ import annotations

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

from plugin_sdk import Message, OnError, PluginInfo, Reply, Verdict
from router.pipeline import Call, Plan, Routing
from router.result import HopVerdict, Status


def _same_calls(a: list[Call], b: list[Call]) -> bool:
    return [(c.token, c.plugin, c.message, c.attempt, c.info) for c in a] == [
        (c.token, c.plugin, c.message, c.attempt, c.info) for c in b
    ]


@settings(max_examples=200, deadline=None)
@given(scripted_plugins(), st.sampled_from(TYPES), st.integers(1, 5), st.integers(1, 40), st.data())
def test_complete_next_hands_out_what_complete_then_pending_would(
    plugins: list[ScriptedPlugin],
    mtype: str,
    hop_limit: int,
    max_messages: int,
    data: st.DataObject,
) -> None:
    by_name = {p.info.name: p for p in plugins}
    plan = Plan(p.info for p in plugins)
    message = Message(mtype, "in")
    slow = Routing(message, plan, hop_limit=hop_limit, max_messages=max_messages)
    fast = Routing(message, plan, hop_limit=hop_limit, max_messages=max_messages)
    first = slow.pending()
    assert _same_calls(first, fast.pending())
    open_calls = list(first)
    bound = max_messages * (len(plugins) + 1) * 3 + 1
    for step in range(bound):
        assert slow.done == fast.done
        if slow.done:
            break
        call = open_calls.pop(data.draw(st.integers(0, len(open_calls) - 1)))
        out = answer(by_name[call.plugin], call.message, call.attempt)
        reply, error = (
            (None, f"{type(out).__name__}: {out}") if isinstance(out, Exception) else (out, None)
        )
        duration = step / 1000  # distinct per call, so a misplaced hop shows
        slow.complete(call.token, reply, duration=duration, error=error)
        now = [] if slow.done else slow.pending()
        got = fast.complete_next(call.token, reply, duration=duration, error=error)
        assert _same_calls(got, now)
        open_calls.extend(now)
    else:
        raise AssertionError("routing did not terminate")
    assert fast.result() == slow.result()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(["pass", "replace", "skip", "retry-then-pass", "drop", "error"]),
        min_size=1,
        max_size=6,
    )
)
def test_a_single_branch_walk_of_common_replies_matches_the_model(steps: list[str]) -> None:
    # One plugin per step, each accepting "t", each doing one common thing; a
    # drop or an error ends the walk, as the rules say.
    plugins = []
    for n, step in enumerate(steps):
        info = PluginInfo(
            name=f"p{n}",
            accepts=("t",),
            on_error=OnError.SKIP if step == "skip" else OnError.RETRY,
            max_attempts=2,
        )
        action: tuple[object, ...] = {
            "pass": ("emit", ()),
            "replace": ("emit", ("t",)),
            "skip": ("raise",),
            "retry-then-pass": ("flaky", 1, ()),
            "drop": ("drop", ()),
            "error": ("error",),
        }[step]
        plugins.append(ScriptedPlugin(info, {"t": action}))
    message = Message("t", "in")
    routing = Routing(message, Plan(p.info for p in plugins))
    by_name = {p.info.name: p for p in plugins}
    calls = routing.pending()
    while calls:
        (call,) = calls  # a single branch: never two calls at once
        out = answer(by_name[call.plugin], call.message, call.attempt)
        if isinstance(out, Exception):
            calls = routing.complete_next(call.token, None, duration=0.0, error=str(out))
        else:
            calls = routing.complete_next(call.token, out, duration=0.0)
    assert routing.done
    result = routing.result()
    assert_agrees(observed(result), model_route(plugins, message))


def test_a_same_type_replace_past_the_message_budget_overflows_on_the_short_path_too() -> None:
    info = PluginInfo(name="r", accepts=("t",))
    routing = Routing(Message("t", "in"), Plan([info]), max_messages=1)
    (call,) = routing.pending()
    assert (
        routing.complete_next(
            call.token, Reply(Verdict.CONTINUE, (Message("t", "new"),)), duration=0.0
        )
        == []
    )
    result = routing.result()
    assert (result.status, result.by) == (Status.FAILED, "r")
    assert [h.verdict for h in result.trace] == [HopVerdict.OVERFLOW]
    assert result.reason.startswith("message limit exceeded")


def test_a_reply_subclass_or_message_subclass_takes_the_general_path_with_the_same_meaning() -> (
    None
):
    class MyReply(Reply):
        pass

    class MyMessage(Message):
        pass

    info = PluginInfo(name="r", accepts=("t",))
    routing = Routing(Message("t", "in"), Plan([info]))
    (call,) = routing.pending()
    replacement = MyMessage("t", "new")
    routing.complete(call.token, MyReply(Verdict.CONTINUE, (replacement,)), duration=0.0)
    result = routing.result()
    assert result.status is Status.DELIVERED
    assert result.messages == (replacement,)
    assert [h.verdict for h in result.trace] == [HopVerdict.REPLACE]
