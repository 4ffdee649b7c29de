"""Hangs and slowness: the per-call timeout fails (or skips) one message; only a plugin that
also ignores pings is restarted, and the other plugins never notice.

Real subprocess plugins: ``tests/plugins/scripted.py`` (``hang`` blocks its whole event
loop, ``delay`` sleeps without blocking) in front of ``rel_worker.py`` (``ok``).
"""

from __future__ import annotations

import trio
from exec_helpers import FAST_RESTART, scripted, wait_until
from reliability_helpers import worker_cmd

from plugin_sdk import Message
from router import Router, Status
from router.exec import ExecHandle, ExecState


def _ok() -> ExecHandle:
    return ExecHandle(worker_cmd("name=ok concurrency=4"), restart=FAST_RESTART, stop_timeout=1.0)


async def test_a_hung_plugin_times_out_is_skipped_by_policy_and_restarted_others_unaffected() -> (
    None
):
    hung = scripted("name=hung timeout=0.3 on_error=skip", ping_timeout=0.3, stop_timeout=0.3)
    ok = _ok()
    async with Router([hung, ok]) as router:
        hung_pid, ok_pid = hung.pid, ok.pid
        with trio.fail_after(10):
            result = await router.route(Message("hang", 60, id="h"))
        # Skipped past the hung plugin: the message went on to ``ok`` unchanged.
        assert result.status is Status.DELIVERED
        assert result.messages[0].body == {"value": 60, "seen": ["ok"], "pids": [ok_pid]}
        [first, second] = result.trace
        assert (first.plugin, first.verdict) == ("hung", "skip")
        assert "timed out after 0.3s" in first.reason
        assert (second.plugin, second.verdict) == ("ok", "replace")
        # While it is hung (or restarting), what it does not accept flows untouched.
        for i in range(20):
            other = await router.route(Message("other", {}, id=f"o{i}"))
            assert other.status is Status.DELIVERED
            assert other.messages[0].body["pids"] == [ok_pid]
        await wait_until(lambda: hung.restarts == 1 and hung.state is ExecState.READY)
        assert hung.pid != hung_pid
        assert "hung" in hung.last_error and "ping" in hung.last_error
        echo = await router.route(Message("echo", "back"))
    assert echo.status is Status.DELIVERED
    assert echo.messages[0].body["echo"] == "back"
    assert ok.restarts == 0 and ok.pid is None  # stopped with the router, never restarted


async def test_a_hung_plugin_with_on_error_fail_fails_its_message_naming_it() -> None:
    hung = scripted("name=hung timeout=0.3", ping_timeout=0.3, stop_timeout=0.3)
    async with Router([hung, _ok()]) as router:
        with trio.fail_after(10):
            result = await router.route(Message("hang", 60))
        assert result.status is Status.FAILED
        assert result.by == "hung"
        assert result.reason == "timed out after 0.3s"
        assert result.trace[0].verdict == "timeout"
        await wait_until(lambda: hung.restarts == 1)


async def test_a_slow_plugin_that_answers_pings_loses_one_message_and_is_not_restarted() -> None:
    slow = scripted("name=slow timeout=0.5 concurrency=2", ping_timeout=0.3)
    async with Router([slow, _ok()]) as router:
        pid = slow.pid
        with trio.fail_after(10):
            late = await router.route(Message("delay", 1.0))
            assert late.status is Status.FAILED
            assert late.reason == "timed out after 0.5s"
            # The router pings after the timeout; these calls span the ping's deadline, so
            # a plugin wrongly killed as hung would fail them or answer from a new pid.
            for body in (0.0, 0.4):
                on_time = await router.route(Message("delay", body))
                assert on_time.status is Status.DELIVERED, on_time
            echo = await router.route(Message("echo", 1))
        assert echo.messages[0].body["pid"] == pid
        assert slow.restarts == 0 and slow.pid == pid


async def test_a_handler_stuck_on_a_call_given_up_on_is_cancelled_and_its_place_freed() -> None:
    # ``delay`` 60 awaits without blocking. The SDK runner names the ``cancel`` feature,
    # so the router cancels the call when it times out: the handler stops, the answer
    # frees the plugin's one place, and the next message is served by the same process.
    stuck = scripted("name=stuck timeout=0.3", ping_timeout=5.0, stop_timeout=0.3)
    async with Router([stuck, _ok()]) as router:
        pid = stuck.pid
        with trio.fail_after(10):
            first = await router.route(Message("delay", 60))
            assert first.status is Status.FAILED and first.by == "stuck"
            assert first.reason == "timed out after 0.3s"
            after = await router.route(Message("echo", "after"))
        assert after.status is Status.DELIVERED, after
        assert after.messages[0].body["pid"] == pid == stuck.pid
        assert stuck.restarts == 0


async def test_a_retry_after_a_timeout_reaches_the_plugin_whose_stuck_call_was_cancelled() -> None:
    # Concurrency 1: without the cancel, the retry would wait for the place the stuck
    # first attempt holds, and time out too.
    flaky = scripted("name=flaky timeout=0.3 on_error=retry", ping_timeout=5.0, stop_timeout=0.3)
    async with Router([flaky]) as router:
        with trio.fail_after(10):
            result = await router.route(Message("stuck-once", {}, id="x"))
        assert result.status is Status.DELIVERED, result
        assert result.messages[0].body == {"pid": flaky.pid}
        assert [(hop.verdict, hop.reason) for hop in result.trace] == [
            ("retry", "timed out after 0.3s"),
            ("replace", ""),
        ]
        assert flaky.restarts == 0


async def test_a_plugin_deaf_to_cancels_and_stuck_on_calls_given_up_on_is_restarted_as_wedged() -> (
    None
):
    # ``stubborn`` 60 shields its sleep from the cancel: the plugin answers pings, so it
    # is not hung, but its one place stays taken by a call nobody waits for any more.
    stuck = scripted("name=stuck timeout=0.3", ping_timeout=5.0, stop_timeout=0.3)
    async with Router([stuck, _ok()]) as router:
        pid = stuck.pid
        with trio.fail_after(10):
            first = await router.route(Message("stubborn", 60))
            starved = await router.route(Message("echo", "waits for the place"))
            for result in (first, starved):
                assert result.status is Status.FAILED and result.by == "stuck"
                assert result.reason == "timed out after 0.3s"
        await wait_until(lambda: stuck.restarts == 1 and stuck.state is ExecState.READY)
        after = await router.route(Message("echo", "after"))
        assert after.status is Status.DELIVERED, after
        assert after.messages[0].body["pid"] == stuck.pid != pid
        assert stuck.restarts == 1
        assert stuck.last_error.startswith("wedged: its one call place is held by a call")
