"""SO_PEERCRED: the kernel's word on who connected, and who may administer routerd."""

from __future__ import annotations

import os
import socket

from router.admin.peercred import PeerCredentials, is_allowed, peer_credentials


def test_peer_credentials_of_a_socketpair_are_our_own() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        creds = peer_credentials(a)
    assert creds == PeerCredentials(os.getpid(), os.geteuid(), os.getegid())


def test_own_uid_and_root_are_allowed_others_are_not() -> None:
    assert is_allowed(PeerCredentials(1, 1000, 1000), own_uid=1000)
    assert is_allowed(PeerCredentials(1, 0, 0), own_uid=1000)
    assert not is_allowed(PeerCredentials(1, 65534, 65534), own_uid=1000)
    assert not is_allowed(PeerCredentials(1, 1001, 1000), own_uid=1000)


def test_default_own_uid_is_the_effective_uid() -> None:
    assert is_allowed(PeerCredentials(1, os.geteuid(), 0))
