"""plugin_sdk.testing's conformance check, against conforming and broken real plugins."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from plugin_sdk import Message, Verdict
from plugin_sdk.testing import assert_conforms, check_plugin
from plugin_sdk.testing.__main__ import main as cli_main

ROOT = pathlib.Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "tests" / "plugins"
PY = sys.executable


def test_the_plugin_written_without_the_sdk_conforms() -> None:
    report = assert_conforms([PY, str(ROOT / "examples" / "raw_plugin.py")])
    assert report.info is not None and report.info.name == "raw-label"
    # One probe (the one exact type it accepts), then a batch of `concurrency` calls.
    assert len(report.replies) == 1 + 16
    for message, reply in report.replies:
        assert message.type == "container.create"
        assert reply.verdict is Verdict.CONTINUE
        assert reply.messages[0].body == {"Labels": {"org.chanrouter.raw": "seen"}}
    assert report.exit_code == 0


async def test_an_sdk_plugin_conforms_and_answers_the_given_messages() -> None:
    create = Message("container.create", {"Image": "a", "Env": ["CPU_LIMIT=1"]}, "m1")
    report = await check_plugin(
        [PY, "-m", "plugin_sdk", "examples.env_to_config:EnvToConfig"], [create]
    )
    report.raise_for_problems()
    [(_, reply)] = report.replies
    assert reply.messages[0].body["HostConfig"] == {"NanoCpus": 1_000_000_000}


@pytest.mark.parametrize("runner", ["blocking", "trio"])
async def test_the_sdk_runners_conform_with_a_batch_of_64_calls(runner: str) -> None:
    env = {**os.environ, "CHANROUTER_RUNNER": runner}
    report = await check_plugin([PY, str(ROOT / "bench" / "echo_plugin.py")], env=env)
    report.raise_for_problems()
    assert report.info is not None and report.info.concurrency == 64
    # Only the trio runner can stop a handler midway, so only it names the feature.
    assert report.features == (("cancel",) if runner == "trio" else ())
    assert len(report.replies) == 1 + 64  # the probe alone, then a batch of 64
    assert all(reply.messages == (message,) for message, reply in report.replies)


async def test_a_plugin_answering_batches_in_any_grouping_conforms_but_for_the_by_hand_check() -> (
    None
):
    report = await check_plugin([PY, str(PLUGINS / "raw_plugin.py"), "echo"], timeout=5)
    assert report.problems and all("by hand" in p for p in report.problems), report.problems
    assert len(report.replies) == 1 + 4
    assert report.exit_code == 0


async def test_a_builtin_served_by_the_runner_conforms() -> None:
    report = await check_plugin(
        [PY, "-m", "plugin_sdk", "router.builtins.host_mount:HostMount", "/data /var/data"]
    )
    report.raise_for_problems()


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ([PY, str(PLUGINS / "exits_early.py")], "session failed"),
        ([PY, str(PLUGINS / "raw_plugin.py"), "bad-info"], "bad handshake"),
        ([PY, str(PLUGINS / "raw_plugin.py"), "app-version"], "application protocol version 99"),
        (
            [PY, str(PLUGINS / "raw_plugin.py"), "close-control"],
            "closed its control channel with 1 calls unanswered",
        ),
        ([PY, str(PLUGINS / "raw_plugin.py"), "bad-reply"], "sent a malformed answer: "),
        (
            [PY, str(PLUGINS / "raw_plugin.py"), "unknown-id"],
            "answered call 1001, which was never made",
        ),
        ([PY, str(PLUGINS / "raw_plugin.py"), "answer-twice"], "answered call 1 twice"),
        ([PY, str(PLUGINS / "raw_plugin.py"), "cancel-answers"], "answered call 5 twice"),
        ([PY, "-m", "plugin_sdk", "examples.authz_chain:ImagePolicy", ""], "refused to start"),
        (["/nonexistent/plugin"], "not found"),
    ],
)
async def test_broken_plugins_are_reported_with_what_is_wrong(
    argv: list[str], problem: str
) -> None:
    report = await check_plugin(argv, timeout=5)
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems
    with pytest.raises(AssertionError, match="does not conform"):
        report.raise_for_problems()


async def test_a_plugin_that_never_speaks_is_reported_not_waited_for() -> None:
    report = await check_plugin([PY, str(PLUGINS / "silent.py")], timeout=1)
    assert any("no handshake" in p or "session failed" in p for p in report.problems)
    assert any("by hand" in p for p in report.problems)  # it ignores the missing env var too


# -- the command line: python -m plugin_sdk.testing ------------------------------------


def _check_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "plugin_sdk.testing", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=ROOT,
    )


def test_the_command_line_check_passes_a_conforming_plugin_with_status_0() -> None:
    done = _check_cli(PY, str(ROOT / "examples" / "raw_plugin.py"))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert (
        lines[1] == "plugin: raw-label 1.0 accepts container.create (concurrency 16, timeout 10s)"
    )
    assert "features: none" in lines
    # The probe and the batch of 16 answer alike: one line, counted.
    assert "  container.create -> continue with 1 message(s) (x17)" in lines
    assert lines[-1] == "conforms"


def test_the_command_line_check_shows_the_features_and_the_given_messages() -> None:
    env = {**os.environ, "CHANROUTER_RUNNER": "trio"}
    message = '{"type": "bench.echo", "body": "hi"}'
    done = _check_cli(
        "--message", message, "--", PY, str(ROOT / "bench" / "echo_plugin.py"), env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "features: cancel" in done.stdout
    # The message given, then a batch of 64 (the plugin's concurrency) made from it.
    assert "  bench.echo -> continue with 1 message(s) (x65)\n" in done.stdout


def test_the_command_line_check_lists_the_problems_with_status_1() -> None:
    done = _check_cli(PY, str(PLUGINS / "raw_plugin.py"), "bad-reply")
    assert done.returncode == 1
    assert "does not conform (2 problem(s)):" in done.stdout
    assert "  - sent a malformed answer: answer 1: verdict must be one of" in done.stdout


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ([], "the plugin command is missing"),
        (["--message", "{", "x"], "argument --message/-m: not JSON"),
        (["--message", '{"body": 1}', "x"], "'type' must be a non-empty string"),
        (["--timeout", "0", "x"], "--timeout must be > 0 seconds"),
    ],
)
def test_the_command_line_check_refuses_bad_arguments_with_status_2(
    args: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(args) == 2
    assert complaint in capsys.readouterr().err
