"""Where the admin socket lives, and claiming that path safely.

The socket is created mode 0600 (by narrowing the umask around ``bind``, so there is
no moment when it is reachable by others). An existing path is only ever removed if
it is a *stale* socket: a socket file nobody answers on, left by a daemon that died.
A live socket (another routerd) or any other kind of file is an error, so a typo in
``--admin-socket`` can never delete something precious.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat

__all__ = [
    "AdminSocketError",
    "FileIdentity",
    "bind_admin_socket",
    "claim_socket_path",
    "default_socket_path",
    "remove_socket",
]

_STALE_PROBE_TIMEOUT = 1.0
"""Seconds to wait for a connect to an existing socket before calling it live."""


class AdminSocketError(Exception):
    """The admin socket path cannot be used; the text names the path and the reason."""


def default_socket_path() -> str:
    """``$XDG_RUNTIME_DIR/chanrouter.sock``; ``/run/chanrouter.sock`` for root or without it.

    Root uses /run even when XDG_RUNTIME_DIR is set (e.g. under ``sudo -E``) so that
    routerd and routerctl run as root always agree on one system-wide path.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if os.geteuid() == 0 or not runtime:
        return "/run/chanrouter.sock"
    return os.path.join(runtime, "chanrouter.sock")


def _is_answered(path: str) -> bool:
    """Whether something accepts connections on the unix socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(_STALE_PROBE_TIMEOUT)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except TimeoutError:
        # A full backlog: someone is there, just busy.
        return True
    finally:
        probe.close()
    return True


def claim_socket_path(path: str) -> None:
    """Make ``path`` free for a new socket: remove a stale socket, refuse anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise AdminSocketError(
            f"admin socket path {path} exists and is not a socket; "
            "refusing to remove it (choose another --admin-socket path)",
        )
    if _is_answered(path):
        raise AdminSocketError(
            f"admin socket {path} is live: another routerd is already serving there",
        )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


FileIdentity = tuple[int, int, int]
"""(device, inode, mtime in ns): tells our socket file from a successor's.

The mtime, not the ctime: an operator's chmod changes the ctime but it is still our
socket; a successor reusing the inode number gets a new mtime.
"""


def _identity(st: os.stat_result) -> FileIdentity:
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


def bind_admin_socket(path: str, *, backlog: int = 16) -> tuple[socket.socket, FileIdentity]:
    """Claim ``path`` and return a listening mode-0600 unix socket and its file identity.

    The identity lets :func:`remove_socket` delete only the file this daemon made.
    """
    claim_socket_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        sock.listen(backlog)
        identity = _identity(os.stat(path))
    except OSError as exc:
        sock.close()
        raise AdminSocketError(f"cannot serve the admin socket {path}: {exc}") from exc
    return sock, identity


def remove_socket(path: str, identity: FileIdentity) -> None:
    """Unlink ``path`` if it is still the file with ``identity`` (not a successor's)."""
    with contextlib.suppress(OSError):
        if _identity(os.lstat(path)) == identity:
            os.unlink(path)
