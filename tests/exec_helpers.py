"""Shared helpers for the subprocess-plugin tests: test plugin commands, process checks."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from pathlib import Path

PLUGINS = Path(__file__).parent / "plugins"


def plugin_cmd(script: str, *args: str) -> str:
    """The command line that runs ``tests/plugins/<script>`` with this interpreter."""
    return shlex.join([sys.executable, str(PLUGINS / script), *args])


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
