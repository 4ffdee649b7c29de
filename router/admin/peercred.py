"""Who is on the other end of an admin connection (SO_PEERCRED), and may they come in.

Only routerd's own uid and root may administer it: the socket's 0600 mode already
says so, but the mode can be loosened by accident (a parent directory made
world-writable, a bind-mount) and the credential check is what the kernel vouches for.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from typing import Protocol

__all__ = ["PeerCredentials", "is_allowed", "peer_credentials"]

_UCRED = struct.Struct("3i")  # struct ucred: pid_t pid; uid_t uid; gid_t gid


class _HasGetsockopt(Protocol):
    def getsockopt(self, level: int, optname: int, buflen: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """The pid, uid and gid of the process that connected (as of ``connect``)."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: _HasGetsockopt) -> PeerCredentials:
    """Read the peer's credentials from a connected unix socket (Linux SO_PEERCRED)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return PeerCredentials(pid, uid, gid)


def is_allowed(creds: PeerCredentials, own_uid: int | None = None) -> bool:
    """Whether ``creds`` may administer a daemon running as ``own_uid`` (default: ours)."""
    own = os.geteuid() if own_uid is None else own_uid
    return creds.uid in (own, 0)
