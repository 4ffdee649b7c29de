"""Subprocess plugins through the admin interface: add --exec, state, restart, remove."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from admin_helpers import admin_rig, tags

from router.admin.client import AdminClient, AdminError, connect_admin

HOST_MOUNT = shlex.join(
    [sys.executable, "-m", "plugin_sdk", "router.builtins.host_mount:HostMount", "/data /var/data"]
)


async def _row(admin: AdminClient, name: str) -> dict[str, Any]:
    rows = (await admin.request("plugins"))["plugins"]
    return next(r for r in rows if r["name"] == name)


async def test_exec_plugin_added_served_restarted_and_removed(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    async with admin_rig(path, [tags("a")]) as rig, connect_admin(path) as admin:
        with rig.events.subscribe() as events:
            added = await admin.request("add", exec=HOST_MOUNT, position=0)
            row = added["plugin"]
            assert (row["name"], row["kind"], row["state"]) == ("host-mount", "exec", "ready")
            assert isinstance(row["pid"], int) and row["restarts"] == 0
            assert row["command"] == HOST_MOUNT and row["last_error"] == ""
            # What it said of itself in its handshake (the blocking runner takes no cancels).
            assert (row["concurrency"], row["timeout"], row["on_error"]) == (1, 10.0, "fail")
            assert row["features"] == [] and row["version"] == "1.0"
            first_pid = row["pid"]

            body = {"Image": "alpine"}
            message = {"type": "container.create", "body": body}
            result = (await admin.request("send", message=message))["result"]
            assert result["messages"][0]["body"]["HostConfig"]["Binds"] == ["/data:/var/data"]
            assert [h["plugin"] for h in result["trace"]] == ["host-mount"]

            await admin.request("restart", name="host-mount")
            kinds = []
            with trio.fail_after(30):
                async for event in events:
                    kinds.append(event.kind)
                    if event.kind == "plugin.restarted":
                        break
            assert "plugin.added" in kinds
            assert event.plugin == "host-mount" and event.data["restarts"] == 1
            row = await _row(admin, "host-mount")
            assert row["state"] == "ready" and row["restarts"] == 1
            assert row["pid"] != first_pid

            await admin.request("remove", name="host-mount")
            assert [r["name"] for r in (await admin.request("plugins"))["plugins"]] == ["a"]
            # remove() returns once the plugin has stopped: its process is gone.
            with pytest.raises(ProcessLookupError):
                os.kill(row["pid"], 0)


async def test_exec_plugin_that_cannot_start_is_refused_with_the_command(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    async with admin_rig(path, [tags("a")]), connect_admin(path) as admin:
        with pytest.raises(AdminError, match="no-such-plugin-binary"):
            await admin.request("add", exec="no-such-plugin-binary --x")
        assert [r["name"] for r in (await admin.request("plugins"))["plugins"]] == ["a"]
