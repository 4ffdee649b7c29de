"""Plugins that break the protocol are isolated: logged, killed, restarted; nothing escapes.

Each test runs a real Router over two real subprocess plugins: ``bad``
(tests/plugins/rel_garbage.py, which misbehaves on ``job``) and ``ok`` (rel_worker.py,
which takes every type). The bad plugin's message fails naming it, the router log says
what was wrong, the bad plugin is restarted (or quarantined), and ``ok`` goes on
serving with the same process.
"""

from __future__ import annotations

import logging
import resource
from pathlib import Path

import pytest
import trio
from exec_helpers import FAST_RESTART, plugin_cmd, wait_for_state, wait_until
from reliability_helpers import worker_cmd

from plugin_sdk import Message
from router import Router, Status
from router.exec import ExecHandle, ExecState, PluginStartError


def _handles(mode: str) -> tuple[ExecHandle, ExecHandle]:
    # A short grace period: a plugin that broke the protocol will not exit by itself.
    bad = ExecHandle(plugin_cmd("rel_garbage.py", mode), restart=FAST_RESTART, stop_timeout=0.3)
    ok = ExecHandle(worker_cmd("name=ok"), restart=FAST_RESTART, stop_timeout=1.0)
    return bad, ok


async def _ok_still_serves(router: Router, ok: ExecHandle, pid: int | None) -> None:
    with trio.fail_after(10):
        result = await router.route(Message("other", {}))
    assert result.status is Status.DELIVERED
    assert result.messages[0].body["seen"] == ["ok"]
    assert ok.pid == pid and ok.restarts == 0


def _log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


MID_SESSION = {
    "random": "broke the protocol",
    "truncated": "EOF after 10 of 100 bytes",
    "oversized": "announced length 4294967295 exceeds the limit of 1048576",
    "unknown-channel": "channel 9998 was never opened",
}


@pytest.mark.parametrize("mode", sorted(MID_SESSION))
async def test_a_plugin_breaking_the_protocol_mid_session_is_logged_killed_and_restarted(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bad, ok = _handles(mode)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    async with Router([bad, ok]) as router:
        first_pid, ok_pid = bad.pid, ok.pid
        with trio.fail_after(10):
            result = await router.route(Message("job", {}))
        assert result.status is Status.FAILED
        assert result.by == "bad"
        assert "'bad'" in result.reason
        await wait_until(lambda: bad.restarts == 1 and bad.state is ExecState.READY)
        assert bad.pid != first_pid
        await _ok_still_serves(router, ok, ok_pid)
    text = _log(caplog)
    assert "plugin 'bad' crashed: broke the protocol: " in text, text
    assert MID_SESSION[mode] in text, text
    # The oversized frame announced 4 GiB and sent 1 MiB: the router allocated neither
    # (refused from the 4 length bytes; the peak RSS of this process barely moved).
    peak_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert peak_growth_kib < 64 * 1024


START_MODES = {
    "wrong-version": "no common protocol version",
    "exit-before-hello": "exited with status 4",
}


@pytest.mark.parametrize("mode", sorted(START_MODES))
async def test_a_plugin_failing_its_handshake_on_restart_is_retried_then_quarantined(
    mode: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bad, ok = _handles(f"{mode} state={tmp_path / 'state'}")
    async with Router([bad, ok]) as router:
        ok_pid = ok.pid
        crashed = await router.route(Message("job", {}))
        assert crashed.status is Status.FAILED and crashed.by == "bad"
        await wait_for_state(bad, ExecState.QUARANTINED)
        refused = await router.route(Message("job", {}))
        assert refused.status is Status.FAILED and refused.by == "bad"
        assert "quarantined" in refused.reason
        await _ok_still_serves(router, ok, ok_pid)
    text = _log(caplog)
    assert START_MODES[mode] in text, text
    assert "plugin 'bad' quarantined after 3 crashes" in text


@pytest.mark.parametrize("mode", sorted(START_MODES))
async def test_a_plugin_failing_its_first_handshake_stops_the_router_starting_cleanly(
    mode: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.write_text("as if it had started before")
    bad, ok = _handles(f"{mode} state={state}")
    with pytest.raises(PluginStartError, match=START_MODES[mode]) as caught:
        async with Router([ok, bad]):
            pytest.fail("the router started with a plugin that never handshook")
    assert "rel_garbage.py" in str(caught.value)
    assert ok.state is ExecState.STOPPED  # the plugin started before it was stopped again
