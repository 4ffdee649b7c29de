"""The admin server over a real unix socket, with a real Router and real plugins."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from admin_helpers import admin_rig, connect_as_uid, decode_from_server, tags

from plugin_sdk.session import ChannelResetError, Role, open_session
from plugin_sdk.wire import GoAwayReceived
from router.admin.client import AdminClient, AdminConnectionLost, AdminError, connect_admin
from router.admin.server import serve_admin
from router.admin.socket_path import AdminSocketError
from router.events import EventKind

NOBODY = 65534


@pytest.fixture
def sock(tmp_path: Path) -> str:
    return str(tmp_path / "admin.sock")


def names(reply: dict[str, Any]) -> list[str]:
    return [row["name"] for row in reply["plugins"]]


async def test_plugins_lists_the_pipeline_in_order_with_kind_state_and_counters(
    sock: str,
) -> None:
    async with admin_rig(sock, [tags("a"), tags("b")]), connect_admin(sock) as admin:
        await admin.request("send", message={"type": "t.x", "body": {}})
        reply = await admin.request("plugins")
    assert names(reply) == ["a", "b"]
    first = reply["plugins"][0]
    assert first["position"] == 0
    assert first["kind"] == "builtin"
    assert first["accepts"] == ["t.*"]
    assert first["state"] == "ready"
    assert first["pid"] is None
    assert first["command"] is None and first["last_error"] == ""
    assert first["features"] == [] and first["max_attempts"] == 3
    assert first["handled"] == 1
    assert first["p50"] is not None and first["p50"] >= 0


async def test_socket_is_private_and_removed_on_exit(sock: str) -> None:
    async with admin_rig(sock):
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert not os.path.exists(sock)


async def test_send_routes_through_the_live_pipeline_and_returns_the_trace(sock: str) -> None:
    async with admin_rig(sock, [tags("a"), tags("b")]), connect_admin(sock) as admin:
        reply = await admin.request("send", message={"type": "t.x", "body": {"n": 1}})
    result = reply["result"]
    assert result["status"] == "delivered"
    assert [m["body"] for m in result["messages"]] == [{"n": 1, "tags": ["a", "b"]}]
    assert [(h["plugin"], h["verdict"]) for h in result["trace"]] == [
        ("a", "replace"),
        ("b", "replace"),
    ]
    assert all(h["duration"] >= 0 for h in result["trace"])


async def test_add_builtin_at_a_position_takes_effect_for_the_next_message(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]), connect_admin(sock) as admin:
        added = await admin.request("add", plugin="log", option="debug", position=0)
        assert added["plugin"]["name"] == "log"
        assert names(await admin.request("plugins")) == ["log", "a"]
        result = (await admin.request("send", message={"type": "t.x", "body": {}}))["result"]
    assert [h["plugin"] for h in result["trace"]] == ["log", "a"]


async def test_add_with_a_name_and_priority(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]), connect_admin(sock) as admin:
        await admin.request("add", plugin="log", option="", name="log-2", priority=5)
        reply = await admin.request("plugins")
    assert names(reply) == ["log-2", "a"]
    assert reply["plugins"][0]["priority"] == 5


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"plugin": "no-such-thing", "option": ""}, "available: authz"),
        ({"plugin": "host-mount", "option": "relative"}, "host-mount"),
        ({"plugin": "log", "option": "", "name": "a"}, "'a'"),
    ],
)
async def test_add_refusals_say_why(sock: str, args: dict[str, Any], needle: str) -> None:
    async with admin_rig(sock, [tags("a")]), connect_admin(sock) as admin:
        with pytest.raises(AdminError) as info:
            await admin.request("add", **args)
        assert names(await admin.request("plugins")) == ["a"]
    assert needle in str(info.value)


async def test_remove_and_unknown_names(sock: str) -> None:
    async with admin_rig(sock, [tags("a"), tags("b")]), connect_admin(sock) as admin:
        assert (await admin.request("remove", name="a")) == {"ok": True, "removed": "a"}
        assert names(await admin.request("plugins")) == ["b"]
        with pytest.raises(AdminError, match=r"no plugin named 'a' \(plugins: b\)"):
            await admin.request("remove", name="a")
        with pytest.raises(AdminError, match="no plugin named 'zz'"):
            await admin.request("restart", name="zz")


async def test_move_and_reorder_change_the_order(sock: str) -> None:
    plugins = [tags("a"), tags("b"), tags("c")]
    async with admin_rig(sock, plugins), connect_admin(sock) as admin:
        assert (await admin.request("move", name="c", position=0))["order"] == ["c", "a", "b"]
        assert (await admin.request("reorder", names=["b", "a"]))["order"] == ["b", "a", "c"]
        result = (await admin.request("send", message={"type": "t.x", "body": {}}))["result"]
        assert result["messages"][0]["body"]["tags"] == ["b", "a", "c"]
        assert (await admin.request("move", name="b", position=99))["order"] == ["a", "c", "b"]


async def test_reorder_against_priority_is_refused(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]), connect_admin(sock) as admin:
        await admin.request("add", plugin="log", option="", priority=9)
        with pytest.raises(AdminError, match="priority"):
            await admin.request("move", name="log", position=1)
        assert names(await admin.request("plugins")) == ["log", "a"]


async def test_restart_of_a_builtin_makes_a_fresh_instance(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]) as rig, connect_admin(sock) as admin:
        from router.admin import view

        before = view.handle(rig.router, "a")
        reply = await admin.request("restart", name="a")
        after = view.handle(rig.router, "a")
        assert reply["plugin"]["name"] == "a"
        assert after is not before
        result = (await admin.request("send", message={"type": "t.x", "body": {}}))["result"]
    assert result["messages"][0]["body"]["tags"] == ["a"]


async def test_stats_counts_plugins_calls_and_connections(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]), connect_admin(sock) as admin:
        await admin.request("send", message={"type": "t.x", "body": {}})
        reply = await admin.request("stats")
    assert reply["plugins"] == 1
    assert reply["calls"]["handled"] == 1
    assert reply["pid"] == os.getpid()
    assert reply["admin"]["connections"] == 1
    assert reply["uptime"] >= 0


async def test_watch_streams_results_and_plugin_events(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]) as rig:
        seen: list[dict[str, Any]] = []
        async with connect_admin(sock) as watcher, connect_admin(sock) as admin:

            async def watch() -> None:
                async for event in watcher.watch():
                    seen.append(event)
                    if len(seen) == 3:
                        return

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                while rig.events.subscribers == 0:
                    await trio.sleep(0)
                await admin.request("send", message={"type": "t.x", "body": {}})
                rig.events.emit(EventKind.CRASHED, "a", pid=42)
                await admin.request("remove", name="a")
    assert [e["event"] for e in seen] == ["result", "plugin.crashed", "plugin.removed"]
    assert seen[0]["status"] == "delivered"
    assert seen[1]["plugin"] == "a" and seen[1]["pid"] == 42


async def test_watch_without_results_only_gets_plugin_events(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]) as rig, connect_admin(sock) as admin:
        got: list[dict[str, Any]] = []
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for event in admin.watch(results=False):
                    got.append(event)
                    return

            nursery.start_soon(watch)
            while rig.events.subscribers == 0:
                await trio.sleep(0)
            await admin.request("send", message={"type": "t.x", "body": {}})
            rig.events.emit(EventKind.QUARANTINED, "a")
    assert [e["event"] for e in got] == ["plugin.quarantined"]


async def test_a_closed_watch_unsubscribes(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]) as rig:
        async with connect_admin(sock) as admin:
            stream = admin.watch()
            async with trio.open_nursery() as nursery:

                async def first() -> None:
                    async for _ in stream:
                        return

                nursery.start_soon(first)
                while rig.events.subscribers == 0:
                    await trio.sleep(0)
                rig.events.emit("x")
        with trio.fail_after(5):
            while rig.events.subscribers:
                rig.events.emit("y")  # the next send notices the client is gone
                await trio.sleep(0.01)


async def test_shutdown_answers_calls_the_hook_and_serving_ends(sock: str) -> None:
    called: list[bool] = []
    async with admin_rig(sock, [tags("a")]) as rig:
        other = sock + ".2"
        async with trio.open_nursery() as nursery:
            serve = partial(serve_admin, rig.router, other, on_shutdown=lambda: called.append(True))
            await nursery.start(serve)
            async with connect_admin(other) as admin:
                reply = await admin.request("shutdown")
        # The nursery could only close because serve_admin returned by itself.
        assert reply == {"ok": True, "shutting_down": True}
        assert called == [True]
        assert not os.path.exists(other)


async def test_shutdown_sets_a_stop_event_given_positionally(sock: str) -> None:
    stop = trio.Event()
    async with admin_rig(sock, [tags("a")]) as rig, trio.open_nursery() as nursery:
        other = sock + ".2"
        await nursery.start(serve_admin, rig.router, other, stop)
        async with connect_admin(other) as admin:
            await admin.request("shutdown")
        with trio.fail_after(10):
            await stop.wait()


async def test_shutdown_ends_watches_cleanly(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]) as rig, trio.open_nursery() as nursery:
        other = sock + ".2"
        await nursery.start(partial(serve_admin, rig.router, other, events=rig.events))
        seen: list[dict[str, Any]] = []
        async with (
            connect_admin(other) as watcher,
            connect_admin(other) as admin,
            trio.open_nursery() as watching,
        ):

            async def watch() -> None:
                async for event in watcher.watch():
                    seen.append(event)

            watching.start_soon(watch)
            while rig.events.subscribers == 0:
                await trio.sleep(0)
            await admin.request("shutdown")
        # The watch loop ended by itself (no exception): routerd CLOSEd the stream.
        assert seen == []


async def test_second_server_on_a_live_socket_is_refused(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]) as rig:
        with pytest.raises(AdminSocketError, match="another routerd"):
            await serve_admin(rig.router, sock)
        async with connect_admin(sock) as admin:
            assert names(await admin.request("plugins")) == ["a"]


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory any uid can reach (pytest's tmp_path parents are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="chanrouter-admin-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_another_uid_is_refused_with_a_reason_and_logged(
    public_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Loosen what 0600 protects (as a careless chmod would) to reach the uid check.
    path = str(public_dir / "admin.sock")
    async with admin_rig(path, [tags("a")]) as rig:
        os.chmod(path, 0o666)
        status, data = await connect_as_uid(path, NOBODY)
        assert status == 0, data
        events = decode_from_server(data)
        goaways = [e for e in events if isinstance(e, GoAwayReceived)]
        assert len(goaways) == 1
        assert "permission denied: uid 65534" in goaways[0].reason
        assert rig.server.refused == 1
        async with connect_admin(path) as admin:
            assert names(await admin.request("plugins")) == ["a"]
    assert "admin connection refused" in caplog.text
    assert "uid 65534" in caplog.text


async def test_a_request_without_reply_channel_resets_its_channel_only(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]):
        stream = await trio.open_unix_socket(sock)
        async with open_session(stream, stream, Role.INITIATOR) as session:
            bad = await session.open_sender()
            await bad.send({"op": "plugins"})
            with trio.fail_after(5), pytest.raises(ChannelResetError):
                while True:
                    await bad.send({"op": "plugins"})
                    await trio.sleep(0.01)
            good = await session.open_sender()
            client = AdminClient(session, good)
            assert names(await client.request("plugins")) == ["a"]


async def test_a_client_vanishing_mid_request_does_not_disturb_the_server(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]) as rig:
        stream = await trio.open_unix_socket(sock)
        async with open_session(stream, stream, Role.INITIATOR) as session:
            requests = await session.open_sender()
            _, ref = session.pipe()
            await requests.send({"op": "send", "message": {"type": "t.x"}, "reply": ref})
        # Gone without reading the answer; the routed message still completed.
        async with connect_admin(sock) as admin:
            reply = await admin.request("plugins")
        assert reply["plugins"][0]["handled"] == 1
        assert rig.server.connections == 2


async def test_a_refused_client_is_told_why(sock: str) -> None:
    async with admin_rig(sock, [tags("a")]) as rig:
        rig.server.admits = lambda creds: False
        with pytest.raises(AdminConnectionLost, match="permission denied: uid 0"):
            async with connect_admin(sock) as admin:
                await admin.request("plugins")
        assert rig.server.refused == 1


async def test_edits_while_messages_flow_lose_no_message(sock: str) -> None:
    async with admin_rig(sock, [tags("a"), tags("b")]) as rig:
        results: list[dict[str, Any]] = []
        async with connect_admin(sock) as sender, connect_admin(sock) as editor:

            async def send_many() -> None:
                for i in range(60):
                    message = {"type": "t.x", "body": {"i": i}}
                    results.append((await sender.request("send", message=message))["result"])

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_many)
                for _ in range(5):
                    await editor.request("add", plugin="log", option="", name="x", position=0)
                    await editor.request("move", name="x", position=2)
                    await editor.request("reorder", names=["b", "a"])
                    await editor.request("restart", name="a")
                    await editor.request("remove", name="x")
        assert [r["messages"][0]["body"]["i"] for r in results] == list(range(60))
        assert all(r["status"] == "delivered" for r in results)
        # Every message went through both taggers, whatever the order was at the time.
        assert all(sorted(r["messages"][0]["body"]["tags"]) == ["a", "b"] for r in results)
        assert rig.server.requests >= 60 + 25
