"""routerctl through click's CliRunner against a real admin server (in a daemon thread)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_helpers import ThreadedDaemon, tags
from click.testing import CliRunner, Result

from router.admin.client import connect_admin
from router.cli.routerctl import main
from router.events import EventKind


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[ThreadedDaemon]:
    with ThreadedDaemon(str(tmp_path / "admin.sock"), [tags("a"), tags("b")]) as d:
        yield d


def ctl(daemon: ThreadedDaemon, *args: str) -> Result:
    return CliRunner().invoke(main, ["--socket", daemon.path, *args], catch_exceptions=False)


def ctl_json(daemon: ThreadedDaemon, *args: str) -> Any:
    result = ctl(daemon, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_plugins_prints_a_table_in_pipeline_order(daemon: ThreadedDaemon) -> None:
    result = ctl(daemon, "plugins")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["#", "NAME", "KIND"]
    assert [line.split()[1] for line in lines[1:]] == ["a", "b"]
    assert lines[1].split()[2:6] == ["builtin", "t.*", "0", "ready"]


def test_every_command_has_json(daemon: ThreadedDaemon) -> None:
    assert [p["name"] for p in ctl_json(daemon, "plugins")["plugins"]] == ["a", "b"]
    assert ctl_json(daemon, "stats")["plugins"] == 2
    sent = ctl_json(daemon, "send", "t.x", '{"k": 1}')
    assert sent["result"]["messages"][0]["body"] == {"k": 1, "tags": ["a", "b"]}
    assert (
        ctl_json(daemon, "add", "--plugin", "log", "", "--position", "0")["plugin"]["name"] == "log"
    )
    assert ctl_json(daemon, "move", "log", "--position", "2")["order"] == ["a", "b", "log"]
    assert ctl_json(daemon, "reorder", "b", "a")["order"] == ["b", "a", "log"]
    assert ctl_json(daemon, "restart", "a")["plugin"]["name"] == "a"
    assert ctl_json(daemon, "remove", "log") == {"ok": True, "removed": "log"}
    assert ctl_json(daemon, "shutdown") == {"ok": True, "shutting_down": True}
    assert daemon.wait_stopped()


def test_json_before_the_command_works_too(daemon: ThreadedDaemon) -> None:
    result = ctl(daemon, "--json", "stats")
    assert json.loads(result.output)["ok"] is True


def test_send_prints_status_trace_and_outputs(daemon: ThreadedDaemon) -> None:
    result = ctl(daemon, "send", "t.x", '{"k": 1}', "--id", "m-7")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "delivered  (input m-7)"
    assert lines[1] == "trace:"
    assert [line.split()[:3] for line in lines[3:5]] == [
        ["a", "t.x", "replace"],
        ["b", "t.x", "replace"],
    ]
    assert lines[-1] == '  t.x {"k":1,"tags":["a","b"]}'


def test_send_of_a_type_nobody_accepts_is_delivered_unchanged(daemon: ThreadedDaemon) -> None:
    result = ctl(daemon, "send", "other.type")
    assert "no plugin accepts this type" in result.output
    assert result.exit_code == 0


def test_add_remove_move_reorder_print_what_they_did(daemon: ThreadedDaemon) -> None:
    added = ctl(daemon, "add", "--plugin", "host-mount", "/data /var/data", "--name", "hm")
    assert added.exit_code == 0, added.output
    assert added.output.splitlines()[0] == "added"
    assert added.output.splitlines()[2].split()[1] == "hm"
    assert ctl(daemon, "move", "hm", "--position", "0").output == "pipeline order: hm -> a -> b\n"
    assert ctl(daemon, "reorder", "b").output == "pipeline order: b -> hm -> a\n"
    assert ctl(daemon, "remove", "hm").output == "removed hm\n"
    assert ctl(daemon, "restart", "a").output.startswith("restarted\n")


def test_daemon_saying_no_exits_1_with_its_reason(daemon: ThreadedDaemon) -> None:
    result = ctl(daemon, "remove", "nope")
    assert result.exit_code == 1
    assert "routerd: no plugin named 'nope' (plugins: a, b)" in result.output
    result = ctl(daemon, "add", "--plugin", "host-mount", "not-absolute")
    assert result.exit_code == 1
    assert "host-mount" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["add"],
        ["add", "--plugin", "log", "", "--exec", "x"],
        ["move", "a"],
        ["move", "a", "--position", "-1"],
        ["send", "t.x", "{not json"],
        ["reorder"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(daemon: ThreadedDaemon, args: list[str]) -> None:
    assert ctl(daemon, *args).exit_code == 2


def test_no_daemon_exits_3_naming_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "nobody-here.sock")
    result = CliRunner().invoke(main, ["--socket", path, "plugins"])
    assert result.exit_code == 3
    assert path in result.output
    assert "--socket" in result.output
    assert "is routerd running" in result.output


def test_a_refused_connection_exits_3_with_the_reason(daemon: ThreadedDaemon) -> None:
    assert daemon.rig is not None
    daemon.rig.server.admits = lambda creds: False
    result = ctl(daemon, "plugins")
    assert result.exit_code == 3
    assert "permission denied" in result.output


def test_watch_prints_events_as_they_happen(daemon: ThreadedDaemon) -> None:
    assert daemon.rig is not None
    rig = daemon.rig

    def publish_when_watched() -> None:
        rig.events.emit(EventKind.CRASHED, "a", pid=99)
        rig.events.emit(EventKind.RESTARTED, "a", pid=100)

    # The watcher subscribes, then these land; --count ends the stream.
    def feeder() -> None:
        while daemon.run_sync(lambda: rig.events.subscribers) == 0:
            pass
        daemon.run_sync(publish_when_watched)

    thread = threading.Thread(target=feeder)
    thread.start()
    result = ctl(daemon, "watch", "--count", "2", "--no-results")
    thread.join()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[1:] for line in lines] == [
        ["plugin.crashed", "a", "pid=99"],
        ["plugin.restarted", "a", "pid=100"],
    ]


def test_watch_json_prints_one_object_per_line(daemon: ThreadedDaemon) -> None:
    assert daemon.rig is not None
    rig = daemon.rig

    async def send_one() -> None:
        async with connect_admin(daemon.path) as admin:
            await admin.request("send", message={"type": "t.x"})

    def feeder() -> None:
        # Not through CliRunner: it swaps sys.stdout, which the watching runner owns.
        while daemon.run_sync(lambda: rig.events.subscribers) == 0:
            pass
        daemon.run(send_one)

    thread = threading.Thread(target=feeder)
    thread.start()
    result = ctl(daemon, "watch", "--count", "1", "--json")
    thread.join()
    event = json.loads(result.output)
    assert event["event"] == "result"
    assert event["status"] == "delivered"
