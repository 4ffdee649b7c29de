"""A reference model of the routing rules (docs/ROUTING.md), for tests only.

Written from the document, not from router.pipeline: one plain recursive walk,
depth first in reply order, that stops the whole input at the first failure. It
shares no code with the implementation (even the glob matching is its own), so
agreement between the two on random plugin sets means something.

Also here: random "scripted" plugin sets for hypothesis, as plain data, and the
pure function that answers a call from a script (used by the model, by the pure
core driver and, through tests/fake_plugins.py, by the trio engine).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from plugin_sdk import Message, OnError, PluginInfo, Reply, Verdict

TYPES = ("a.x", "a.y", "b.x", "b.y")
PATTERNS = (*TYPES, "a.*", "b.*", "*.x", "*")

# A scripted action, keyed by the type a plugin is handed:
#   ("emit", types)     CONTINUE with one new message per listed type
#   ("drop", types)     DROP, with one new message per listed type
#   ("error",)          an ERROR reply
#   ("raise",)          the call raises (pure core: an error text)
#   ("flaky", n, types) fails on attempts 1..n, then behaves like ("emit", types)
Action = tuple[object, ...]


class ScriptedFailure(Exception):
    """What a scripted ("raise",) action raises."""


@dataclass(frozen=True)
class ScriptedPlugin:
    """One plugin of a random set: its info and what it does per message type."""

    info: PluginInfo
    actions: Mapping[str, Action] = field(default_factory=dict)


def answer(plugin: ScriptedPlugin, message: Message, attempt: int) -> Reply | Exception:
    """What ``plugin``'s script answers for ``message`` on try ``attempt``."""
    action = plugin.actions.get(message.type, ("emit", ()))
    kind = action[0]
    if kind == "error":
        return Reply(Verdict.ERROR, (), f"{plugin.info.name} refused {message.type}")
    if kind == "raise":
        return ScriptedFailure(f"{plugin.info.name} crashed on {message.type}")
    if kind == "flaky":
        n, types = action[1], action[2]
        assert isinstance(n, int)
        if attempt <= n:
            return Reply(Verdict.ERROR, (), f"{plugin.info.name} flaked on try {attempt}")
        action = ("emit", types)
    types = action[1]
    assert isinstance(types, tuple)
    made = tuple(
        Message(str(t), f"{message.body}/{plugin.info.name}{i}") for i, t in enumerate(types)
    )
    verdict = Verdict.DROP if action[0] == "drop" else Verdict.CONTINUE
    return Reply(verdict, made, f"{plugin.info.name} said {action[0]}")


@st.composite
def scripted_plugins(draw: st.DrawFn, max_plugins: int = 5) -> list[ScriptedPlugin]:
    """A random plugin set: patterns, priorities, policies and per-type scripts."""
    count = draw(st.integers(1, max_plugins))
    plugins = []
    type_lists = st.lists(st.sampled_from(TYPES), max_size=3).map(tuple)
    action = st.one_of(
        st.tuples(st.just("emit"), type_lists),
        st.tuples(st.just("drop"), type_lists),
        st.just(("error",)),
        st.just(("raise",)),
        st.tuples(st.just("flaky"), st.integers(1, 3), type_lists),
    )
    for n in range(count):
        info = PluginInfo(
            name=f"p{n}",
            accepts=tuple(draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2))),
            priority=draw(st.integers(-1, 1)),
            on_error=draw(st.sampled_from(list(OnError))),
            max_attempts=draw(st.integers(1, 3)),
            concurrency=draw(st.integers(1, 3)),
        )
        actions = draw(st.dictionaries(st.sampled_from(TYPES), action, max_size=4))
        plugins.append(ScriptedPlugin(info, actions))
    return plugins


@dataclass
class ModelResult:
    """What the model says one input ends in."""

    status: str
    by: str | None
    reason: str
    outputs: list[tuple[str, object, list[list[str]]]]
    """(type, body, lineage) of each final message, in output order."""
    trace: list[tuple[str, str, str]]
    """(plugin, type, verdict) of each hop, in trace order."""


class _Failed(Exception):
    def __init__(self, plugin: str, reason: str) -> None:
        self.plugin = plugin
        self.reason = reason


def _accepts(info: PluginInfo, message_type: str) -> bool:
    return any(
        pattern == message_type or fnmatch.fnmatchcase(message_type, pattern)
        for pattern in info.accepts
    )


def model_route(
    plugins: Sequence[ScriptedPlugin],
    message: Message,
    *,
    hop_limit: int = 16,
    max_messages: int = 1024,
    respond: Callable[[ScriptedPlugin, Message, int], Reply | Exception] = answer,
) -> ModelResult:
    """Route ``message`` through ``plugins`` (registration order) by the rules."""
    ranked = [
        p for _, p in sorted(enumerate(plugins), key=lambda ip: (-ip[1].info.priority, ip[0]))
    ]
    outputs: list[tuple[str, object, list[list[str]]]] = []
    trace: list[tuple[str, str, str]] = []
    own_finished = False
    own_drops: list[tuple[str, str]] = []
    budget = [max_messages - 1]

    def pipeline(message_type: str) -> list[ScriptedPlugin]:
        return [p for p in ranked if _accepts(p.info, message_type)]

    def walk(msg: Message, rest: list[ScriptedPlugin], lineage: list[list[str]]) -> None:
        nonlocal own_finished
        if not rest:
            outputs.append((msg.type, msg.body, lineage))
            own_finished = own_finished or not lineage
            return
        plugin, info = rest[0], rest[0].info
        attempt = 1
        while True:
            out = respond(plugin, msg, attempt)
            if isinstance(out, Reply) and out.verdict != Verdict.ERROR:
                break
            why = out.reason if isinstance(out, Reply) else f"{type(out).__name__}: {out}"
            if info.on_error == OnError.RETRY and attempt < info.max_attempts:
                trace.append((info.name, msg.type, "retry"))
                attempt += 1
                continue
            if info.on_error == OnError.SKIP:
                trace.append((info.name, msg.type, "skip"))
                walk(msg, rest[1:], lineage)
                return
            if info.on_error == OnError.RETRY:
                why += f" (gave up after {attempt} attempts)"
            trace.append((info.name, msg.type, "error"))
            raise _Failed(info.name, why)
        same = [m for m in out.messages if m.type == msg.type]
        if out.verdict == Verdict.DROP:
            verdict = "drop"
            todo = [m for m in out.messages if m.type != msg.type]
        else:
            verdict = ["pass", "replace"][len(same)] if len(same) < 2 else "fan-out"
            todo = list(out.messages)
        steps: list[tuple[Message, list[ScriptedPlugin], list[list[str]]]] = []
        if verdict == "pass":
            steps.append((msg, rest[1:], lineage))
        for m in todo:
            if m.type == msg.type:
                steps.append((m, rest[1:], lineage))
            else:
                longer = [*lineage, [msg.type, info.name]]
                if len(longer) > hop_limit:
                    trace.append((info.name, msg.type, "loop"))
                    raise _Failed(info.name, "routing loop")
                steps.append((m, pipeline(m.type), longer))
            budget[0] -= 1
            if budget[0] < 0:
                trace.append((info.name, msg.type, "overflow"))
                raise _Failed(info.name, "message limit exceeded")
        trace.append((info.name, msg.type, verdict))
        if verdict == "drop" and not lineage:
            own_drops.append((info.name, out.reason))
        for m, todo_plugins, m_lineage in steps:
            walk(m, todo_plugins, m_lineage)

    try:
        walk(message, pipeline(message.type), [])
    except _Failed as failed:
        return ModelResult("failed", failed.plugin, failed.reason, [], trace)
    if own_finished:
        return ModelResult("delivered", None, "", outputs, trace)
    by, reason = own_drops[0]
    return ModelResult("dropped", by, reason, outputs, trace)


def drive_routing(
    routing: Any,
    respond: Callable[[Any], Reply | Exception],
    pick: Callable[[int], int] = lambda n: n - 1,
    *,
    max_steps: int = 100_000,
) -> Any:
    """Run a :class:`router.pipeline.Routing` to its result, without an event loop.

    ``respond(call)`` answers each call; ``pick(n)`` chooses which of the ``n`` open
    calls completes next. Open calls are a stack with each new batch pushed in
    reverse, so the default (the last) is the depth-first order the model walks in.
    """
    from router.pipeline import Call, Routing

    assert isinstance(routing, Routing)
    open_calls: list[Call] = []
    for _ in range(max_steps):
        open_calls.extend(reversed(routing.pending()))
        if routing.done:
            return routing.result()
        call = open_calls.pop(pick(len(open_calls)))
        out = respond(call)
        if isinstance(out, Exception):
            routing.complete(call.token, None, duration=0.0, error=f"{type(out).__name__}: {out}")
        else:
            routing.complete(call.token, out, duration=0.0)
    raise AssertionError("routing did not terminate")


def observed(result: object) -> ModelResult:
    """A router :class:`~router.result.Result` in the model's terms, for comparison."""
    from router.result import Result

    assert isinstance(result, Result)
    return ModelResult(
        status=str(result.status),
        by=result.by,
        reason=result.reason,
        outputs=[(m.type, m.body, m.headers.get("lineage", [])) for m in result.messages],
        trace=[(h.plugin, h.type, str(h.verdict)) for h in result.trace],
    )


def assert_agrees(got: ModelResult, want: ModelResult, *, exact_failure: bool = True) -> None:
    """Check a router result against the model's.

    Loop and message-limit failures are compared by the start of their reason (the
    model does not spell out the cycle). With ``exact_failure=False`` (calls completed
    in an arbitrary order) a message-limit failure on either side only has to agree
    on the status: which message crosses the limit first depends on that order.
    """
    assert got.status == want.status, (got, want)
    limits = ("message limit exceeded", "routing loop")
    if not exact_failure and "message limit exceeded" in (got.reason[:22], want.reason[:22]):
        return
    if want.reason.startswith(limits):
        assert got.reason.startswith(want.reason), (got, want)
        assert (got.by, got.outputs, got.trace) == (want.by, want.outputs, want.trace)
    else:
        assert got == want
