"""Straight, the pure core's cheap common case, and its hand-over to Routing.

An input driven with :class:`Straight` until a reply needs the general rules, then
by the :class:`Routing` that ``escalate()`` returns, must end in exactly the result
a Routing alone gives it (hops, durations and all), and agree with the reference
model, on random plugin sets.
"""

from __future__ import annotations

import itertools

import pytest
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

from plugin_sdk import Message, PluginInfo, Reply, Verdict, drop, replace
from router.pipeline import Call, Plan, Routing, Straight
from router.result import Hop, HopVerdict, Result, Status

limits = st.tuples(st.integers(1, 5), st.integers(1, 40))


def _respond(
    plugin: ScriptedPlugin, call_message: Message, attempt: int, bare: bool = False
) -> tuple[Reply | None, str | None]:
    """The scripted answer; ``bare``: a lone continue message without its reason, the
    answer an in-process plugin gives as the message alone (``Plugin.answer_now``)."""
    out = answer(plugin, call_message, attempt)
    if isinstance(out, Exception):
        return None, f"{type(out).__name__}: {out}"
    if bare and out.verdict is Verdict.CONTINUE and len(out.messages) == 1:
        return replace(out.messages[0]), None
    return out, None


def _finish(
    routing: Routing,
    by_name: dict[str, ScriptedPlugin],
    durations: itertools.count[int],
    bare: bool = False,
) -> Result:
    """Drive ``routing`` depth first to its result, each call taking the next duration."""
    open_calls: list[Call] = []
    for _ in range(100_000):
        open_calls.extend(reversed(routing.pending()))
        if routing.done:
            return routing.result()
        call = open_calls.pop()
        reply, error = _respond(by_name[call.plugin], call.message, call.attempt, bare)
        routing.complete(call.token, reply, duration=next(durations) / 1000, error=error)
    raise AssertionError("routing did not terminate")


def _renumbered(result: Result) -> Result:
    """``result`` with message ids renamed in order of appearance.

    Scripted plugins make fresh messages (fresh ids) on every call, so two runs of one
    plugin set differ only in those ids.
    """
    names: dict[str, str] = {}

    def name(mid: str) -> str:
        return names.setdefault(mid, f"id{len(names)}")

    def message(m: Message) -> Message:
        headers = {**m.headers}
        if "parent" in headers:
            headers["parent"] = name(headers["parent"])
        return Message(m.type, m.body, name(m.id), headers)

    trace = tuple(h._replace(message_id=name(h.message_id)) for h in result.trace)
    return result._replace(
        input_id=name(result.input_id),
        trace=trace,
        messages=tuple(message(m) for m in result.messages),
    )


def route_with_routing(
    plugins: list[ScriptedPlugin],
    message: Message,
    hop_limit: int,
    max_messages: int,
    bare: bool = False,
) -> Result:
    plan = Plan(p.info for p in plugins)
    routing = Routing(message, plan, hop_limit=hop_limit, max_messages=max_messages)
    return _finish(routing, {p.info.name: p for p in plugins}, itertools.count(1), bare)


def route_straight(
    plugins: list[ScriptedPlugin],
    message: Message,
    hop_limit: int,
    max_messages: int,
    bare: bool = False,
) -> tuple[Result, bool]:
    """Route with Straight while it can, then with the Routing it escalates to.

    ``bare``: each lone continue message is answered without its reason, and handed
    to Straight as the message alone. Returns the result and whether it escalated.
    """
    plan = Plan(p.info for p in plugins)
    by_name = {p.info.name: p for p in plugins}
    durations = itertools.count(1)
    straight = Straight(message, plan.for_type(message.type), max_messages)
    while not straight.done:
        info = straight.current
        reply, error = _respond(by_name[info.name], straight.message, 1, bare)
        duration = next(durations) / 1000
        given: Message | Reply | None = reply
        if bare and reply is not None and len(reply.messages) == 1 and not reply.reason:
            given = reply.messages[0]  # as Plugin.answer_now hands it over
        if error is None and straight.step(given, duration):
            continue
        routing = straight.escalate(plan, hop_limit=hop_limit)
        (call,) = routing.pending()
        assert (call.plugin, call.message, call.attempt) == (info.name, straight.message, 1)
        routing.complete(call.token, reply, duration=duration, error=error)
        return _finish(routing, by_name, durations, bare), True
    return straight.result(), False


@settings(max_examples=300, deadline=None)
@given(scripted_plugins(), st.sampled_from(TYPES), limits, st.booleans())
def test_straight_then_escalated_routing_gives_routings_result_exactly(
    plugins: list[ScriptedPlugin], mtype: str, limit: tuple[int, int], bare: bool
) -> None:
    hop_limit, max_messages = limit
    message = Message(mtype, "in")
    got, _ = route_straight(plugins, message, hop_limit, max_messages, bare)
    assert _renumbered(got) == _renumbered(
        route_with_routing(plugins, message, hop_limit, max_messages, bare)
    )
    if not bare:  # the model's trace has the scripted reasons
        want = model_route(plugins, message, hop_limit=hop_limit, max_messages=max_messages)
        assert_agrees(observed(got), want)


# Plugin sets whose every reply is a pass or a same-type replace: the inputs that never
# escalate, so the property above also covers Straight on its own.
_same_type_only = st.lists(
    st.tuples(st.sampled_from(["pass", "replace"]), st.integers(-1, 1)), min_size=0, max_size=6
)


@settings(max_examples=200, deadline=None)
@given(_same_type_only, st.sampled_from(TYPES), st.integers(1, 8), st.booleans())
def test_passes_and_replaces_stay_straight_until_the_budget_runs_out(
    kinds: list[tuple[str, int]], mtype: str, max_messages: int, bare: bool
) -> None:
    plugins = [
        ScriptedPlugin(
            PluginInfo(name=f"p{n}", accepts=("*",), priority=priority),
            {t: ("emit", (t,) if kind == "replace" else ()) for t in TYPES},
        )
        for n, (kind, priority) in enumerate(kinds)
    ]
    message = Message(mtype, "in")
    got, escalated = route_straight(plugins, message, 16, max_messages, bare)
    assert _renumbered(got) == _renumbered(
        route_with_routing(plugins, message, 16, max_messages, bare)
    )
    replaces = sum(kind == "replace" for kind, _ in kinds)
    # Only a replace past the budget (which fails the input) needs the general rules.
    assert escalated == (replaces >= max_messages)


def test_a_straight_input_has_one_hop_per_plugin_and_its_last_message() -> None:
    plan = Plan([PluginInfo(name="a", accepts=("t",)), PluginInfo(name="b", accepts=("*",))])
    message = Message("t", 1, id="in")
    straight = Straight(message, plan.for_type("t"))
    assert straight.current.name == "a" and not straight.done
    new = Message("t", 2, id="new")
    assert straight.step(replace(new), 0.5)
    assert straight.current.name == "b"
    assert straight.step(Reply(), 0.25)
    assert straight.done
    assert straight.result() == Result(
        "in",
        Status.DELIVERED,
        (new,),
        None,
        "",
        (
            Hop("a", "in", "t", HopVerdict.REPLACE, 0.5),
            Hop("b", "new", "t", HopVerdict.PASS, 0.25),
        ),
    )


@pytest.mark.parametrize(
    "reply",
    [
        drop("no"),
        Reply(Verdict.ERROR, (), "broken"),
        replace(Message("t", 1), Message("t", 2)),
        replace(Message("other", 1)),
        "not a reply",
        None,
    ],
    ids=["drop", "error", "fan-out", "derived", "not-a-reply", "none"],
)
def test_any_other_reply_changes_nothing(reply: object) -> None:
    plan = Plan([PluginInfo(name="a", accepts=("t",))])
    straight = Straight(Message("t", 1), plan.for_type("t"))
    assert not straight.step(reply, 0.1)
    assert straight.position == 0 and straight.hops == [] and straight.count == 1


def test_result_before_the_end_and_escalate_after_it_are_refused() -> None:
    plan = Plan([PluginInfo(name="a", accepts=("t",))])
    straight = Straight(Message("t", 1), plan.for_type("t"))
    with pytest.raises(RuntimeError, match="not done"):
        straight.result()
    assert straight.step(Reply(), 0.0)
    with pytest.raises(RuntimeError, match="nothing to escalate"):
        straight.escalate(plan)
