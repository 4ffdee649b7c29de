"""Each routing rule of docs/ROUTING.md, by example, on the pure core (no event loop)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from routing_model import drive_routing

from plugin_sdk import Message, OnError, PluginInfo, Reply, Verdict, drop, emit, error, replace
from router.pipeline import Call, Plan, PlanError, Routing, accepts_type
from router.result import Result, Status

Script = dict[str, Callable[[Message], Reply | Exception]]


def info(name: str, *accepts: str, **kw: object) -> PluginInfo:
    return PluginInfo(name, accepts or ("*",), **kw)  # type: ignore[arg-type]


def route(
    infos: list[PluginInfo], script: Script, message: Message, **limits: int
) -> tuple[Result, list[tuple[str, str]]]:
    """Route with the pure core; plugins missing from ``script`` pass. Also the calls made."""
    calls: list[tuple[str, str]] = []

    def respond(call: Call) -> Reply | Exception:
        calls.append((call.plugin, str(call.message.body)))
        act = script.get(call.plugin)
        return act(call.message) if act else Reply()

    return drive_routing(Routing(message, Plan(infos), **limits), respond), calls


def bodies(result: Result) -> list[object]:
    return [m.body for m in result.messages]


# -- plan ------------------------------------------------------------------------


def test_pipeline_order_is_priority_first_then_registration_order() -> None:
    plan = Plan([info("a"), info("b", priority=5), info("c"), info("d", priority=5)])
    assert plan.names == ("b", "d", "a", "c")
    assert [i.name for i in plan.registered] == ["a", "b", "c", "d"]


def test_globs_use_fnmatchcase_and_star_crosses_dots() -> None:
    glob = info("g", "container.*")
    assert accepts_type(glob, "container.create")
    assert accepts_type(glob, "container.exec.start")
    assert not accepts_type(glob, "Container.create")
    assert not accepts_type(glob, "container")
    assert accepts_type(info("all", "*"), "anything.at.all")
    assert accepts_type(info("x", "*.x"), "a.b.x")
    assert not accepts_type(info("exact", "a.x"), "a.xy")


def test_the_plan_for_a_type_lists_accepting_plugins_in_order_and_prints() -> None:
    plan = Plan([info("log", "*"), info("authz", "container.*", priority=10), info("m", "b.x")])
    assert [i.name for i in plan.for_type("container.create")] == ["authz", "log"]
    assert plan.for_type("container.create") is plan.for_type("container.create")
    assert plan.describe("container.create") == "container.create: authz -> log"
    assert "no plugin accepts" in Plan([info("m", "b.x")]).describe("a.y")
    text = plan.describe()
    assert text.index("authz") < text.index("log") < text.index(" m ")
    assert "priority 10" in text and "container.*" in text


def test_duplicate_names_are_refused_naming_the_positions() -> None:
    with pytest.raises(PlanError, match=r"'a'.*#1 and #3"):
        Plan([info("a"), info("b"), info("a")])


def test_edits_make_new_plans_and_leave_the_old_one_alone() -> None:
    plan = Plan([info("a"), info("b")])
    assert plan.with_added(info("c"), 0).names == ("c", "a", "b")
    assert plan.without("a").names == ("b",)
    assert plan.with_replaced("a", info("a2")).names == ("a2", "b")
    assert plan.reordered(["b", "a"]).names == ("b", "a")
    assert plan.names == ("a", "b")
    with pytest.raises(PlanError, match="no plugin named 'zz'"):
        plan.without("zz")
    with pytest.raises(PlanError, match="exactly once"):
        plan.reordered(["a"])


def test_a_reorder_that_contradicts_priority_is_refused_naming_the_pair() -> None:
    plan = Plan([info("hi", priority=3), info("lo")])
    with pytest.raises(PlanError, match=r"'lo' .*before 'hi'"):
        plan.reordered(["lo", "hi"])


# -- one pipeline ------------------------------------------------------------------


def test_passing_plugins_hand_the_same_message_on_and_it_is_delivered() -> None:
    message = Message("t", "x")
    result, calls = route([info("a"), info("b")], {}, message)
    assert result.status == Status.DELIVERED
    assert result.messages == (message,)
    assert calls == [("a", "x"), ("b", "x")]
    assert [(h.plugin, h.verdict) for h in result.trace] == [("a", "pass"), ("b", "pass")]


def test_one_same_type_reply_replaces_the_message_for_the_next_plugin() -> None:
    script: Script = {"a": lambda m: replace(Message("t", "new"))}
    result, calls = route([info("a"), info("b")], script, Message("t", "old"))
    assert calls == [("a", "old"), ("b", "new")]
    assert bodies(result) == ["new"]
    assert result.trace[0].verdict == "replace"


def test_fan_out_sends_each_reply_down_the_rest_of_the_pipeline_only() -> None:
    script: Script = {"b": lambda m: emit(Message("t", "1"), Message("t", "2"))}
    result, calls = route([info("a"), info("b"), info("c")], script, Message("t", "x"))
    assert calls == [("a", "x"), ("b", "x"), ("c", "1"), ("c", "2")]
    assert bodies(result) == ["1", "2"]
    assert [h.verdict for h in result.trace] == ["pass", "fan-out", "pass", "pass"]


def test_a_plugin_never_sees_its_own_same_type_reply() -> None:
    script: Script = {"echo": lambda m: replace(m)}
    result, calls = route([info("echo")], script, Message("t", "x"))
    assert calls == [("echo", "x")]
    assert result.status == Status.DELIVERED


def test_other_type_replies_are_derived_with_lineage_and_parent() -> None:
    script: Script = {
        "a": lambda m: emit(Message("u", "derived")) if m.type == "t" else Reply(),
        "u-only": lambda m: replace(Message("u", "u-replaced")),
    }
    message = Message("t", "x")
    result, calls = route([info("a"), info("u-only", "u")], script, message)
    assert calls == [("a", "x"), ("a", "derived"), ("u-only", "derived")]
    assert bodies(result) == ["x", "u-replaced"]
    derived = result.messages[1]
    assert derived.headers["lineage"] == [["t", "a"]]
    assert derived.headers["parent"] == message.id


def test_lineage_grows_along_a_derivation_chain() -> None:
    script: Script = {
        "a": lambda m: emit(Message("u")),
        "b": lambda m: emit(Message("v")),
    }
    result, _ = route([info("a", "t"), info("b", "u")], script, Message("t"))
    last = result.messages[-1]
    assert last.type == "v"
    assert last.headers["lineage"] == [["t", "a"], ["u", "b"]]


def test_derived_messages_inherit_trace_and_deadline_unless_their_plugin_set_them() -> None:
    script: Script = {
        "a": lambda m: emit(Message("u", 1), Message("u", 2, headers={"trace": "own"})),
    }
    parent = Message("t", headers={"trace": "t-1", "deadline": 1e10, "other": "not inherited"})
    result, _ = route([info("a", "t")], script, parent)
    derived = [m for m in result.messages if m.type == "u"]
    assert [m.headers.get("trace") for m in derived] == ["t-1", "own"]
    assert all(m.headers.get("deadline") == 1e10 for m in derived)
    assert all("other" not in m.headers for m in derived)


def test_a_drop_stops_the_branch_and_still_routes_other_type_replies() -> None:
    audit = Message("audit.event", "denied")
    script: Script = {"authz": lambda m: drop("not allowed", [Message("t", "ignored"), audit])}
    infos = [info("authz", "t"), info("after", "t")]
    result, calls = route(infos, script, Message("t", "x"))
    assert calls == [("authz", "x")]
    assert (result.status, result.by, result.reason) == (Status.DROPPED, "authz", "not allowed")
    assert bodies(result) == ["denied"]


def test_dropped_names_the_first_dropping_plugin_when_all_own_branches_drop() -> None:
    script: Script = {
        "fan": lambda m: emit(Message("t", "1"), Message("t", "2")),
        "gate": lambda m: drop(f"no {m.body}"),
    }
    result, _ = route([info("fan"), info("gate")], script, Message("t"))
    assert (result.status, result.by, result.reason) == (Status.DROPPED, "gate", "no 1")
    assert result.messages == ()


def test_one_surviving_branch_makes_the_input_delivered() -> None:
    script: Script = {
        "fan": lambda m: emit(Message("t", "1"), Message("t", "2")),
        "gate": lambda m: drop("no") if m.body == "1" else Reply(),
    }
    result, _ = route([info("fan"), info("gate")], script, Message("t"))
    assert result.status == Status.DELIVERED
    assert bodies(result) == ["2"]


def test_a_drop_in_a_derived_pipeline_does_not_drop_the_input() -> None:
    script: Script = {"a": lambda m: emit(Message("u")), "b": lambda m: drop("no u")}
    result, _ = route([info("a", "t"), info("b", "u")], script, Message("t", "x"))
    assert result.status == Status.DELIVERED
    assert bodies(result) == ["x"]


def test_any_failure_fails_the_input_with_no_outputs() -> None:
    script: Script = {
        "a": lambda m: emit(Message("u")),
        "b": lambda m: error("u is broken"),
    }
    result, _ = route([info("a", "t"), info("b", "u")], script, Message("t", "x"))
    assert (result.status, result.by, result.reason) == (Status.FAILED, "b", "u is broken")
    assert result.messages == ()
    assert [h.verdict for h in result.trace] == ["pass", "error"]


def test_the_first_failure_in_trace_order_wins_whatever_completes_first() -> None:
    script: Script = {
        "fan": lambda m: emit(Message("t", "1"), Message("t", "2")),
        "check": lambda m: error(f"bad {m.body}"),
    }
    infos = [info("fan"), info("check")]
    # Complete the second branch first: the result still names the first one.
    routing = Routing(Message("t"), Plan(infos))
    first = routing.pending()
    routing.complete(first[0].token, script["fan"](first[0].message), duration=0.0)  # type: ignore[arg-type]
    one, two = routing.pending()
    routing.complete(two.token, error("bad 2"), duration=0.0)
    assert not routing.done
    routing.complete(one.token, error("bad 1"), duration=0.0)
    assert routing.done
    assert routing.result().reason == "bad 1"


def test_a_failure_abandons_later_work_so_routing_is_done_at_once() -> None:
    routing = Routing(Message("t"), Plan([info("fan"), info("check")]))
    (fan,) = routing.pending()
    routing.complete(fan.token, emit(Message("t", "1"), Message("t", "2")), duration=0.0)
    one, two = routing.pending()
    routing.complete(one.token, error("bad 1"), duration=0.0)
    assert routing.done  # branch "2" comes later in trace order: it cannot matter
    routing.complete(two.token, Reply(), duration=0.0)  # a late completion is ignored
    assert routing.result().reason == "bad 1"


def test_skip_policy_passes_the_message_on_unchanged() -> None:
    script: Script = {"flaky": lambda m: RuntimeError("oops")}
    infos = [info("flaky", on_error=OnError.SKIP), info("b")]
    result, calls = route(infos, script, Message("t", "x"))
    assert result.status == Status.DELIVERED
    assert calls == [("flaky", "x"), ("b", "x")]
    assert [(h.verdict, h.reason) for h in result.trace] == [
        ("skip", "RuntimeError: oops"),
        ("pass", ""),
    ]


def test_retry_calls_again_up_to_max_attempts_in_all_then_fails() -> None:
    script: Script = {"flaky": lambda m: error("down")}
    infos = [info("flaky", on_error=OnError.RETRY, max_attempts=3)]
    result, calls = route(infos, script, Message("t", "x"))
    assert len(calls) == 3
    assert (result.status, result.by) == (Status.FAILED, "flaky")
    assert result.reason == "down (gave up after 3 attempts)"
    assert [h.verdict for h in result.trace] == ["retry", "retry", "error"]


def test_a_timeout_reported_by_the_driver_shows_in_the_trace() -> None:
    routing = Routing(Message("t"), Plan([info("slow")]))
    (call,) = routing.pending()
    routing.complete(call.token, None, duration=2.0, error="timed out after 2s", timed_out=True)
    result = routing.result()
    assert (result.status, result.reason) == (Status.FAILED, "timed out after 2s")
    assert [(h.verdict, h.duration) for h in result.trace] == [("timeout", 2.0)]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("not a reply", "returned str, not a Reply"),
        (Reply(Verdict.CONTINUE, ("nope",)), "str among its messages"),  # type: ignore[arg-type]
        (Reply("maybe", ()), "unknown verdict 'maybe'"),  # type: ignore[arg-type]
        (Reply(Verdict.ERROR, (), ""), "error without a reason"),
    ],
)
def test_an_unusable_reply_counts_as_an_error(bad: object, says: str) -> None:
    routing = Routing(Message("t"), Plan([info("p")]))
    (call,) = routing.pending()
    routing.complete(call.token, bad, duration=0.0)  # type: ignore[arg-type]
    result = routing.result()
    assert result.status == Status.FAILED
    assert says in result.reason


def test_a_derivation_cycle_ends_in_a_routing_loop_failure_naming_the_cycle() -> None:
    script: Script = {
        "a": lambda m: emit(Message("y", m.body)),
        "b": lambda m: emit(Message("x", m.body)),
    }
    result, calls = route([info("a", "x"), info("b", "y")], script, Message("x"), hop_limit=5)
    assert (result.status, result.by) == (Status.FAILED, "b")
    assert result.reason.startswith("routing loop: x -[a]-> y -[b]-> x")
    assert "hop limit of 5" in result.reason
    assert len(calls) == 6
    assert result.trace[-1].verdict == "loop"


def test_a_fan_out_explosion_hits_the_message_budget() -> None:
    script: Script = {"boom": lambda m: emit(Message("t"), Message("t"), Message("u"))}
    infos = [info(f"boom{i}") for i in range(6)]
    result, _ = route(infos, {i.name: script["boom"] for i in infos}, Message("t"), max_messages=50)
    assert result.status == Status.FAILED
    assert result.reason.startswith("message limit exceeded: more than 50 messages")
    assert result.trace[-1].verdict == "overflow"


def test_a_type_nobody_accepts_is_delivered_unchanged_with_an_empty_trace() -> None:
    message = Message("nobody.wants.this", 1)
    routing = Routing(message, Plan([info("a", "a.*")]))
    assert routing.done and routing.pending() == []
    result = routing.result()
    assert (result.status, result.messages, result.trace) == (Status.DELIVERED, (message,), ())


def test_outputs_are_depth_first_in_reply_order_with_the_unchanged_message_first() -> None:
    script: Script = {
        "a": lambda m: emit(Message("u", "u1"), Message("v", "v1")) if m.type == "t" else Reply(),
        "b": lambda m: emit(Message("w", "w-from-u")),
    }
    result, _ = route([info("a"), info("b", "u")], script, Message("t", "t0"))
    assert bodies(result) == ["t0", "u1", "w-from-u", "v1"]


def test_result_and_result_of_unrouted_input_have_a_plain_wire_shape() -> None:
    result, _ = route([info("a")], {"a": lambda m: drop("no")}, Message("t", "x", id="m1"))
    assert result.to_wire() == {
        "id": "m1",
        "status": "dropped",
        "messages": [],
        "by": "a",
        "reason": "no",
        "trace": [
            {
                "plugin": "a",
                "message_id": "m1",
                "type": "t",
                "verdict": "drop",
                "duration": 0.0,
                "reason": "no",
            }
        ],
    }
    bad = Result.failed_input("line-3", "line 3: not JSON")
    assert bad.to_wire()["status"] == "failed" and bad.by is None


def test_unknown_tokens_and_early_results_are_refused() -> None:
    routing = Routing(Message("t"), Plan([info("a")]))
    with pytest.raises(RuntimeError, match="not done"):
        routing.result()
    with pytest.raises(ValueError, match="unknown"):
        routing.complete(999, Reply(), duration=0.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-2, 2), min_size=1, max_size=8))
def test_pipeline_order_is_a_stable_sort_by_descending_priority(priorities: list[int]) -> None:
    plan = Plan(info(f"p{i}", priority=p) for i, p in enumerate(priorities))
    ranks = [(-p.priority, int(p.name[1:])) for p in plan.plugins]
    assert ranks == sorted(ranks)


def test_a_plan_keeps_a_bounded_number_of_pipelines_however_many_types_it_sees() -> None:
    from router.pipeline._plan import CACHED_TYPES_MAX

    plan = Plan([PluginInfo(name="all", accepts=("*",))])
    for n in range(CACHED_TYPES_MAX * 2 + 1):
        assert [i.name for i in plan.for_type(f"t{n}")] == ["all"]
    assert len(plan._cache) <= CACHED_TYPES_MAX
