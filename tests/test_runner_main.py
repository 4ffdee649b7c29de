"""The runner's entry points refuse to run where they cannot work, and say why."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from exec_helpers import PLUGINS, module_cmd

from plugin_sdk.runner import EXIT_USAGE, load_target
from router.exec import ExecHandle, PluginStartError

HOST_MOUNT = "router.builtins.host_mount:HostMount"


def run_by_hand(*args: str, env_flag: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CHANROUTER_PLUGIN"}
    if env_flag:
        env["CHANROUTER_PLUGIN"] = "1"
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_python_m_plugin_sdk_started_by_hand_explains_and_exits_2() -> None:
    done = run_by_hand("-m", "plugin_sdk", HOST_MOUNT, "/a /b")
    assert done.returncode == EXIT_USAGE
    assert "this is a chanrouter plugin; start it with routerd --plugin-exec" in done.stderr
    assert done.stdout == ""


def test_a_plugin_script_started_by_hand_explains_and_exits_2() -> None:
    done = run_by_hand(str(PLUGINS / "scripted.py"))
    assert done.returncode == EXIT_USAGE
    assert "this is a chanrouter plugin" in done.stderr
    assert "scripted.py" in done.stderr


def test_the_env_flag_without_fd3_and_fd4_still_exits_2_saying_so() -> None:
    done = run_by_hand("-m", "plugin_sdk", HOST_MOUNT, "/a /b", env_flag=True)
    assert done.returncode == EXIT_USAGE
    assert "FD 3 is not open" in done.stderr


@pytest.mark.parametrize("args", [[], ["a:B", "opt", "extra"], ["--help"]])
def test_wrong_arguments_print_usage_and_exit_2(args: list[str]) -> None:
    done = run_by_hand("-m", "plugin_sdk", *args)
    assert done.returncode == EXIT_USAGE
    assert "usage: python -m plugin_sdk package.module:ClassName" in done.stderr


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("no_colon", "expected package.module:ClassName"),
        ("no.such.module:Thing", "cannot import 'no.such.module'"),
        ("router.builtins.host_mount:Nope", "has no attribute 'Nope'"),
        ("router.builtins.host_mount:__doc__", "is not a plugin class"),
    ],
)
def test_bad_targets_are_named_in_the_error(target: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        load_target(target)


async def test_a_bad_target_under_the_router_fails_start_with_the_import_error() -> None:
    handle = ExecHandle(module_cmd("no.such.module:Thing"))
    with pytest.raises(PluginStartError, match=r"refused to start: .*cannot import"):
        await handle.start()


async def test_a_bad_option_under_the_router_fails_start_naming_plugin_and_option() -> None:
    handle = ExecHandle(module_cmd(HOST_MOUNT, "relative/path /x"))
    with pytest.raises(PluginStartError, match=r"host-mount.*not an absolute path"):
        await handle.start()
