"""The in-process fast path keeps every meaning of the awaited path.

``Plugin.handle_now`` must answer exactly what ``handle`` answers (or hand back an
awaitable when the handler has to be awaited), and the engine's synchronous path
must keep timeouts for async handlers, deadlines, errors, order and one result per
input.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import router
from plugin_sdk import (
    Headers,
    Message,
    OnError,
    Plugin,
    Reply,
    Verdict,
    drop,
    error,
    handles,
    replace,
)
from router import InProcessHandle, Status
from router.builtins._fields import FieldPathError, set_field
from router.builtins.authz import Authz, Rule, parse_rules


class _MyMessage(Message):
    """A Message subclass: must take the general checks, with the same meaning."""


class _MyReply(Reply):
    """A Reply subclass: likewise."""


# What a handler may return: the usual answers and the bad ones.
_RETURNS: list[object] = [
    _MyMessage("t", "sub", id="s"),
    _MyReply(messages=(Message("t", "in-sub", id="i"),)),
    Reply(messages=(_MyMessage("t", "sub-in", id="j"),)),
    None,
    Message("t", "new", id="n1"),
    [Message("t", "a", id="a"), Message("u", "b", id="b")],
    (Message("t", "c", id="c"),),
    replace(Message("t", "r", id="r")),
    drop("no"),
    error("broken"),
    Reply(messages=("not a message",)),  # type: ignore[arg-type]  # a bad value on purpose
    42,
    ["x"],
    ValueError("boom"),
]


class Returns(Plugin):
    """Answers ``t`` with whatever it was told to, from a plain or an async handler."""

    name = "returns"

    def __init__(self, value: object) -> None:
        super().__init__()
        self.value = value

    def _answer(self) -> Any:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value

    @handles("t")
    def plain(self, msg: Message) -> Any:
        return self._answer()

    @handles("a")
    async def awaited(self, msg: Message) -> Any:
        await trio.lowlevel.checkpoint()
        return self._answer()

    @handles("w")
    def plain_returning_awaitable(self, msg: Message) -> Any:
        return self.awaited(msg)


def _resolve(outcome: Message | Reply | Awaitable[Reply]) -> Awaitable[Reply] | None:
    return None if isinstance(outcome, Message | Reply) else outcome


@settings(max_examples=60)
@given(value=st.sampled_from(_RETURNS), mtype=st.sampled_from(["t", "a", "w", "other"]))
def test_handle_now_answers_what_handle_answers(value: object, mtype: str) -> None:
    plugin = Returns(value)
    message = Message(mtype, "x", id="in")

    async def both() -> tuple[Reply, Reply, bool]:
        expected = await plugin.handle(message)
        outcome = plugin.handle_now(message)
        pending = _resolve(outcome)
        got = outcome if pending is None else await pending
        assert isinstance(got, Reply)
        # answer_now: the same, but a lone Message returned comes back bare.
        answer = plugin.answer_now(message)
        if type(answer) is Message:
            assert value is answer  # the handler's own message, not a copy
            assert expected == Reply(Verdict.CONTINUE, (answer,))
        else:
            pending_answer = _resolve(answer)
            assert (answer if pending_answer is None else await pending_answer) == expected
        return expected, got, pending is None

    expected, got, synchronous = trio.run(both)
    assert got == expected
    # Only a plain handler's answer (or no handler at all) comes back at once.
    assert synchronous == (mtype in ("t", "other"))


def test_dispatch_stays_right_past_the_memo_limit() -> None:
    class Globs(Plugin):
        name = "globs"

        @handles("exact.one")
        def exact(self, msg: Message) -> None:
            return None

        @handles("exact.*", "other.*")
        def glob(self, msg: Message) -> None:
            return None

    table = Globs._handler_table
    types = [f"{prefix}.{i}" for i in range(3000) for prefix in ("exact", "other", "none")]
    for mtype in [*types, "exact.one", *types[:10]]:
        found = table.lookup(mtype)
        expected = "glob" if not mtype.startswith("none") else None
        if mtype == "exact.one":
            expected = "exact"
        assert (found.method if found else None) == expected


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class Overruns(Plugin):
    """A synchronous handler that takes longer than its timeout (the clock jumps)."""

    name = "overruns"
    timeout = 1.0

    def __init__(self, clock: trio.testing.MockClock) -> None:
        super().__init__()
        self.clock = clock

    @handles("t")
    def slow(self, msg: Message) -> Message:
        self.clock.jump(5)
        return Message("t", "slow", id=msg.id)


async def test_a_sync_handler_cannot_be_interrupted_so_its_overrun_completes_and_is_measured(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with router.open([Overruns(autojump_clock)]) as r:
        result = await r.route(Message("t", "x"))
        stats = r.stats()["overruns"]
    assert result.status is Status.DELIVERED
    assert [m.body for m in result.messages] == ["slow"]
    assert [hop.verdict for hop in result.trace] == ["replace"]
    assert result.trace[0].duration == pytest.approx(5.0)
    assert (stats.handled, stats.timed_out, stats.failed) == (1, 0, 0)


class Hangs(Plugin):
    """An async handler that never answers."""

    name = "hangs"
    timeout = 2.0
    on_error = OnError.SKIP

    @handles("t")
    async def hang(self, msg: Message) -> None:
        await trio.sleep_forever()


class Stamps(Plugin):
    """Replaces each message by one naming this plugin (a plain handler)."""

    name = "stamps"

    @handles("t")
    def stamp(self, msg: Message) -> Message:
        return Message("t", f"{msg.body}+{self.name}", id=msg.id)


async def test_an_async_in_process_handler_still_times_out_and_the_chain_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with router.open([Stamps(name="s1"), Hangs(), Stamps(name="s2")]) as r:
        start = trio.current_time()
        result = await r.route(Message("t", "x"))
        took = trio.current_time() - start
        stats = r.stats()["hangs"]
    assert result.status is Status.DELIVERED
    assert [m.body for m in result.messages] == ["x+s1+s2"]
    assert [(h.plugin, h.verdict) for h in result.trace] == [
        ("s1", "replace"),
        ("hangs", "skip"),
        ("s2", "replace"),
    ]
    assert "timed out after 2s" in result.trace[1].reason
    assert took == pytest.approx(2.0)
    assert (stats.timed_out, stats.failed) == (1, 1)


class Raises(Plugin):
    """A plain handler that raises."""

    name = "raises"

    @handles("t")
    def fail(self, msg: Message) -> None:
        raise RuntimeError("no disk")


async def test_a_sync_handler_that_raises_fails_the_message_with_its_error() -> None:
    async with router.open([Raises(), Stamps()]) as r:
        result = await r.route(Message("t", "x"))
        stats = r.stats()["raises"]
    assert result.status is Status.FAILED
    assert result.by == "raises"
    assert result.reason == "RuntimeError: no disk"
    assert [h.verdict for h in result.trace] == ["error"]
    assert (stats.handled, stats.failed) == (1, 1)


async def test_a_passed_deadline_fails_before_a_sync_handler_runs() -> None:
    stamps = Stamps()
    message = Message("t", "x", headers={Headers.DEADLINE: time.time() - 10})
    async with router.open([stamps]) as r:
        result = await r.route(message)
    assert result.status is Status.FAILED
    assert result.reason == "the message's deadline passed"


class Records(Plugin):
    """Records the order it sees messages in; plain or async by message type."""

    name = "records"
    concurrency = 1

    def __init__(self, seen: list[str], *, name: str) -> None:
        super().__init__(name=name)
        self.seen = seen

    @handles("sync")
    def now(self, msg: Message) -> Message:
        self.seen.append(f"{self.name}:{msg.id}")
        return Message(msg.type, [*msg.body, self.name], id=msg.id)

    @handles("async")
    async def later(self, msg: Message) -> Message:
        await trio.sleep(0.1 if int(msg.id) % 3 == 0 else 0)
        self.seen.append(f"{self.name}:{msg.id}")
        return Message(msg.type, [*msg.body, self.name], id=msg.id)


async def _items(messages: Sequence[Message]) -> AsyncIterator[Message]:
    for message in messages:
        yield message


@settings(max_examples=40)
@given(
    kinds=st.lists(st.sampled_from(["sync", "async"]), max_size=30),
    window=st.integers(min_value=1, max_value=8),
)
def test_mixed_sync_and_async_in_process_plugins_keep_input_order_and_one_result_each(
    kinds: list[str], window: int
) -> None:
    messages = [Message(kind, [], id=str(i)) for i, kind in enumerate(kinds)]
    seen: list[str] = []

    async def run() -> list[Any]:
        plugins = [Records(seen, name="p1"), Records(seen, name="p2")]
        async with router.open(plugins, max_in_flight=window) as r:
            return [res async for res in r.route_stream(_items(messages))]

    results = trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))
    assert [res.input_id for res in results] == [m.id for m in messages]
    assert all(res.status is Status.DELIVERED for res in results)
    assert [res.messages[0].body for res in results] == [["p1", "p2"]] * len(messages)
    # concurrency = 1: each plugin sees the inputs in input order.
    for name in ("p1", "p2"):
        assert [s.split(":")[1] for s in seen if s.startswith(name)] == [m.id for m in messages]


class Sleeps(Plugin):
    """An async handler that takes one second; eight at once."""

    name = "sleeps"
    concurrency = 8

    @handles("t")
    async def nap(self, msg: Message) -> None:
        await trio.sleep(1)


async def test_an_input_routed_by_its_puller_wakes_the_next_puller_once_it_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The first call is synchronous, so the worker that pulled each input routes it
    # itself; when the input then waits on the async plugin, pulling must go on.
    messages = [Message("t", "x", id=str(i)) for i in range(8)]

    async def late() -> AsyncIterator[Message]:
        # Every other worker is idle, waiting for its turn to pull, when inputs come.
        await trio.sleep(0.5)
        for message in messages:
            yield message

    async with router.open([Stamps(), Sleeps()], max_in_flight=8) as r:
        start = trio.current_time()
        results = [res async for res in r.route_stream(late())]
        took = trio.current_time() - start
    assert [res.input_id for res in results] == [m.id for m in messages]
    assert all(res.status is Status.DELIVERED for res in results)
    assert took == pytest.approx(1.5)  # all eight naps at once, not one after another


async def test_a_loop_of_synchronous_routes_still_lets_timeouts_and_other_tasks_run() -> None:
    class Tag(Plugin):
        name = "tag"

        @handles("x")
        def x(self, msg: Message) -> None:
            return None

    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await trio.sleep(0)

    routed = 0
    async with router.open(plugins=[Tag()]) as r, trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        with trio.move_on_after(0.05) as scope:
            while routed < 100_000:  # bounded: the timeout ends it long before this
                await r.route(Message("x", routed))
                routed += 1
        nursery.cancel_scope.cancel()
    assert scope.cancelled_caught
    assert turns > 1


async def test_a_plugin_that_overrides_handle_is_called_through_it_in_process() -> None:
    class Audited(Plugin):
        name = "audited"
        seen: int = 0

        @handles("x")
        def x(self, msg: Message) -> None:
            return None

        async def handle(self, message: Message) -> Reply:
            self.seen += 1
            if message.body == "deny":
                return drop("denied by the override")
            return await super().handle(message)

    plugin = Audited()
    async with router.open(plugins=[plugin]) as r:
        denied = await r.route(Message("x", "deny"))
        allowed = await r.route(Message("x", "ok"))
    assert (denied.status, denied.reason) == ("dropped", "denied by the override")
    assert allowed.status == "delivered"
    assert plugin.seen == 2


async def test_a_handle_subclass_that_wraps_call_sees_every_call() -> None:
    class Tag(Plugin):
        name = "tag"

        @handles("x")
        def x(self, msg: Message) -> None:
            return None

    calls: list[str] = []

    class Counting(InProcessHandle):
        async def call(self, message: Message) -> Reply:
            calls.append(message.id)
            return await super().call(message)

    async with router.open(plugins=[Counting(Tag())]) as r:
        result = await r.route(Message("x", 1, "m1"))
    assert result.status == "delivered"
    assert calls == ["m1"]


# -- the builtins' hot-path shortcuts keep their answers -------------------------

_RULE_TYPES = st.sampled_from(["container.create", "container.*", "*", "image.pull", "i?age.*"])
_MSG_TYPES = st.sampled_from(["container.create", "container.exec", "image.pull", "other"])


def _first_rule_answer(rules: Sequence[Rule], msg: Message) -> tuple[str, int | None]:
    """What authz answers by its documented rule: the first matching rule, else drop."""
    for rule in rules:
        if rule.matches(msg):
            return rule.action, rule.number
    return "deny", None


def _authz_answer(plugin: Authz, msg: Message) -> tuple[str, int | None]:
    reply = plugin.handle_now(msg)
    assert isinstance(reply, Reply)
    if reply.verdict == "continue":
        return "allow", None
    number = next((r.number for r in plugin.rules if f" rule {r.number}:" in reply.reason), None)
    return "deny", number


@settings(max_examples=100)
@given(
    rules=st.lists(
        st.tuples(
            st.sampled_from(["allow", "deny"]),
            _RULE_TYPES,
            st.sampled_from(["", "Image=bad/*", "HostConfig.Privileged=true"]),
        ),
        min_size=1,
        max_size=5,
    ),
    messages=st.lists(
        st.tuples(_MSG_TYPES, st.sampled_from(["bad/x", "good"]), st.booleans()),
        min_size=1,
        max_size=8,
    ),
    replaced=st.booleans(),
)
def test_authz_answers_by_the_first_matching_rule_whatever_it_memoised(
    rules: list[tuple[str, str, str]], messages: list[tuple[str, str, bool]], replaced: bool
) -> None:
    option = "; ".join(" ".join(w for w in rule if w) for rule in rules)
    plugin = Authz(option)
    if replaced:
        # Rules assigned after some messages: the memo of the old rules must not answer.
        for mtype, _, _ in messages:
            plugin.handle_now(Message(mtype, {}))
        plugin.rules = parse_rules("deny * Image=good; " + option)
    for mtype, image, privileged in [*messages, *messages]:  # twice: memoised the 2nd time
        msg = Message(mtype, {"Image": image, "HostConfig": {"Privileged": privileged}})
        action, number = _first_rule_answer(plugin.rules, msg)
        assert _authz_answer(plugin, msg) == (action, number if action == "deny" else None)


def test_authz_answers_stay_right_past_the_memo_limit() -> None:
    plugin = Authz("deny x.1*; allow x.*")
    for n in range(3000):
        reply = plugin.handle_now(Message(f"x.{n}", {}))
        assert isinstance(reply, Reply)
        assert (reply.verdict == "drop") == str(n).startswith("1"), n


_KEYS = st.sampled_from(["A", "B", "C"])
_LEAVES = st.one_of(
    st.none(), st.integers(0, 3), st.just("s"), st.lists(st.integers(0, 1), max_size=2)
)
_BODIES = st.recursive(
    _LEAVES, lambda inner: st.dictionaries(_KEYS, inner, max_size=3), max_leaves=8
)


def _reference_set(body: Any, path: tuple[str, ...], value: object) -> Any:
    """``set_field`` as documented, written the slow obvious way (deep copy, then set)."""
    new = copy.deepcopy(body)
    node = new
    for depth, key in enumerate(path[:-1]):
        if node.get(key) is None:
            node[key] = {}
        elif not isinstance(node[key], dict):
            raise FieldPathError(f"{'.'.join(path[: depth + 1])} is a {type(node[key]).__name__}")
        node = node[key]
    node[path[-1]] = value
    return new


@settings(max_examples=150)
@given(
    body=st.dictionaries(_KEYS, _BODIES, max_size=3), path=st.lists(_KEYS, min_size=1, max_size=4)
)
def test_set_field_sets_the_path_copying_only_what_it_changes(
    body: dict[str, Any], path: list[str]
) -> None:
    keys = tuple(path)
    before = copy.deepcopy(body)
    try:
        want = _reference_set(body, keys, "v")
    except FieldPathError as exc:
        with pytest.raises(FieldPathError) as raised:
            set_field(body, keys, "v")
        assert str(raised.value).startswith(str(exc))
        assert body == before
        return
    got = set_field(body, keys, "v")
    assert got == want
    assert body == before  # the original is never changed
    # Off the path, the very same objects are shared.
    for key, old in body.items():
        if key != keys[0]:
            assert got[key] is old
