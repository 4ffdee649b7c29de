"""Calls to a real subprocess plugin: concurrency, out-of-order replies, verdicts, stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from exec_helpers import pid_alive, plugin_cmd, running, scripted

from plugin_sdk import Message, Reply, Verdict
from router.exec import ExecHandle, PluginStartError, PluginUnavailable


async def test_concurrent_calls_are_all_in_flight_in_the_plugin_at_once() -> None:
    # Each "gate" call returns only once 4 are waiting inside the plugin: with fewer
    # handled at once this would never finish.
    async with running(scripted("concurrency=4")) as handle:
        replies: list[Reply] = []

        async def one() -> None:
            replies.append(await handle.call(Message("gate", 4)))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(one)
        assert [r.messages[0].body for r in replies] == [4, 4, 4, 4]


async def test_replies_completing_out_of_order_reach_their_own_callers() -> None:
    async with running(scripted("concurrency=8")) as handle:
        delays = [0.2, 0.0, 0.1, 0.15, 0.05]
        got: dict[str, object] = {}

        async def one(i: int, delay: float) -> None:
            reply = await handle.call(Message("delay", delay, id=f"m{i}"))
            got[reply.messages[0].id] = reply.messages[0].body

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for i, delay in enumerate(delays):
                    nursery.start_soon(one, i, delay)
        assert got == {f"m{i}": d for i, d in enumerate(delays)}


async def test_a_drop_verdict_and_its_reason_cross_the_process_boundary() -> None:
    async with running(scripted()) as handle:
        reply = await handle.call(Message("drop", "not today"))
    assert reply == Reply(Verdict.DROP, (), "not today")


async def test_a_type_the_plugin_has_no_handler_for_passes() -> None:
    async with running(scripted()) as handle:
        reply = await handle.call(Message("unheard.of", 1))
    assert reply == Reply()


async def test_stop_lets_calls_in_flight_finish_runs_the_stop_hook_and_exits(
    tmp_path: Path,
) -> None:
    note = tmp_path / "note"
    handle = scripted(f"stop-note={note} concurrency=2")
    await handle.start()
    pid = handle.pid
    assert pid is not None
    replies: list[Reply] = []

    async def slow_call() -> None:
        replies.append(await handle.call(Message("delay", 0.3)))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow_call)
            await trio.sleep(0.05)  # a real process: give the call time to be sent
            await handle.stop()
    assert replies and replies[0].messages[0].body == 0.3
    assert note.read_text() == "stopped"
    assert not pid_alive(pid)
    assert handle.status()["state"] == "stopped"


async def test_calls_after_stop_are_refused_at_once() -> None:
    handle = scripted()
    async with running(handle):
        pass
    with pytest.raises(PluginUnavailable, match="stopped"):
        await handle.call(Message("echo", 1))


async def test_a_plugin_ignoring_fd3_eof_is_terminated_after_the_grace_period() -> None:
    # silent.py never handshakes; stop it while start() still waits for it.
    handle = ExecHandle(
        plugin_cmd("silent.py"), handshake_timeout=30, stop_timeout=0.2, kill_timeout=0.2
    )
    pids: list[int] = []

    async def stop_once_spawned() -> None:
        while handle.pid is None:
            await trio.sleep(0.005)
        pids.append(handle.pid)
        await handle.stop()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_once_spawned)
            with pytest.raises(PluginStartError, match="stopped before its handshake"):
                await handle.start()
    assert handle.status()["state"] == "stopped"
    assert not pid_alive(pids[0])
