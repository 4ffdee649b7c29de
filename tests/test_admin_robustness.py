"""Bad admin traffic never crashes or stalls the server: it keeps answering good clients.

Random bytes, random frames after a valid HELLO, and random request maps over a
valid session (hypothesis), plus clients that vanish at awkward moments.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from admin_helpers import AdminRig, admin_rig, tags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin_sdk.session import Role, open_session
from plugin_sdk.wire import Connection
from router.admin.client import AdminClient, connect_admin
from router.admin.protocol import OPS

_settings = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.integers(-9, 9), kids, max_size=4)
    ),
    max_leaves=16,
)


async def _still_serves(rig: AdminRig) -> None:
    with trio.fail_after(10):
        async with connect_admin(rig.path) as admin:
            reply = await admin.request("plugins")
    assert [p["name"] for p in reply["plugins"]] == ["a"]


async def _send_raw(path: str, data: bytes) -> None:
    """Connect, write ``data``, half-close, read whatever comes until the server hangs up."""
    stream = await trio.open_unix_socket(path)
    async with stream:
        try:
            await stream.send_all(data)
            await stream.send_eof()
            with trio.fail_after(10):
                while await stream.receive_some(65536):
                    pass
        except trio.BrokenResourceError:
            pass  # the server may reset a connection it gave up on


@_settings
@given(garbage=st.binary(max_size=600))
async def test_random_bytes_never_hurt_the_server(tmp_path: Path, garbage: bytes) -> None:
    async with admin_rig(str(tmp_path / "s.sock"), [tags("a")]) as rig:
        await _send_raw(rig.path, garbage)
        await _still_serves(rig)


def _frame(body: Any) -> bytes:
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return struct.pack(">I", len(packed)) + packed


_frames = st.lists(
    st.builds(
        lambda code, rest: _frame([code, *rest]),
        st.integers(0, 9),
        st.lists(_values, max_size=4),
    )
    | st.binary(max_size=40),
    max_size=6,
)


@_settings
@given(frames=_frames)
async def test_random_frames_after_a_valid_hello_never_hurt_the_server(
    tmp_path: Path, frames: list[bytes]
) -> None:
    hello = Connection(Role.INITIATOR).hello()
    async with admin_rig(str(tmp_path / "s.sock"), [tags("a")]) as rig:
        await _send_raw(rig.path, hello + b"".join(frames))
        await _still_serves(rig)


_SAFE_OPS = [op for op in OPS if op != "shutdown"]
_fields = st.sampled_from(
    ["plugin", "option", "name", "position", "priority", "names", "message", "results"]
) | st.text(max_size=5)


@st.composite
def _requests(draw: st.DrawFn) -> dict[Any, Any]:
    request: dict[Any, Any] = draw(st.dictionaries(_fields, _values, max_size=5))
    request["op"] = draw(st.sampled_from(_SAFE_OPS) | _values)
    request.pop("exec", None)  # never spawn arbitrary commands
    return request


@_settings
@given(requests=st.lists(_requests(), min_size=1, max_size=5))
async def test_random_requests_get_replies_and_the_server_keeps_serving(
    tmp_path: Path, requests: list[dict[Any, Any]]
) -> None:
    async with admin_rig(str(tmp_path / "s.sock"), [tags("a")]) as rig:
        stream = await trio.open_unix_socket(rig.path)
        async with open_session(stream, stream, Role.INITIATOR) as session:
            sender = await session.open_sender()
            for request in requests:
                receiver, ref = session.pipe()
                await sender.send({**request, "reply": ref})
                if request.get("op") == "watch":
                    await receiver.aclose()
                    continue
                with trio.fail_after(10):
                    reply = await receiver.receive()
                assert isinstance(reply, dict) and isinstance(reply["ok"], bool)
                if not reply["ok"]:
                    assert isinstance(reply["error"], str) and reply["error"]
        # Random edits may have renamed or removed 'a'; the server still answers.
        async with connect_admin(rig.path) as admin:
            assert (await admin.request("stats"))["ok"] is True


@_settings
@given(payloads=st.lists(_values, min_size=1, max_size=4))
async def test_requests_without_a_reply_channel_cost_only_their_channel(
    tmp_path: Path, payloads: list[Any]
) -> None:
    async with admin_rig(str(tmp_path / "s.sock"), [tags("a")]) as rig:
        stream = await trio.open_unix_socket(rig.path)
        async with open_session(stream, stream, Role.INITIATOR) as session:
            for payload in payloads:
                bad = await session.open_sender()
                # An earlier bad payload may have got this session's channel reset: fine.
                with contextlib.suppress(trio.BrokenResourceError):
                    await bad.send(payload)
            client = AdminClient(session, await session.open_sender())
            with trio.fail_after(10):
                reply = await client.request("plugins")
            assert [p["name"] for p in reply["plugins"]] == ["a"]


async def test_a_client_that_connects_and_never_speaks_times_out_alone(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with admin_rig(str(tmp_path / "s.sock"), [tags("a")]) as rig:
        silent = await trio.open_unix_socket(rig.path)
        async with silent:
            await _still_serves(rig)
            with trio.fail_after(60):
                # The server gives up on the silent client after its handshake timeout.
                assert await silent.receive_some(65536)  # its HELLO, then the hang-up
                while await silent.receive_some(65536):
                    pass


async def test_many_clients_vanishing_mid_watch_and_mid_request(tmp_path: Path) -> None:
    async with admin_rig(str(tmp_path / "s.sock"), [tags("a")]) as rig:
        for _ in range(10):
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            raw.connect(rig.path)
            stream = trio.SocketStream(trio.socket.from_stdlib_socket(raw))
            async with open_session(stream, stream, Role.INITIATOR) as session:
                sender = await session.open_sender()
                _, watch_ref = session.pipe()
                _, send_ref = session.pipe()
                await sender.send({"op": "watch", "reply": watch_ref})
                await sender.send({"op": "send", "message": {"type": "t.x"}, "reply": send_ref})
                # Leave abruptly: the session exit closes the socket under both requests.
        await _still_serves(rig)
        rig.events.emit("after")  # a publish after all watchers left must not fail
        with trio.fail_after(10):
            while rig.events.subscribers:
                await trio.sleep(0.01)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)
