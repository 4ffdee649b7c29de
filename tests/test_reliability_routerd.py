"""routerd as a real process: its death takes its plugins along, SIGTERM drains, bad input.

Every test runs ``routerd`` with real subprocess plugins and talks to it over real
pipes (see :func:`reliability_helpers.routerd`).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import msgpack
import trio
from exec_helpers import pid_alive, wait_dead, wait_until
from reliability_helpers import (
    RouterdProcess,
    children_of,
    job_lines,
    routerd,
    scripted_cmd,
    worker_cmd,
)


async def test_sigkill_of_routerd_takes_every_plugin_down_within_two_seconds() -> None:
    args = ["--log-level", "warning"]
    for name in ("a", "b", "c"):
        args += ["--plugin-exec", worker_cmd(f"name={name}")]
    async with routerd(args) as daemon:
        await daemon.send(job_lines(1)[0])
        [result] = await daemon.wait_results(1)
        assert result["status"] == "delivered"
        plugins = children_of(daemon.pid)
        assert len(plugins) == 3
        assert sorted(result["messages"][0]["body"]["pids"]) == sorted(plugins)
        daemon.signal(signal.SIGKILL)
        await daemon.wait_exit()
        for pid in plugins:
            dead = await trio.to_thread.run_sync(wait_dead, pid, 2.0)
            assert dead, f"plugin pid {pid} outlived routerd by more than 2 s"


async def _sigterm_with_messages_in_flight(note: Path) -> tuple[RouterdProcess, int, int]:
    """Feed 40 slow messages, SIGTERM once 3 results are out; (daemon, status, plugin pid).

    stdin stays open, as it does for a daemon fed by a long-lived producer.
    """
    slow = scripted_cmd(f"name=slow concurrency=1 stop-note={note}")
    async with routerd(["--log-level", "info", "--plugin-exec", slow]) as daemon:
        lines = [
            json.dumps({"type": "delay", "id": f"d-{i:03d}", "body": 0.02}).encode() + b"\n"
            for i in range(40)
        ]
        await daemon.send(b"".join(lines))
        # Some results out: the rest of what was read is queued or in flight.
        await daemon.wait_results(3)
        [plugin] = children_of(daemon.pid)
        daemon.signal(signal.SIGTERM)
        code = await daemon.wait_exit()
    return daemon, code, plugin


async def test_sigterm_finishes_messages_in_flight_writes_their_results_and_stops_plugins(
    tmp_path: Path,
) -> None:
    note = tmp_path / "stopped"
    daemon, _, plugin = await _sigterm_with_messages_in_flight(note)
    results = daemon.results
    # All 40 were read at once, so all 40 finish, in input order, delivered.
    assert [r["id"] for r in results] == [f"d-{i:03d}" for i in range(40)], daemon.log_text()
    assert all(r["status"] == "delivered" for r in results)
    assert "got SIGTERM" in daemon.log_text()
    assert note.read_text() == "stopped"  # the plugin ran its stop hook: a graceful stop
    assert not pid_alive(plugin)


async def test_sigterm_with_stdin_still_open_exits_0(tmp_path: Path) -> None:
    daemon, code, _ = await _sigterm_with_messages_in_flight(tmp_path / "stopped")
    assert code == 0, daemon.log_text()


async def test_sigterm_after_end_of_input_exits_0(tmp_path: Path) -> None:
    async with routerd(["--plugin-exec", scripted_cmd("name=slow")]) as daemon:
        for i in range(10):
            line = {"type": "delay", "id": f"d-{i}", "body": 0.02}
            await daemon.send(json.dumps(line).encode() + b"\n")
        await daemon.close_stdin()
        await daemon.wait_results(1)
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait_exit() == 0, daemon.log_text()
    assert [r["id"] for r in daemon.results] == [f"d-{i}" for i in range(10)]


async def test_malformed_json_lines_fail_alone_and_the_stream_goes_on() -> None:
    good = job_lines(3)
    bad = [
        b"this is not json\n",
        b'{"type": "job", "id": "x", "body": \n',
        b"[1, 2, 3]\n",
        b'{"id": "no-type"}\n',
        b'{"type": "", "id": "empty-type"}\n',
        b"\xff\xfe\n",
    ]
    stream = [good[0], *bad[:3], good[1], *bad[3:], good[2]]
    async with routerd(["--plugin-exec", worker_cmd("name=w")]) as daemon:
        await daemon.send(b"".join(stream))
        await daemon.close_stdin()
        assert await daemon.wait_exit() == 0
    results = daemon.results
    assert len(results) == len(stream)
    statuses = [r["status"] for r in results]
    assert statuses == ["delivered"] + ["failed"] * 3 + ["delivered"] + ["failed"] * 3 + [
        "delivered"
    ]
    assert [r["id"] for r in results if r["status"] == "delivered"] == [
        "m-00000",
        "m-00001",
        "m-00002",
    ]
    assert "line 2" in results[1]["reason"]
    for result in results:
        if result["status"] == "failed":
            assert result["reason"], result


async def test_malformed_msgpack_input_fails_alone_and_the_stream_goes_on() -> None:
    def job(i: int) -> bytes:
        packed: bytes = msgpack.packb({"type": "job", "id": f"m-{i}", "body": {}})
        return packed

    stream = [
        job(0),
        msgpack.packb("a string, not a map"),
        job(1),
        msgpack.packb({"id": "no-type"}),
        b"\xc1",  # a byte msgpack never uses
        job(2),
    ]
    args = ["--format", "msgpack", "--plugin-exec", worker_cmd("name=w")]
    async with routerd(args) as daemon:
        await daemon.send(b"".join(stream))
        await daemon.close_stdin()
        with trio.fail_after(30):
            await daemon.process.wait()
            await daemon.stdout_closed.wait()
    # The helper parses JSON lines; this stream's results are msgpack: read them raw.
    assert daemon.process.returncode == 0
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(daemon.raw_stdout)
    results = list(unpacker)
    assert [r["status"] for r in results] == [
        "delivered",
        "failed",
        "delivered",
        "failed",
        "failed",
        "delivered",
    ]
    assert [r["id"] for r in results if r["status"] == "delivered"] == ["m-0", "m-1", "m-2"]


async def test_a_plugin_that_crashes_in_routerd_is_restarted_and_routing_goes_on() -> None:
    async with routerd(["--log-level", "info", "--plugin-exec", scripted_cmd("name=s")]) as d:
        crash = json.dumps({"type": "crash", "id": "boom"}).encode() + b"\n"
        await d.send(crash)
        [failed] = await d.wait_results(1)
        assert failed["status"] == "failed" and failed["by"] == "s"
        # The default restart policy waits 1 s first; then the plugin answers again.
        await wait_until(lambda: "ready" in d.log_text().rpartition("crashed")[2], within=15)
        await d.send(json.dumps({"type": "echo", "id": "after", "body": 1}).encode() + b"\n")
        results = await d.wait_results(2)
        assert results[1]["status"] == "delivered", d.log_text()
        await d.close_stdin()
        assert await d.wait_exit() == 0
