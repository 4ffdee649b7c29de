"""Start a plugin process with the protocol on FD 3 (it reads) and FD 4 (it writes).

The host side of section A.1 of docs/PROTOCOL.md. It lives in the SDK, not the router,
because plugin_sdk.testing spawns plugins the same way to check that they conform.

Why a shim instead of ``preexec_fn``: the child must get the pipe ends as exactly FD 3
and 4 and a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``: plugins must not
outlive the router). ``preexec_fn`` would do that in Python code between fork and exec,
which is unsafe when the router has threads (trio's worker threads may hold locks at fork
time). Instead the child execs a tiny ``python -I -S`` shim that moves the pipe ends to
3/4, sets the death signal (which survives ``execve``), checks that its parent is still
the router (closing the race where the router died before ``prctl``) and execs the
plugin command. It costs one short interpreter start (~20 ms) per plugin start.

Why ``subprocess.Popen`` called directly instead of ``trio.lowlevel.open_process``: trio
forks from a worker thread, and Linux sends the parent-death signal when the *thread*
that forked exits, which an idle worker thread does after a few seconds. Forking from
the trio thread itself ties the signal to the router's life. Process exit is then
awaited through a pidfd, without threads; where ``pidfd_open`` is missing (Linux before
5.3, valgrind) or refused (older container seccomp profiles), a worker thread blocks in
``waitpid`` instead (it only waits: it never forks).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Final

import trio

from ._env import PLUGIN_ENV

__all__ = ["PLUGIN_ENV", "PluginProcess", "SpawnError", "spawn", "split_command"]


# argv: ROUTER_PID READ_FD WRITE_FD COMMAND... ; exit 127 mirrors a shell's "not found".
_SHIM: Final = """\
import fcntl, os, sys
a = sys.argv
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)
except Exception as e:
    sys.stderr.write(f"chanrouter: cannot set the parent-death signal: {e}\\n")
if os.getppid() != int(a[1]):
    os._exit(1)
hi = [fcntl.fcntl(int(fd), fcntl.F_DUPFD_CLOEXEC, 10) for fd in a[2:4]]
for fd in a[2:4]:
    os.close(int(fd))
os.dup2(hi[0], 3)
os.dup2(hi[1], 4)
os.close(hi[0])
os.close(hi[1])
try:
    os.execvp(a[4], a[4:])
except OSError as e:
    sys.stderr.write(f"chanrouter: cannot run {a[4]!r}: {e}\\n")
    os._exit(127)
"""


class SpawnError(Exception):
    """The plugin command could not be started at all (empty, not found, fork failed)."""


def split_command(cmd: str | Sequence[str]) -> list[str]:
    """A command line as an argv list: a string is split like a POSIX shell would (shlex)."""
    if isinstance(cmd, str):
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise SpawnError(f"cannot parse plugin command {cmd!r}: {exc}") from None
    else:
        argv = list(cmd)
    if not argv:
        raise SpawnError("empty plugin command")
    return argv


class PluginProcess:
    """A running plugin process and the parent's ends of its four pipes.

    ``to_plugin`` is what the plugin reads on FD 3, ``from_plugin`` what it writes on FD 4;
    ``stdout``/``stderr`` must be drained continuously (a full pipe blocks the plugin).
    """

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        to_plugin: trio.lowlevel.FdStream,
        from_plugin: trio.lowlevel.FdStream,
        stdout: trio.lowlevel.FdStream,
        stderr: trio.lowlevel.FdStream,
    ) -> None:
        self._popen = popen
        self.pid: int = popen.pid
        self.to_plugin = to_plugin
        self.from_plugin = from_plugin
        self.stdout = stdout
        self.stderr = stderr
        self._pidfd: int | None
        try:
            self._pidfd = os.pidfd_open(popen.pid)
        except OSError:  # ENOSYS or EPERM: wait() falls back to a thread
            self._pidfd = None
        self._closed = False
        self._polling = False
        self._changed = trio.Event()

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has been reaped (negative: killed by a signal)."""
        return self._popen.returncode

    async def wait(self) -> int:
        """Wait until the process exits, reap it and return its exit status.

        Any number of tasks may wait at once: one polls the pidfd (epoll allows one
        reader per fd), the others wait for it to report.
        """
        while self._popen.returncode is None:
            if self._closed:
                return self._popen.wait()  # aclose() killed it already
            if self._polling:
                await self._changed.wait()
                continue
            self._polling = True
            try:
                if self._pidfd is not None:
                    await trio.lowlevel.wait_readable(self._pidfd)
                    # Readable only once the process is a zombie: this does not block.
                    self._popen.wait()
                else:
                    # Abandoned on cancel, the thread still reaps the process when it
                    # exits (Popen.wait is thread-safe); the next wait sees returncode.
                    await trio.to_thread.run_sync(self._popen.wait, abandon_on_cancel=True)
            finally:
                self._polling = False
                changed, self._changed = self._changed, trio.Event()
                changed.set()
        return self._popen.returncode

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` unless the process has been reaped already."""
        if self._popen.returncode is None:
            # The pid is not reused before we reap it, so this cannot hit a stranger.
            self._popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the process (no-op once reaped)."""
        self.signal(signal.SIGKILL)

    async def aclose(self) -> None:
        """Kill the process if it still runs, reap it and close every pipe end."""
        self.kill()
        with trio.CancelScope(shield=True):
            await self.wait()
        self._close_fds()

    def _close_fds(self) -> None:
        for stream in (self.to_plugin, self.from_plugin, self.stdout, self.stderr):
            stream.close()
        self._closed = True
        if self._pidfd is not None:
            fd, self._pidfd = self._pidfd, None
            trio.lowlevel.notify_closing(fd)
            os.close(fd)


def spawn(cmd: str | Sequence[str], *, env: Mapping[str, str] | None = None) -> PluginProcess:
    """Start ``cmd`` as a plugin: FD 3/4 pipes, stdin /dev/null, stdout/stderr piped.

    Nothing else is inherited (``close_fds``); the environment is ``env`` (default: ours)
    plus ``CHANROUTER_PLUGIN=1``. Raises :class:`SpawnError` when the command cannot be
    found or started.
    """
    argv = split_command(cmd)
    child_env = dict(os.environ if env is None else env)
    child_env[PLUGIN_ENV] = "1"
    if shutil.which(argv[0], path=child_env.get("PATH", os.defpath)) is None:
        raise SpawnError(f"plugin command not found or not executable: {argv[0]!r}")
    fds: list[int] = []
    try:
        for _ in range(4):
            fds.extend(os.pipe2(os.O_CLOEXEC))
        to_r, to_w, from_r, from_w, out_r, out_w, err_r, err_w = fds
        shim = [sys.executable, "-I", "-S", "-c", _SHIM, str(os.getpid()), str(to_r), str(from_w)]
        popen = subprocess.Popen(
            [*shim, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            pass_fds=(to_r, from_w),
            close_fds=True,
            env=child_env,
        )
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        raise SpawnError(f"cannot start plugin {argv[0]!r}: {exc}") from None
    # The child has its copies; ours must go so EOF shows when the child exits.
    for fd in (to_r, from_w, out_w, err_w):
        os.close(fd)
    return PluginProcess(
        popen,
        to_plugin=trio.lowlevel.FdStream(to_w),
        from_plugin=trio.lowlevel.FdStream(from_r),
        stdout=trio.lowlevel.FdStream(out_r),
        stderr=trio.lowlevel.FdStream(err_r),
    )
