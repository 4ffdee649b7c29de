"""Spawn a child whose protocol pipes are FD 3 (it reads) and FD 4 (it writes).

This is the plugin convention: stdin/stdout stay free for the plugin to print on,
so stray prints never corrupt the channel. The parent keeps the other two ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["FdChild", "spawn_fd34"]

CHILD_READ_FD = 3
CHILD_WRITE_FD = 4


@dataclass(slots=True)
class FdChild:
    """A running child and the parent's ends of its two pipes."""

    proc: subprocess.Popen[bytes]
    to_child: int
    """Parent writes here; the child reads it as FD 3."""
    from_child: int
    """Parent reads here; the child writes it as FD 4."""

    def release(self) -> tuple[int, int]:
        """Hand our two ends, ``(to_child, from_child)``, to a new owner (a stream).

        :meth:`close` then leaves them alone: closing an fd number twice could close
        an unrelated file that reused the number in between.
        """
        ends = (self.to_child, self.from_child)
        self.to_child = self.from_child = -1
        return ends

    def close(self, timeout: float = 5.0) -> int:
        """Close our ends (the child sees EOF and exits), wait, kill if it lingers."""
        for fd in (self.to_child, self.from_child):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.to_child = self.from_child = -1
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def spawn_fd34(argv: Sequence[str], *, cwd: str | None = None) -> FdChild:
    """Start ``argv`` with a fresh pipe on FD 3 (child reads) and one on FD 4 (child writes).

    stdout and stderr are inherited so a failing child is visible in the terminal.
    """
    child_r, parent_w = os.pipe()
    parent_r, child_w = os.pipe()

    def move_to_3_and_4() -> None:
        # Runs in the child between fork and exec. Lift both ends above 9 first so
        # that dup2 onto 3 cannot clobber an end that happens to live at 3 or 4.
        high_r = fcntl.fcntl(child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        high_w = fcntl.fcntl(child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.dup2(high_r, CHILD_READ_FD)  # dup2 makes the target inheritable
        os.dup2(high_w, CHILD_WRITE_FD)

    try:
        # close_fds=False: with close_fds the fds moved to 3/4 would be closed again
        # after preexec_fn. Every other fd Python opened is non-inheritable (PEP 446),
        # so nothing else leaks into the child.
        proc = subprocess.Popen(list(argv), preexec_fn=move_to_3_and_4, close_fds=False, cwd=cwd)
    finally:
        os.close(child_r)
        os.close(child_w)
    return FdChild(proc, parent_w, parent_r)
