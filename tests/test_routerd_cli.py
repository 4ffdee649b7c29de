"""routerd as users run it: through click's CliRunner and as a real process."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import msgpack
import pytest
from click.testing import CliRunner

from router.cli.routerd import main

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEED = {"type": "container.create", "id": "c1", "body": {"Image": "nginx", "HostConfig": {}}}


def _lines(*objs: dict[str, Any]) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def _invoke(args: list[str], stdin: str | bytes = "") -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(main, args, input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    results = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, results, result.output


def test_the_seeds_example_adds_the_bind_to_container_create() -> None:
    code, results, _ = _invoke(["--plugin", "host-mount", "/data /var/data"], _lines(SEED))
    assert code == 0
    [r] = results
    assert r["status"] == "delivered"
    assert r["messages"][0]["body"]["HostConfig"]["Binds"] == ["/data:/var/data"]
    assert [h["plugin"] for h in r["trace"]] == ["host-mount"]


def test_one_result_per_input_in_input_order_bad_lines_included() -> None:
    msgs = [dict(SEED, id=f"m{i}") for i in range(30)]
    stdin = _lines(*msgs[:10]) + "{broken\n" + _lines(*msgs[10:])
    code, results, _ = _invoke(
        ["--plugin", "host-mount", "/data /var/data", "--max-in-flight", "4"], stdin
    )
    assert code == 0
    ids = [r["id"] for r in results]
    assert ids == [f"m{i}" for i in range(10)] + ["line-11"] + [f"m{i}" for i in range(10, 30)]
    assert results[10]["status"] == "failed"
    assert results[10]["reason"].startswith("line 11: invalid JSON")


def test_msgpack_format_reads_and_writes_msgpack() -> None:
    data = msgpack.packb(SEED) + b"\xc1" + msgpack.packb(dict(SEED, id="c2"))
    result = CliRunner().invoke(
        main, ["--format", "msgpack", "--plugin", "host-mount", "/a /b"], input=data
    )
    assert result.exit_code == 0, result.output
    out = list(msgpack.Unpacker(__import__("io").BytesIO(result.stdout_bytes), raw=False))
    assert [(r["id"], r["status"]) for r in out] == [
        ("c1", "delivered"),
        ("input-2", "failed"),
        ("c2", "delivered"),
    ]
    assert "at byte" in out[1]["reason"]


def test_print_plan_shows_command_line_order_across_plugin_kinds() -> None:
    args = [
        "--plugin", "log", "",
        "--plugin-exec", f"{sys.executable} -m plugin_sdk examples.audit:Audit",
        "--plugin", "host-mount", "/data /var/data",
        "--print-plan",
    ]  # fmt: skip
    code, _, output = _invoke(args)
    assert code == 0, output
    lines = [line.split()[1] for line in output.splitlines() if line.strip()[:1].isdigit()]
    # audit has priority -100, so it sorts last; the others keep command-line order.
    assert lines == ["log", "host-mount", "audit"]


def test_two_instances_of_one_builtin_get_their_own_names() -> None:
    args = [
        "--plugin", "authz:no-untrusted", "deny container.create Image=untrusted/*; allow *",
        "--plugin", "authz:no-privileged",
        "deny container.create HostConfig.Privileged=true; allow *",
    ]  # fmt: skip
    evil = {"type": "container.create", "id": "e", "body": {"Image": "untrusted/x"}}
    priv = {
        "type": "container.create",
        "id": "p",
        "body": {"Image": "ok", "HostConfig": {"Privileged": True}},
    }
    code, results, _ = _invoke(args, _lines(evil, priv, SEED))
    assert code == 0
    assert [(r["status"], r["by"]) for r in results] == [
        ("dropped", "no-untrusted"),
        ("dropped", "no-privileged"),
        ("delivered", None),
    ]


def test_unknown_builtin_is_a_usage_error_listing_the_available_ones() -> None:
    code, _, output = _invoke(["--plugin", "nope", ""])
    assert code == 2
    assert "nope" in output and "host-mount" in output and "authz" in output


def test_invalid_option_is_a_usage_error_naming_plugin_and_option() -> None:
    code, _, output = _invoke(["--plugin", "host-mount", "only-one-path"])
    assert code == 2
    assert "host-mount" in output and "only-one-path" in output


def test_bad_numbers_are_usage_errors() -> None:
    assert _invoke(["--max-in-flight", "0"])[0] == 2
    assert _invoke(["--hop-limit", "x"])[0] == 2


def _routerd(
    *args: str, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "router.cli.routerd", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_readme_demo_runs_as_a_real_process_with_subprocess_plugins() -> None:
    py = sys.executable
    proc = _routerd(
        "--plugin", "host-mount", "/data /var/data",
        "--plugin-exec", f"{py} -m plugin_sdk examples.env_to_config:EnvToConfig",
        "--plugin-exec", f"{py} -m plugin_sdk examples.authz_chain:NoPrivileged",
        stdin=(ROOT / "examples" / "containers.jsonl").read_bytes(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["id"], r["status"]) for r in results] == [
        ("web-1", "delivered"),
        ("db-1", "delivered"),
        ("evil-1", "dropped"),
        ("web-1-start", "delivered"),
        ("bad-1", "failed"),
        ("line-6", "failed"),
    ]
    web = results[0]["messages"][0]["body"]["HostConfig"]
    assert web == {"Binds": ["/data:/var/data"], "NanoCpus": 2_000_000_000, "Memory": 512 << 20}
    assert results[4]["by"] == "env-to-config" and "CPU_LIMIT" in results[4]["reason"]
    assert b"pipeline order" in proc.stderr


def test_a_plugin_command_that_cannot_start_exits_1_with_a_clear_error() -> None:
    proc = _routerd("--plugin-exec", "/nonexistent/plugin --flag")
    assert proc.returncode == 1
    assert b"/nonexistent/plugin" in proc.stderr


def test_usage_errors_exit_2_as_a_real_process() -> None:
    proc = _routerd("--plugin", "host-mount")
    assert proc.returncode == 2
    assert b"--plugin" in proc.stderr


def test_an_unusable_admin_socket_exits_1_naming_the_path(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "no-such-dir" / "admin.sock"
    proc = _routerd("--serve", "--admin-socket", str(path))
    assert proc.returncode == 1
    assert f"cannot serve the admin socket {path}".encode() in proc.stderr
    assert b"Traceback" not in proc.stderr


def test_two_plugins_with_one_name_exit_1_naming_it() -> None:
    code, _, output = _invoke(
        ["--plugin", "host-mount", "/a /b", "--plugin", "host-mount", "/c /d"]
    )
    assert code == 1
    assert "host-mount" in output


def test_version_is_the_distributions() -> None:
    from importlib.metadata import version

    code, _, output = _invoke(["--version"])
    assert code == 0
    assert output.strip() == f"routerd, version {version('chanrouter')}"


def test_a_reader_closing_stdout_stops_routerd_quietly_with_sigpipe_status(
    tmp_path: pathlib.Path,
) -> None:
    # Far more results than a pipe holds, so routerd is still writing when we go.
    inputs = tmp_path / "many.jsonl"
    inputs.write_text(_lines(*({**SEED, "id": f"c{i}"} for i in range(20_000))))
    echo = f"{sys.executable} -m plugin_sdk examples.env_to_config:EnvToConfig"
    with inputs.open("rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "router.cli.routerd", "--plugin-exec", echo],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        assert proc.stdout is not None and proc.stderr is not None
        first = json.loads(proc.stdout.readline())
        proc.stdout.close()  # `routerd ... | head -1`
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    assert first["id"] == "c0"
    assert code == 141, stderr  # 128 + SIGPIPE, what a shell reports for `cat` there
    assert "stdout was closed by its reader: stopped routing" in stderr
    assert "Error" not in stderr and "Traceback" not in stderr, stderr
    # The plugin was stopped, not left behind.
    pid = int(stderr.split("(pid ")[1].split(")")[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
