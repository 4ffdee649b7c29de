"""Shared helpers for the subprocess-plugin tests: test plugin commands, process checks."""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from plugin_sdk import Message
from router.exec import ExecHandle, ExecState, PluginCrashed, RestartPolicy

PLUGINS = Path(__file__).parent / "plugins"


def plugin_cmd(script: str, *args: str) -> str:
    """The command line that runs ``tests/plugins/<script>`` with this interpreter."""
    return shlex.join([sys.executable, str(PLUGINS / script), *args])


def peer_cmd(*options: str) -> str:
    """The command line that runs the application-layer v2 test peer (tests/v2_peer.py)."""
    return shlex.join([sys.executable, str(Path(__file__).with_name("v2_peer.py")), *options])


def peer(*options: str, **kwargs: Any) -> ExecHandle:
    """An ExecHandle for tests/v2_peer.py whose own timeouts never fire.

    Made for the autojump clock: a real process makes the test wait for I/O, and the
    clock jumps to the next deadline whenever everything waits, so any timeout of the
    handle's own (handshake, ping, stop) would fire at once. The test's deadlines do.
    """
    for key in ("handshake_timeout", "stop_timeout", "kill_timeout", "ping_timeout"):
        kwargs.setdefault(key, math.inf)
    kwargs.setdefault("restart", FAST_RESTART)
    return ExecHandle(peer_cmd(*options), **kwargs)


def module_cmd(target: str, option: str = "") -> str:
    """The command line that serves ``module:Class`` with ``python -m plugin_sdk``."""
    return shlex.join([sys.executable, "-m", "plugin_sdk", target, option])


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The state letter follows the parenthesised command name.
            state = f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def wait_dead(pid: int, within: float) -> bool:
    """Poll until ``pid`` is gone (a process we do not own cannot be awaited otherwise)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.01)
    return not pid_alive(pid)


def kill_quietly(pid: int) -> None:
    """SIGKILL ``pid`` if it still runs (test cleanup)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)


FAST_RESTART = RestartPolicy(backoff_initial=0.01, backoff_max=0.05, quarantine_after=3)
"""Restarts fast enough for tests; quarantine on the third crash in a minute."""


def scripted(option: str = "", **kwargs: Any) -> ExecHandle:
    """An ExecHandle for tests/plugins/scripted.py with short timeouts for tests."""
    kwargs.setdefault("handshake_timeout", 10.0)
    kwargs.setdefault("stop_timeout", 2.0)
    kwargs.setdefault("kill_timeout", 1.0)
    kwargs.setdefault("restart", FAST_RESTART)
    return ExecHandle(plugin_cmd("scripted.py", option), **kwargs)


@asynccontextmanager
async def running(handle: ExecHandle) -> AsyncIterator[ExecHandle]:
    """Start ``handle`` for the block and always stop it (no plugin outlives a test)."""
    await handle.start()
    try:
        yield handle
    except BaseException:
        # A failed test must fail, not wait forever for a call it left held (the
        # handle's grace periods may be infinite, see ``peer``): stop without grace.
        handle._stop_timeout = handle._kill_timeout = 0.0
        raise
    finally:
        with trio.CancelScope(shield=True):
            await handle.stop()


async def wait_for_state(handle: ExecHandle, *states: ExecState, within: float = 10.0) -> None:
    """Wait (polling the real clock: a real process is involved) for one of ``states``."""
    with trio.fail_after(within):
        while handle.state not in states:
            await trio.sleep(0.005)


async def wait_until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait (polling the real clock: a real process is involved) until ``condition()``."""
    with trio.fail_after(within):
        while not condition():
            await trio.sleep(0.005)


async def crash_once_then_call_again(handle: ExecHandle, marker: Path) -> None:
    """Crash the scripted plugin with a call, then call at once: the restarted one answers.

    What the engine does for ``on_error=retry``: the second call waits for the restart.
    """
    first_pid = handle.pid
    with pytest.raises(PluginCrashed):
        await handle.call(Message("crash-once", str(marker)))
    with trio.fail_after(10):
        reply = await handle.call(Message("crash-once", str(marker)))
    assert reply.messages[0].body == "survived"
    assert handle.pid != first_pid
