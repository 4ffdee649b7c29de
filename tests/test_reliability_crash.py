"""Crash under load: a 3-plugin pipeline of real subprocess plugins, one SIGKILLed repeatedly.

The middle plugin ``b`` is killed after every tenth of the input (each time once it is
ready again), while inputs keep streaming in. Whatever the on-error policy, every input
gets exactly one result, in input order, and no output is stamped twice by one plugin.
(The retry variant found that retries did not wait for the restarted plugin;
ExecHandle.call now does, within the call timeout.)
The router runs in process (so the test can read ``b``'s pid and give it a restart policy
that never quarantines: routerd's default quarantines the fifth crash within a minute).
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Sequence

import pytest
import trio
from exec_helpers import wait_for_state
from reliability_helpers import worker_cmd

from plugin_sdk import Message
from router import Result, Router, Status
from router.exec import ExecHandle, ExecState, RestartPolicy

NEVER_QUARANTINE = RestartPolicy(backoff_initial=0.0, backoff_max=0.05, quarantine_after=10_000)
"""Restart at once, every time: the test is about messages, not about giving up."""

DEFAULT_COUNT = 1_000
SLOW_COUNT = 5_000


def _pipeline(policy: str) -> list[ExecHandle]:
    return [
        ExecHandle(
            worker_cmd(f"name={name} on_error={policy} max_attempts=5 concurrency=4"),
            restart=NEVER_QUARANTINE,
            stop_timeout=2.0,
            kill_timeout=1.0,
        )
        for name in "abc"
    ]


async def _route_while_killing(
    handles: Sequence[ExecHandle], count: int
) -> tuple[list[Result], list[int]]:
    """Route ``count`` jobs; SIGKILL ``handles[1]`` after each tenth of them is fed in."""
    victim = handles[1]
    killed: list[int] = []

    async def inputs() -> AsyncIterator[Message]:
        every = max(count // 10, 1)
        for i in range(count):
            if i and i % every == 0:
                # Kill a ready process, not one still starting: each kill is a crash
                # with calls in flight, and inputs keep coming while it restarts.
                await wait_for_state(victim, ExecState.READY)
                assert victim.pid is not None
                killed.append(victim.pid)
                os.kill(victim.pid, signal.SIGKILL)
            yield Message("job", {}, id=f"m-{i:05d}")

    results: list[Result] = []
    with trio.fail_after(120):
        async with Router(handles, max_in_flight=64) as router:
            async for result in router.route_stream(inputs()):
                results.append(result)
    return results, killed


def _check_one_result_each(results: Sequence[Result], count: int) -> None:
    assert [r.input_id for r in results] == [f"m-{i:05d}" for i in range(count)]
    for result in results:
        if result.status is Status.DELIVERED:
            # Exactly one output per input, and no plugin applied twice to it.
            assert [m.id for m in result.messages] == [result.input_id]
            seen = result.messages[0].body["seen"]
            assert len(seen) == len(set(seen)), result


async def _fail_policy(count: int) -> None:
    handles = _pipeline("fail")
    results, killed = await _route_while_killing(handles, count)
    assert len(killed) == 9
    _check_one_result_each(results, count)
    failed = [r for r in results if r.status is Status.FAILED]
    assert failed, "killing a plugin with calls in flight failed nothing"
    for result in failed:
        assert result.by == "b", result
        assert "'b'" in result.reason
    for result in results:
        if result.status is Status.DELIVERED:
            assert result.messages[0].body["seen"] == ["a", "b", "c"]
    assert handles[1].restarts >= len(killed)


async def test_crashes_under_load_with_on_error_fail_give_one_result_each_naming_the_plugin() -> (
    None
):
    await _fail_policy(DEFAULT_COUNT)


@pytest.mark.slow
async def test_crashes_under_load_with_on_error_fail_5000_messages() -> None:
    await _fail_policy(SLOW_COUNT)


async def test_crashes_under_load_with_on_error_skip_deliver_everything_once() -> None:
    handles = _pipeline("skip")
    results, killed = await _route_while_killing(handles, DEFAULT_COUNT)
    assert len(killed) == 9
    _check_one_result_each(results, DEFAULT_COUNT)
    assert all(r.status is Status.DELIVERED for r in results)
    skipped = 0
    for result in results:
        seen = result.messages[0].body["seen"]
        b_verdicts = [hop.verdict for hop in result.trace if hop.plugin == "b"]
        if b_verdicts == ["skip"]:
            skipped += 1
            assert seen == ["a", "c"]
        else:
            assert seen == ["a", "b", "c"], result
    assert skipped, "no message was in flight to b when it was killed"


async def _retry_policy(count: int) -> None:
    handles = _pipeline("retry")
    results, killed = await _route_while_killing(handles, count)
    assert len(killed) == 9
    _check_one_result_each(results, count)
    not_delivered = [r for r in results if r.status is not Status.DELIVERED]
    assert not not_delivered, f"{len(not_delivered)} failed, e.g. {not_delivered[0]}"
    for result in results:
        assert result.messages[0].body["seen"] == ["a", "b", "c"]
    # Some inputs were in flight at a kill and went through b again: at-least-once
    # execution, still exactly one result (and one output) each.
    retried = [r for r in results if any(h.verdict == "retry" for h in r.trace)]
    assert retried, "no call was in flight to b when it was killed"


async def test_crashes_under_load_with_on_error_retry_lose_nothing() -> None:
    await _retry_policy(DEFAULT_COUNT)


@pytest.mark.slow
async def test_crashes_under_load_with_on_error_retry_5000_messages() -> None:
    await _retry_policy(SLOW_COUNT)
