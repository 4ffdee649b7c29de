"""spawn(): what a plugin process gets (FD 3/4, /dev/null stdin, env, nothing else), and
that it never outlives the process that spawned it."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import subprocess
import sys

import pytest
import trio
from exec_helpers import (
    PLUGINS,
    crash_once_then_call_again,
    kill_quietly,
    plugin_cmd,
    running,
    scripted,
    wait_dead,
)

from plugin_sdk import Message
from router.exec import ExecState, SpawnError, spawn, split_command


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    chunks = []
    while chunk := await stream.receive_some(65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_the_child_gets_fd3_fd4_devnull_stdin_the_env_flag_and_nothing_else() -> None:
    process = spawn(plugin_cmd("fd_probe.py", "a b", "c"))
    try:
        await process.to_plugin.send_all(b"from host")
        await process.to_plugin.aclose()
        report = json.loads(await read_all(process.from_plugin))
        out = await read_all(process.stdout)
        err = await read_all(process.stderr)
        assert await process.wait() == 0
    finally:
        await process.aclose()
    # 0-4 and the fd listdir itself opened; no pipe end or other fd of the router leaks.
    assert report["fds"] == [0, 1, 2, 3, 4, 5]
    assert report["stdin"] == "/dev/null"
    assert report["env"] == "1"
    assert report["fd3"] == "from host"
    assert report["argv"] == ["a b", "c"]
    assert out == b"to stdout\n"
    assert err == b"to stderr\n"


async def test_a_missing_command_is_a_spawn_error_naming_it() -> None:
    with pytest.raises(SpawnError, match="no-such-plugin-xyz"):
        spawn("no-such-plugin-xyz --opt")


def test_commands_are_split_like_a_shell_would() -> None:
    assert split_command("plug --opt 'a b'") == ["plug", "--opt", "a b"]
    with pytest.raises(SpawnError, match="empty"):
        split_command("  ")
    with pytest.raises(SpawnError, match="cannot parse"):
        split_command("plug 'unterminated")


def test_a_plugin_dies_with_the_process_that_spawned_it() -> None:
    # An intermediate process spawns a plugin that ignores FD 3 EOF; SIGKILL the
    # intermediate: only the parent-death signal can end the plugin then.
    middle = subprocess.Popen(
        [sys.executable, str(PLUGINS / "orphan_maker.py"), plugin_cmd("sleeper.py")],
        stdout=subprocess.PIPE,
    )
    assert middle.stdout is not None
    plugin_pid = int(middle.stdout.readline())
    try:
        middle.kill()
        middle.wait()
        assert wait_dead(plugin_pid, within=2.0)
    finally:
        kill_quietly(plugin_pid)


@pytest.mark.parametrize("errno_", [errno.ENOSYS, errno.EPERM])
async def test_without_pidfd_open_exits_are_still_seen_crashes_restarted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, errno_: int
) -> None:
    # Linux before 5.3 or valgrind (ENOSYS), older container seccomp profiles (EPERM).
    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(errno_, os.strerror(errno_))

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    process = spawn(plugin_cmd("fd_probe.py"))
    await process.to_plugin.aclose()
    with trio.fail_after(10):
        assert await process.wait() == 0
    await process.aclose()

    async with running(scripted()) as handle:
        reply = await handle.call(Message("echo", "hi"))
        assert reply.messages[0].body["echo"] == "hi"
        await crash_once_then_call_again(handle, tmp_path / "marker")
    assert handle.state is ExecState.STOPPED
