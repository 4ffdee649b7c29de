"""Claiming the admin socket path: 0600, stale sockets replaced, anything else refused."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from router.admin.socket_path import (
    AdminSocketError,
    bind_admin_socket,
    default_socket_path,
    remove_socket,
)


def test_default_path_for_root_is_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/0")
    assert default_socket_path() == "/run/chanrouter.sock"


def test_default_path_for_a_user_is_in_xdg_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert default_socket_path() == "/run/user/1000/chanrouter.sock"


def test_default_path_without_xdg_runtime_dir_is_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert default_socket_path() == "/run/chanrouter.sock"


def test_socket_is_created_mode_0600_and_umask_restored(tmp_path: Path) -> None:
    path = str(tmp_path / "a.sock")
    old = os.umask(0o022)
    try:
        sock, inode = bind_admin_socket(path)
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(old)
    with sock:
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_ino == inode[1]


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "a.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()  # the file stays, nobody listens: stale
    sock, inode = bind_admin_socket(path)
    with sock:
        assert os.stat(path).st_ino == inode[1]


def test_live_socket_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "a.sock")
    first, inode = bind_admin_socket(path)
    with first, pytest.raises(AdminSocketError, match="another routerd is already serving"):
        bind_admin_socket(path)
    assert os.stat(path).st_ino == inode[1]


def test_non_socket_file_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "precious"
    path.write_text("keep me")
    with pytest.raises(AdminSocketError, match="is not a socket; refusing to remove it"):
        bind_admin_socket(str(path))
    assert path.read_text() == "keep me"


def test_unbindable_path_is_a_clear_error(tmp_path: Path) -> None:
    path = str(tmp_path / "missing-dir" / "a.sock")
    with pytest.raises(AdminSocketError, match="cannot serve the admin socket"):
        bind_admin_socket(path)


def test_remove_socket_only_removes_our_own(tmp_path: Path) -> None:
    path = str(tmp_path / "a.sock")
    sock, ours = bind_admin_socket(path)
    sock.close()
    # A successor made while ours still exists has another inode; it then takes the path.
    successor, _ = bind_admin_socket(str(tmp_path / "b.sock"))
    os.rename(tmp_path / "b.sock", path)
    with successor:
        remove_socket(path, ours)
        assert os.path.exists(path)
        st = os.stat(path)
        remove_socket(path, (st.st_dev, st.st_ino, st.st_mtime_ns))
        assert not os.path.exists(path)
