"""ExecHandle.submit and application layer v2, against a real v2 peer process over FD 3/4.

tests/v2_peer.py says in each answer which ``call`` request (batch) carried the call and
how many calls that request held, so these tests see the frames the router sent. Tests
where time matters run on the autojump clock (the peer's handle has no timeouts of its
own, see ``exec_helpers.peer``); they must not use ``fail_after``: the clock jumps while
the real process works.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from exec_helpers import peer, running
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_sdk import Message, Reply, Verdict
from router.exec import ExecHandle, ExecState, PluginCrashed, RestartPolicy

Outcome = tuple[Reply | None, str | None, bool]


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """Virtual time that jumps ahead whenever every task waits (pytest-trio uses it)."""
    return trio.testing.MockClock(autojump_threshold=0)


class Outcomes:
    """Collects ``done`` calls per submitted call, to check each comes exactly once."""

    def __init__(self) -> None:
        self.got: dict[str, list[Outcome]] = {}
        self._changed = trio.Event()

    def done_for(self, key: str) -> Any:
        """The ``done`` callback for the call named ``key``."""
        self.got.setdefault(key, [])

        def done(reply: Reply | None, error: str | None, timed_out: bool) -> None:
            self.got[key].append((reply, error, timed_out))
            self._changed.set()
            self._changed = trio.Event()

        return done

    def submit(self, handle: ExecHandle, message: Message, expires: float = math.inf) -> None:
        """Submit ``message`` (named by its id)."""
        handle.submit(message, expires, self.done_for(message.id))

    async def wait(self, *keys: str) -> None:
        """Wait until every call named has an outcome."""
        while not all(self.got.get(key) for key in keys):
            await self._changed.wait()

    def only(self, key: str) -> Outcome:
        """The one outcome of ``key`` (fails if it has none or several)."""
        outcomes = self.got[key]
        assert len(outcomes) == 1, outcomes
        return outcomes[0]

    def body(self, key: str) -> dict[str, Any]:
        """The body of the one message the reply to ``key`` carries."""
        reply, error, timed_out = self.only(key)
        assert reply is not None, (error, timed_out)
        body: dict[str, Any] = reply.messages[0].body
        return body


def msg(kind: str, key: str, body: object = None) -> Message:
    """A message whose id is ``key`` (the tests name calls by id)."""
    return Message(kind, body, id=key)


async def test_submit_completes_a_call_later_never_inside_submit() -> None:
    async with running(peer()) as handle:
        outcomes = Outcomes()
        outcomes.submit(handle, msg("echo", "a", 1))
        assert outcomes.got["a"] == []
        await outcomes.wait("a")
        assert outcomes.body("a")["body"] == 1
        assert outcomes.only("a")[1:] == (None, False)
        await trio.testing.wait_all_tasks_blocked()
        assert len(outcomes.got["a"]) == 1


@pytest.mark.parametrize(
    ("count", "batches"),
    [
        (10, [(2, 10)] * 10),
        # Sixteen at a time as they are made: the plugin starts on the first calls while
        # the router is making the rest, rather than the two taking turns a round each.
        (40, [(2, 16)] * 16 + [(3, 16)] * 16 + [(4, 8)] * 8),
    ],
)
async def test_calls_made_in_one_round_to_a_busy_plugin_go_out_together_sixteen_at_most(
    count: int, batches: list[tuple[int, int]]
) -> None:
    async with running(peer("concurrency=64")) as handle:
        outcomes = Outcomes()
        outcomes.submit(handle, msg("hold", "held"))
        keys = [f"m{i}" for i in range(count)]
        for key in keys:
            outcomes.submit(handle, msg("echo", key))
        await outcomes.wait(*keys)
        assert [(outcomes.body(k)["batch"], outcomes.body(k)["size"]) for k in keys] == batches
        outcomes.submit(handle, msg("release", "release", {"order": [0], "groups": [1]}))
        await outcomes.wait("held", "release")


async def test_a_call_to_an_idle_plugin_goes_out_at_once_and_the_rest_of_its_round_together() -> (
    None
):
    async with running(peer()) as handle:
        outcomes = Outcomes()
        keys = [f"m{i}" for i in range(5)]
        for key in keys:
            outcomes.submit(handle, msg("echo", key))
        await outcomes.wait(*keys)
        batches = [(outcomes.body(k)["batch"], outcomes.body(k)["size"]) for k in keys]
        assert batches == [(1, 1)] + [(2, 4)] * 4


async def answer_in_order(order: list[int], groups: list[int]) -> None:
    """Hold ``len(order)`` calls, have them answered in ``order`` and ``groups``."""
    async with running(peer()) as handle:
        outcomes = Outcomes()
        keys = [f"h{i}" for i in range(len(order))]
        for i, key in enumerate(keys):
            outcomes.submit(handle, msg("hold", key, i))
        outcomes.submit(handle, msg("release", "release", {"order": order, "groups": groups}))
        await outcomes.wait("release", *keys)
        for i, key in enumerate(keys):
            assert outcomes.body(key)["body"] == i
            assert outcomes.only(key)[0] is not None
            (echoed,) = outcomes.only(key)[0].messages  # type: ignore[union-attr]
            assert echoed.id == key


@st.composite
def orders_and_groups(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """A permutation of up to 8 calls and a split of it into groups (replies messages)."""
    n = draw(st.integers(1, 8))
    order = draw(st.permutations(list(range(n))))
    groups: list[int] = []
    left = n
    while left:
        group = draw(st.integers(1, left))
        groups.append(group)
        left -= group
    return list(order), groups


@settings(max_examples=12)
@given(orders_and_groups())
def test_answers_in_any_order_and_grouping_reach_their_own_calls(
    case: tuple[list[int], list[int]],
) -> None:
    # A fresh process per example: each example is its own trio run.
    trio.run(answer_in_order, *case)


async def _one_round(bodies: list[object]) -> list[tuple[int, int, int]]:
    """Submit a round of ``measure`` calls behind a held one (so the plugin is busy and
    they queue together); return each call's (body length, calls in its request, request
    number), as the peer saw them."""
    async with running(peer()) as handle:
        outcomes = Outcomes()
        outcomes.submit(handle, msg("hold", "held"))
        keys = [f"m{i}" for i in range(len(bodies))]
        for key, body in zip(keys, bodies, strict=True):
            outcomes.submit(handle, msg("measure", key, body))
        await outcomes.wait(*keys)
        seen = [outcomes.body(k) for k in keys]
        outcomes.submit(handle, msg("release", "release", {"order": [0], "groups": [1]}))
        await outcomes.wait("held", "release")
    return [(b["body"], b["size"], b["batch"]) for b in seen]


async def test_a_round_of_calls_too_large_for_one_frame_goes_out_in_several() -> None:
    # 8 x 300 kB, in bodies whose size the router does not guess before encoding (a
    # list): over the 1 MiB frame limit in one request, so halved until under it: four.
    seen = await _one_round([["x" * 300_000] for _ in range(8)])
    assert [(length, size) for length, size, _ in seen] == [(1, 2)] * 8
    assert sorted({batch for _, _, batch in seen}) == [2, 3, 4, 5]


async def test_big_bodies_go_out_a_few_calls_per_request() -> None:
    # Bytes and text bodies are weighed before sending: ~64 KiB of them per request.
    seen = await _one_round(["x" * 30_000 for _ in range(6)])
    assert [(length, size) for length, size, _ in seen] == [(30_000, 2)] * 6
    assert sorted({batch for _, _, batch in seen}) == [2, 3, 4]


async def test_a_call_too_large_for_any_frame_fails_alone_and_the_plugin_is_kept() -> None:
    async with running(peer()) as handle:
        pid = handle.pid
        outcomes = Outcomes()
        outcomes.submit(handle, msg("hold", "held"))
        outcomes.submit(handle, msg("measure", "small", "x"))
        outcomes.submit(handle, msg("measure", "huge", "x" * 2_000_000))
        outcomes.submit(handle, msg("measure", "after", "xy"))
        await outcomes.wait("small", "huge", "after")
        reply, error, timed_out = outcomes.only("huge")
        assert reply is None and not timed_out
        assert error is not None and error.startswith(
            "ExecError: plugin 'v2peer': could not send the call: "
        )
        assert "max_frame" in error
        assert [outcomes.body(k)["body"] for k in ("small", "after")] == [1, 2]
        outcomes.submit(handle, msg("release", "release", {"order": [0], "groups": [1]}))
        await outcomes.wait("held", "release")
        assert handle.pid == pid and handle.restarts == 0


async def test_a_duplicate_answer_is_ignored() -> None:
    async with running(peer()) as handle:
        outcomes = Outcomes()
        outcomes.submit(handle, msg("twice", "t"))
        outcomes.submit(handle, msg("echo", "e"))
        await outcomes.wait("t", "e")
        await outcomes.wait("t", "e")
        outcomes.submit(handle, msg("echo", "after"))
        await outcomes.wait("after")
        assert len(outcomes.got["t"]) == 1
        assert handle.restarts == 0


async def test_a_call_that_expires_times_out_and_the_plugin_is_pinged_and_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(peer()) as handle:
        pid = handle.pid
        outcomes = Outcomes()
        start = trio.current_time()
        outcomes.submit(handle, msg("never", "n"), start + 5.0)
        await outcomes.wait("n")
        assert outcomes.only("n") == (None, None, True)
        assert trio.current_time() - start == pytest.approx(5.0)
        # The hang check's ping is queued by the time the first call after it has been
        # answered, so the peer has answered it when it handles the second.
        await handle.call(msg("echo", "first"))
        reply = await handle.call(msg("echo", "second"))
        assert reply.messages[0].body["pings"] == 1
        assert handle.pid == pid and handle.restarts == 0


async def test_a_late_answer_after_a_timeout_is_ignored_and_the_plugin_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(peer()) as handle:
        pid = handle.pid
        outcomes = Outcomes()
        outcomes.submit(handle, msg("hold", "late"), trio.current_time() + 1.0)
        await outcomes.wait("late")
        outcomes.submit(handle, msg("release", "release", {"order": [0], "groups": [1]}))
        await outcomes.wait("release")
        assert outcomes.got["late"] == [(None, None, True)]
        assert outcomes.body("release")["pid"] == pid
        assert handle.state is ExecState.READY and handle.restarts == 0


async def test_a_cancelled_call_is_given_up_its_late_answer_ignored_and_the_plugin_pinged(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(peer()) as handle:
        pid = handle.pid
        with trio.move_on_after(1.0) as scope:  # the engine's per-call timeout, in effect
            await handle.call(msg("hold", "held"))
        assert scope.cancelled_caught
        release = msg("release", "release", {"order": [0], "groups": [1]})
        assert (await handle.call(release)).messages[0].body["pid"] == pid
        reply = await handle.call(msg("echo", "second"))
        assert reply.messages[0].body["pings"] == 1
        assert handle.restarts == 0


async def test_a_given_up_call_still_counts_against_the_plugins_concurrency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(peer("concurrency=3")) as handle:
        outcomes = Outcomes()
        soon = trio.current_time() + 1.0
        outcomes.submit(handle, msg("hold", "h0"), soon)
        outcomes.submit(handle, msg("hold", "h1"), soon)
        await outcomes.wait("h0", "h1")
        keys = [f"m{i}" for i in range(4)]
        for key in keys:
            outcomes.submit(handle, msg("echo", key))
        await outcomes.wait(*keys)
        # One slot was free: the calls went one at a time, never above 3 at the peer.
        assert [outcomes.body(k)["size"] for k in keys] == [1, 1, 1, 1]
        assert max(outcomes.body(k)["unanswered"] for k in keys) == 3
        outcomes.submit(handle, msg("release", "release", {"order": [1, 0], "groups": [2]}))
        await outcomes.wait("release")
        assert outcomes.body("release")["unanswered"] == 1


async def _poll_real_time(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll ``condition`` for up to ``seconds`` of real time, under the autojump clock.

    ``wait_until`` cannot serve here: its timeout is on the virtual clock, which jumps
    to it whenever the test waits on the real process. The caller asserts what it
    waited for.
    """
    give_up_at = time.monotonic() + seconds
    while not condition() and time.monotonic() < give_up_at:
        await trio.sleep(0.001)


async def _starve_behind_a_held_call(handle: ExecHandle, waits: float) -> Outcomes:
    """Hold the plugin's one place with a call given up on, then starve a call behind it.

    The starved call waits ``waits`` seconds (virtual) for the place, then times out.
    """
    outcomes = Outcomes()
    outcomes.submit(handle, msg("hold", "held"), trio.current_time() + 1.0)
    await outcomes.wait("held")
    assert outcomes.only("held") == (None, None, True)
    outcomes.submit(handle, msg("echo", "starved"), trio.current_time() + waits)
    await outcomes.wait("starved")
    assert outcomes.only("starved") == (None, None, True)
    return outcomes


async def test_a_plugin_whose_places_are_all_held_by_calls_given_up_on_is_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The peer answers pings while it holds a call forever: the hang check keeps it.
    # But its one place stays taken, so a newer call can only time out waiting for it.
    async with running(peer("concurrency=1")) as handle:
        grace = handle.info.timeout
        first_pid = handle.pid
        outcomes = await _starve_behind_a_held_call(handle, grace + 1.0)
        await _poll_real_time(lambda: handle.restarts > 0)
        assert handle.restarts == 1
        outcomes.submit(handle, msg("echo", "after"))
        await outcomes.wait("after")
        assert outcomes.body("after")["pid"] == handle.pid != first_pid
        assert handle.last_error == (
            "wedged: its one call place is held by a call given up on,"
            f" still unfinished {grace:g}s later when a newer call timed out waiting for it"
        )


async def test_a_plugin_given_less_than_its_timeout_to_finish_a_given_up_call_is_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(peer("concurrency=1")) as handle:
        grace = handle.info.timeout
        pid = handle.pid
        # Starved sooner than the plugin's timeout after the held call was given up.
        await _starve_behind_a_held_call(handle, grace / 2)
        await trio.sleep(grace)  # a kill would have been seen by now
        assert handle.restarts == 0 and handle.state is ExecState.READY
        assert handle.pid == pid


async def test_a_call_given_up_on_is_cancelled_at_a_plugin_naming_the_feature(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The peer answers a cancelled held call at once: its one place frees, so the call
    # behind it is served (and no wedge, no restart), and it saw exactly one cancel.
    async with running(peer("concurrency=1", "cancel=1")) as handle:
        assert handle.features == ("cancel",)  # as it named them (routerctl shows them)
        pid = handle.pid
        outcomes = Outcomes()
        outcomes.submit(handle, msg("hold", "held"), trio.current_time() + 1.0)
        # No deadline of its own: the virtual clock would jump to it while the process
        # works. Without the cancel it would wait for ever, so the wait is bounded in
        # real time.
        outcomes.submit(handle, msg("echo", "behind"))
        await _poll_real_time(lambda: bool(outcomes.got["behind"]))
        assert outcomes.only("held") == (None, None, True)
        assert outcomes.body("behind")["cancels"] == [[1]]
        assert handle.restarts == 0 and handle.pid == pid


async def test_a_plugin_not_naming_the_feature_is_sent_no_cancel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(peer("concurrency=2")) as handle:
        assert handle.features == ()
        outcomes = Outcomes()
        outcomes.submit(handle, msg("hold", "held"), trio.current_time() + 1.0)
        await outcomes.wait("held")
        outcomes.submit(handle, msg("echo", "after"))
        await outcomes.wait("after")
        assert outcomes.body("after")["cancels"] == []


async def test_a_crash_mid_batch_ends_every_call_of_it_exactly_once() -> None:
    async with running(peer()) as handle:
        outcomes = Outcomes()
        keys = ["held", "before", "exit", "after"]
        for key in keys:
            outcomes.submit(handle, msg("hold" if key == "held" else key, key))
        await outcomes.wait(*keys)
        for key in keys:
            reply, error, timed_out = outcomes.only(key)
            assert reply is None and not timed_out
            assert error == "PluginCrashed: plugin 'v2peer' exited with status 3"
        # A call made now waits for the restart (due long before its deadline: none).
        outcomes.submit(handle, msg("echo", "again"))
        await outcomes.wait("again")
        assert outcomes.body("again")["pid"] == handle.pid
        assert handle.restarts == 1


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("unknown-id", "answered call 1001, which was never made"),
        ("malformed", "sent a malformed answer: answer 1: verdict must be one of"),
        ("close-control", "closed its control channel with 1 calls unanswered"),
    ],
)
async def test_a_protocol_violation_in_the_answers_crashes_and_restarts_the_plugin(
    kind: str, text: str
) -> None:
    async with running(peer()) as handle:
        first_pid = handle.pid
        outcomes = Outcomes()
        outcomes.submit(handle, msg(kind, "bad"))
        await outcomes.wait("bad")
        reply, error, timed_out = outcomes.only("bad")
        assert reply is None and not timed_out and error is not None
        assert error.startswith("PluginProtocolError: plugin 'v2peer' ")
        assert text in error
        outcomes.submit(handle, msg("echo", "again"))
        await outcomes.wait("again")
        assert outcomes.body("again")["pid"] == handle.pid != first_pid
        assert text in handle.last_error


async def test_a_call_whose_expiry_comes_before_the_restart_is_refused_not_sent() -> None:
    # The real clock: a restart is a real process starting, which the autojump clock
    # would not wait for.
    slow = RestartPolicy(backoff_initial=30.0, backoff_max=30.0)
    async with running(peer(restart=slow)) as handle:
        with pytest.raises(PluginCrashed):
            await handle.call(msg("exit", "x"))
        outcomes = Outcomes()
        outcomes.submit(handle, msg("echo", "soon"), trio.current_time() + 10.0)
        assert outcomes.got["soon"] == []
        await outcomes.wait("soon")
        reply, error, timed_out = outcomes.only("soon")
        assert reply is None and not timed_out
        assert error is not None and error.startswith(
            "PluginUnavailable: plugin 'v2peer' is restarting, in "
        )
        assert "(last error: exited with status 3)" in error


async def test_a_call_made_while_the_plugin_restarts_reaches_the_restarted_plugin() -> None:
    async with running(peer()) as handle:
        first_pid = handle.pid
        with pytest.raises(PluginCrashed):
            await handle.call(msg("exit", "x"))
        outcomes = Outcomes()
        outcomes.submit(handle, msg("echo", "later"), trio.current_time() + 30.0)
        assert outcomes.got["later"] == []
        await outcomes.wait("later")
        assert outcomes.body("later")["pid"] == handle.pid != first_pid


async def test_calls_to_a_quarantined_plugin_are_refused_later_not_inside_submit() -> None:
    once = RestartPolicy(quarantine_after=1)
    async with running(peer(restart=once)) as handle:
        with pytest.raises(PluginCrashed):
            await handle.call(msg("exit", "x"))
        outcomes = Outcomes()
        outcomes.submit(handle, msg("echo", "q"))
        assert outcomes.got["q"] == []
        await outcomes.wait("q")
        assert handle.state is ExecState.QUARANTINED
        reply, error, timed_out = outcomes.only("q")
        assert reply is None and not timed_out
        assert error is not None and error.startswith(
            "PluginUnavailable: plugin 'v2peer' is quarantined (last error: exited with status 3"
        )


async def test_calls_to_a_stopped_plugin_are_refused_later_not_inside_submit() -> None:
    handle = peer()
    async with running(handle):
        pass
    outcomes = Outcomes()
    outcomes.submit(handle, msg("echo", "s"))
    assert outcomes.got["s"] == []
    await outcomes.wait("s")
    assert outcomes.only("s") == (None, "PluginUnavailable: plugin 'v2peer' is stopped", False)


async def test_a_failing_done_callback_is_logged_and_the_other_calls_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="chanrouter.exec")

    def broken(reply: Reply | None, error: str | None, timed_out: bool) -> None:
        raise RuntimeError("a bug in the caller")

    async with running(peer()) as handle:
        outcomes = Outcomes()
        outcomes.submit(handle, msg("hold", "held"))
        handle.submit(msg("echo", "broken"), math.inf, broken)
        outcomes.submit(handle, msg("echo", "fine"))
        await outcomes.wait("fine")
        outcomes.submit(handle, msg("release", "release", {"order": [0], "groups": [1]}))
        await outcomes.wait("held", "release")
        assert outcomes.body("fine")["batch"] == 2
        assert handle.restarts == 0
    failures = [r for r in caplog.records if "completing a call" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and "a bug in the caller" in str(
        failures[0].exc_info[1]
    )


async def test_verdicts_and_reasons_cross_in_answers() -> None:
    async with running(peer()) as handle:
        assert await handle.call(msg("drop", "d", "not today")) == Reply(
            Verdict.DROP, (), "not today"
        )
        assert await handle.call(msg("error", "e", "nope")) == Reply(Verdict.ERROR, (), "nope")
