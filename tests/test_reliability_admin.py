"""The admin socket of a real routerd process: other uids are refused, and malformed
traffic (hypothesis) never crashes the daemon.

The admin helper's tests prove the same in process; these prove it for the daemon as
shipped (``routerd --admin-socket PATH --serve``), with its own event loop, logging
and signal handling.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from admin_helpers import connect_as_uid, decode_from_server
from exec_helpers import pid_alive, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import RouterdProcess, routerd, worker_cmd

from plugin_sdk.wire import Connection, GoAwayReceived, Role
from router.admin.client import connect_admin

NOBODY = 65534


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory any uid can reach (pytest's tmp_path parents are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="chanrouter-rel-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def _daemon(path: Path) -> AsyncIterator[RouterdProcess]:
    """``routerd --admin-socket PATH --serve`` for the block, then SIGTERM: it must exit 0."""
    args = ["--admin-socket", str(path), "--serve", "--plugin-exec", worker_cmd("name=w")]
    async with routerd(args) as daemon:
        await wait_until(path.exists, within=20)
        yield daemon
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait_exit() == 0, daemon.log_text()


async def _still_serves(path: Path) -> None:
    with trio.fail_after(10):
        async with connect_admin(str(path)) as admin:
            reply = await admin.request("send", message={"type": "job", "body": {}})
    assert reply["ok"] is True
    assert reply["result"]["status"] == "delivered"


async def test_routerd_refuses_another_uid_and_keeps_serving(public_dir: Path) -> None:
    path = public_dir / "admin.sock"
    async with _daemon(path) as daemon:
        assert path.stat().st_mode & 0o777 == 0o600
        status, data = await connect_as_uid(str(path), NOBODY)
        # The socket's mode keeps other uids out before routerd even sees them.
        assert status == 1 and b"PermissionError" in data
        os.chmod(path, 0o666)  # as a careless chmod would: now routerd's own check acts
        status, data = await connect_as_uid(str(path), NOBODY)
        assert status == 0, data
        goaways = [e for e in decode_from_server(data) if isinstance(e, GoAwayReceived)]
        assert len(goaways) == 1
        assert "permission denied: uid 65534" in goaways[0].reason
        await _still_serves(path)
        assert "admin connection refused" in daemon.log_text()
        assert "uid 65534" in daemon.log_text()


def _frame(body: Any) -> bytes:
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return struct.pack(">I", len(packed)) + packed


_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=6)
_values = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=10,
)
_ops = st.sampled_from(["plugins", "stats", "send", "add", "remove", "restart", "watch", "x"])
_requests = st.builds(
    lambda op, extra: {**extra, "op": op},
    _ops,
    st.dictionaries(
        st.sampled_from(["message", "name", "position", "plugin", "reply"]), _values, max_size=3
    ),
)
_traffic = st.one_of(
    st.binary(max_size=300),  # not even a HELLO
    st.lists(  # a good HELLO, then random frames
        st.builds(
            lambda code, rest: _frame([code, *rest]),
            st.integers(0, 9),
            st.lists(_values, max_size=3),
        )
        | st.binary(max_size=30),
        max_size=5,
    ).map(lambda frames: Connection(Role.INITIATOR).hello() + b"".join(frames)),
    st.lists(_requests, min_size=1, max_size=4).map(  # a channel, then request-ish maps
        lambda reqs: (
            Connection(Role.INITIATOR).hello()
            + _frame([1, 1])
            + b"".join(_frame([2, 1, r]) for r in reqs)
        )
    ),
)


def _abuse(path: Path, pid: int) -> None:
    """Blocking, in a worker thread: send hypothesis' traffic, read until routerd hangs up."""

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(traffic=_traffic)
    def abuse(traffic: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            try:
                sock.sendall(traffic)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
            except (ConnectionResetError, BrokenPipeError):
                pass  # routerd may drop a connection it gave up on
        assert pid_alive(pid), "routerd died"

    abuse()


async def test_malformed_admin_traffic_never_crashes_routerd(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    async with _daemon(path) as daemon:
        # In a thread: this task's trio loop keeps draining routerd's output meanwhile.
        await trio.to_thread.run_sync(_abuse, path, daemon.pid)
        await _still_serves(path)
        assert "Traceback" not in daemon.log_text(), daemon.log_text()
    assert not path.exists(), "routerd left its admin socket behind"


async def test_routerd_removes_its_admin_socket_on_exit_even_after_a_chmod(
    tmp_path: Path,
) -> None:
    path = tmp_path / "admin.sock"
    async with _daemon(path):
        os.chmod(path, 0o660)
    assert not path.exists(), "routerd left its admin socket behind"
