"""Crashes, restarts with backoff, quarantine, protocol garbage and hangs, with real processes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from exec_helpers import (
    FAST_RESTART,
    crash_once_then_call_again,
    pid_alive,
    plugin_cmd,
    running,
    scripted,
    wait_for_state,
    wait_until,
)

from plugin_sdk import Message, Verdict
from router.events import EventBus, EventKind
from router.exec import (
    ExecHandle,
    ExecState,
    PluginCrashed,
    PluginProtocolError,
    PluginUnavailable,
    RestartPolicy,
)


async def test_a_crash_fails_the_calls_in_flight_and_the_plugin_comes_back() -> None:
    async with running(scripted("concurrency=4")) as handle:
        first_pid = handle.pid
        outcomes: list[BaseException] = []

        async def doomed(kind: str, body: object) -> None:
            try:
                await handle.call(Message(kind, body))
            except PluginCrashed as exc:
                outcomes.append(exc)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(doomed, "delay", 30)
                await trio.sleep(0.05)  # a real process: let the slow call get there first
                nursery.start_soon(doomed, "crash", None)
        assert len(outcomes) == 2
        assert all("exited with status 3" in str(exc) for exc in outcomes)
        await wait_for_state(handle, ExecState.READY)
        assert handle.restarts == 1
        assert handle.pid != first_pid
        assert first_pid is not None and not pid_alive(first_pid)
        reply = await handle.call(Message("echo", "again"))
        assert reply.messages[0].body["pid"] == handle.pid
        assert "exited with status 3" in handle.last_error


async def test_a_call_whose_deadline_comes_before_the_restart_is_refused_at_once() -> None:
    slow = RestartPolicy(backoff_initial=30.0, backoff_max=30.0)
    async with running(scripted(restart=slow)) as handle:
        with pytest.raises(PluginCrashed):
            await handle.call(Message("crash"))
        with (
            trio.fail_after(5),
            pytest.raises(PluginUnavailable, match=r"restarting, in .*s \(last error: .*status 3"),
        ):
            await handle.call(Message("echo", 1))


async def test_a_call_during_a_short_restart_waits_for_the_restarted_plugin(
    tmp_path: Path,
) -> None:
    async with running(scripted()) as handle:
        await crash_once_then_call_again(handle, tmp_path / "marker")


async def test_repeated_crashes_quarantine_the_plugin_until_restarted_by_hand() -> None:
    bus = EventBus()
    with bus.subscribe() as events:
        async with running(scripted(restart=FAST_RESTART, events=bus)) as handle:
            for _ in range(FAST_RESTART.quarantine_after):
                await wait_for_state(handle, ExecState.READY)
                with pytest.raises(PluginCrashed):
                    await handle.call(Message("crash"))
            await wait_for_state(handle, ExecState.QUARANTINED)
            assert handle.pid is None
            with pytest.raises(PluginUnavailable, match="quarantined"):
                await handle.call(Message("echo", 1))
            handle.restart()
            await wait_for_state(handle, ExecState.READY)
            assert (await handle.call(Message("echo", 1))).verdict is Verdict.CONTINUE
        kinds = []
        delays = []
        while (event := events.get_nowait()) is not None:
            kinds.append(event.kind)
            if event.kind == EventKind.CRASHED:
                delays.append(event.data["restart_in"])
    assert kinds == [
        EventKind.STARTED,
        EventKind.CRASHED,
        EventKind.RESTARTED,
        EventKind.CRASHED,
        EventKind.RESTARTED,
        EventKind.CRASHED,
        EventKind.QUARANTINED,
        EventKind.RESTARTED,
        EventKind.STOPPED,
    ]
    # Backoff doubles from backoff_initial; the quarantining crash schedules no restart.
    assert delays == [0.01, 0.02, None]


async def test_garbage_on_the_protocol_pipe_kills_the_plugin_and_logs_what_it_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="chanrouter.exec")
    async with running(scripted()) as handle:
        first_pid = handle.pid
        with pytest.raises(PluginCrashed, match="broke the protocol"):
            await handle.call(Message("garbage"))
        await wait_for_state(handle, ExecState.READY)
        assert handle.pid != first_pid
    crash_logs = [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]
    assert any("hello this is not msgpack" in text for text in crash_logs), crash_logs


@pytest.mark.parametrize(
    ("mode", "text"),
    [
        ("bad-reply", "sent a malformed answer: "),
        ("close-control", "closed its control channel with 1 calls unanswered"),
        ("unknown-id", "answered call 1001, which was never made"),
    ],
)
async def test_a_protocol_violation_in_the_answers_fails_the_call_and_restarts_the_plugin(
    mode: str, text: str
) -> None:
    handle = ExecHandle(plugin_cmd("raw_plugin.py", mode), restart=FAST_RESTART)
    async with running(handle):
        first_pid = handle.pid
        with pytest.raises(PluginProtocolError, match=text):
            await handle.call(Message("echo", 1))
        await wait_for_state(handle, ExecState.READY)
        assert handle.pid != first_pid
        assert text in handle.last_error


async def test_a_hung_plugin_is_pinged_killed_and_restarted_after_a_call_times_out() -> None:
    async with running(scripted(ping_timeout=0.3)) as handle:
        first_pid = handle.pid
        with trio.move_on_after(0.2):  # the engine's per-call timeout, in effect
            await handle.call(Message("hang", 60))
        await wait_until(lambda: handle.restarts == 1 and handle.state is ExecState.READY)
        assert handle.pid != first_pid
        assert "hung" in handle.last_error
        assert first_pid is not None and not pid_alive(first_pid)


async def test_a_slow_but_responsive_plugin_answers_the_ping_and_is_kept() -> None:
    handle = scripted("concurrency=2", ping_timeout=5.0, stop_timeout=0.3)
    async with running(handle):
        first_pid = handle.pid
        with trio.move_on_after(0.2):
            await handle.call(Message("delay", 60))
        # An explicit ping queues behind the hang check's ping: both answered.
        assert await handle.ping()
        assert handle.pid == first_pid
        assert handle.state is ExecState.READY
        assert handle.restarts == 0
