"""A real routerd process reconfigured by real routerctl processes while messages flow."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
ROUTERD = [sys.executable, "-m", "router.cli.routerd"]
ROUTERCTL = [sys.executable, "-c", "from router.cli.routerctl import main; main()"]


def _wait_for_socket(path: pathlib.Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise AssertionError(f"routerd exited early: {err}")
        if time.monotonic() > deadline:
            raise AssertionError("routerd did not create its admin socket in 30 s")
        time.sleep(0.02)


def ctl(sock: pathlib.Path, *args: str) -> Any:
    proc = subprocess.run(
        [*ROUTERCTL, "--socket", str(sock), "--json", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.fixture
def daemon(tmp_path: pathlib.Path) -> Iterator[tuple[pathlib.Path, subprocess.Popen[bytes]]]:
    sock = tmp_path / "admin.sock"
    proc = subprocess.Popen(
        [*ROUTERD, "--serve", "--admin-socket", str(sock), "--plugin", "log", "debug"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
    )
    try:
        _wait_for_socket(sock, proc)
        yield sock, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _names(sock: pathlib.Path) -> list[str]:
    reply = ctl(sock, "plugins")
    return [row["name"] for row in reply["plugins"]]


def test_routerctl_reconfigures_a_running_daemon_then_shuts_it_down(
    daemon: tuple[pathlib.Path, subprocess.Popen[bytes]],
) -> None:
    sock, proc = daemon
    assert _names(sock) == ["log"]
    ctl(sock, "add", "--plugin", "host-mount", "/data /var/data")
    py = sys.executable
    ctl(sock, "add", "--exec", f"{py} -m plugin_sdk examples.env_to_config:EnvToConfig")
    assert _names(sock) == ["log", "host-mount", "env-to-config"]

    sent = ctl(sock, "send", "container.create", '{"Image": "nginx", "Env": ["CPU_LIMIT=1"]}')
    result = sent.get("result", sent)
    assert result["status"] == "delivered"
    host_config = result["messages"][0]["body"]["HostConfig"]
    assert host_config == {"Binds": ["/data:/var/data"], "NanoCpus": 1_000_000_000}
    assert [h["plugin"] for h in result["trace"]] == ["log", "host-mount", "env-to-config"]

    ctl(sock, "move", "env-to-config", "--position", "0")
    assert _names(sock) == ["env-to-config", "log", "host-mount"]
    ctl(sock, "remove", "host-mount")
    assert _names(sock) == ["env-to-config", "log"]

    ctl(sock, "shutdown")
    assert proc.wait(timeout=30) == 0
    assert not sock.exists()


def test_edits_under_load_lose_no_message(tmp_path: pathlib.Path) -> None:
    """Stream mode with an admin socket: add, reorder and remove while inputs flow."""
    sock = tmp_path / "admin.sock"
    proc = subprocess.Popen(
        [*ROUTERD, "--admin-socket", str(sock), "--plugin", "log", "debug", "--max-in-flight", "8"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=ENV,
        cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    _wait_for_socket(sock, proc)
    total = 600
    outputs: list[bytes] = []
    reader = threading.Thread(target=lambda: outputs.extend(proc.stdout or []))
    reader.start()

    def feed(start: int, stop: int) -> None:
        assert proc.stdin is not None
        for i in range(start, stop):
            msg = {"type": "container.create", "id": f"m{i}", "body": {"Image": "x"}}
            proc.stdin.write(json.dumps(msg).encode() + b"\n")
        proc.stdin.flush()

    py = sys.executable
    feed(0, 150)
    ctl(sock, "add", "--plugin", "host-mount", "/data /var/data")
    feed(150, 300)
    ctl(sock, "add", "--exec", f"{py} -m plugin_sdk examples.audit:Audit")
    feed(300, 450)
    ctl(sock, "move", "host-mount", "--position", "0")
    ctl(sock, "remove", "log")
    feed(450, total)
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0
    reader.join(timeout=30)
    results = [json.loads(line) for line in outputs]
    assert [r["id"] for r in results] == [f"m{i}" for i in range(total)]
    assert all(r["status"] == "delivered" for r in results)
    # Once host-mount is in, every later message has its bind.
    late = results[300:]
    assert all("/data:/var/data" in r["messages"][0]["body"]["HostConfig"]["Binds"] for r in late)
    assert not sock.exists()
