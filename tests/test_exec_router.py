"""Subprocess plugins inside a real Router: routing, per-call timeouts, on-error policies."""

from __future__ import annotations

from pathlib import Path

import trio
from exec_helpers import module_cmd, peer_cmd, scripted, wait_until

from plugin_sdk import Message
from router import Router, Status
from router import open as router_open
from router.builtins.authz import Authz
from router.exec import ExecHandle, ExecState, RestartPolicy


async def test_an_exec_plugin_and_an_in_process_plugin_share_a_pipeline() -> None:
    mount = ExecHandle(module_cmd("router.builtins.host_mount:HostMount", "/data /var/data"))
    authz = Authz("deny container.create Image=untrusted/*; allow *")
    async with router_open(plugins=[authz, mount]) as router:
        ok = await router.route(Message("container.create", {"Image": "alpine"}))
        denied = await router.route(Message("container.create", {"Image": "untrusted/x"}))
    assert ok.status is Status.DELIVERED
    assert ok.messages[0].body["HostConfig"]["Binds"] == ["/data:/var/data"]
    assert [hop.plugin for hop in ok.trace] == ["authz", "host-mount"]
    assert denied.status is Status.DROPPED
    assert denied.by == "authz"


async def test_a_call_timing_out_in_the_engine_gets_a_hung_plugin_restarted() -> None:
    handle = scripted("timeout=0.3", ping_timeout=0.3)
    async with Router([handle]) as router:
        first_pid = handle.pid
        result = await router.route(Message("hang", 60))
        assert result.status is Status.FAILED
        assert "timed out" in result.reason
        await wait_until(lambda: handle.restarts == 1 and handle.state is ExecState.READY)
        assert handle.pid != first_pid
        again = await router.route(Message("echo", "back"))
    assert again.status is Status.DELIVERED
    assert again.messages[0].body["echo"] == "back"


async def test_a_route_whose_caller_stops_waiting_frees_the_plugins_place_at_once() -> None:
    # The call is abandoned at the plugin's handle and cancelled in the plugin, so the
    # next message is served long before the first call's 5 s timeout would free the
    # plugin's one place.
    handle = scripted("name=slow timeout=5", ping_timeout=5.0, stop_timeout=0.3)
    async with Router([handle]) as router:
        pid = handle.pid
        with trio.move_on_after(0.2) as waited:
            await router.route(Message("delay", 60))
        assert waited.cancelled_caught
        with trio.fail_after(3):
            after = await router.route(Message("echo", "after"))
    assert after.status is Status.DELIVERED, after
    assert after.messages[0].body["pid"] == pid
    assert handle.restarts == 0


async def test_a_call_abandoned_while_its_plugin_restarts_is_never_sent() -> None:
    slow_restart = RestartPolicy(backoff_initial=0.5, backoff_max=0.5)
    handle = ExecHandle(peer_cmd("concurrency=1"), restart=slow_restart, stop_timeout=1.0)
    async with Router([handle]) as router:
        crashed = await router.route(Message("exit", 0))
        assert crashed.status is Status.FAILED
        # The restart is due in 0.5 s: this call waits for it, and its caller gives up.
        with trio.move_on_after(0.1) as waited:
            await router.route(Message("echo", "abandoned"))
        assert waited.cancelled_caught
        await wait_until(lambda: handle.state is ExecState.READY)
        after = await router.route(Message("echo", "after"))
    assert after.status is Status.DELIVERED, after
    assert after.messages[0].body["batch"] == 1  # the first request the new process got


async def test_a_crash_with_on_error_skip_lets_the_message_through() -> None:
    handle = scripted("on_error=skip")
    async with Router([handle]) as router:
        result = await router.route(Message("crash", {"keep": 1}))
    assert result.status is Status.DELIVERED
    assert result.messages[0].body == {"keep": 1}
    assert result.trace[0].verdict == "skip"


async def test_a_crash_with_the_default_policy_fails_the_message_naming_the_plugin() -> None:
    handle = scripted("name=fragile")
    async with Router([handle]) as router:
        result = await router.route(Message("crash"))
    assert result.status is Status.FAILED
    assert result.by == "fragile"
    assert "exited with status 3" in result.reason


async def test_the_engine_sees_the_plugins_handshake_info() -> None:
    handle = scripted("name=seen concurrency=5")
    async with Router([handle]) as router:
        assert router.plan.names == ("seen",)
        assert router.plan.plugins[0].concurrency == 5
        with trio.fail_after(10):
            result = await router.route(Message("echo", 1))
    assert result.status is Status.DELIVERED


async def test_a_crash_with_on_error_retry_is_retried_on_the_restarted_plugin(
    tmp_path: Path,
) -> None:
    handle = scripted("on_error=retry timeout=10")
    async with Router([handle]) as router:
        result = await router.route(Message("crash-once", str(tmp_path / "marker")))
    assert result.status is Status.DELIVERED, result
    assert result.messages[0].body == "survived"
    assert [hop.verdict for hop in result.trace][-1] != "retry"
    assert handle.restarts == 1
