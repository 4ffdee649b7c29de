"""The bundled example plugins: their behaviour, and the same results in and out of process."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest

import router
from examples.audit import Audit
from examples.authz_chain import ImagePolicy, NoPrivileged
from examples.env_to_config import EnvToConfig
from plugin_sdk import Message, OptionError, Plugin, Verdict
from plugin_sdk.testing import run_plugin
from router.builtins.host_mount import HostMount
from router.exec import ExecHandle

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _create(body: dict[str, Any], mid: str = "m") -> Message:
    return Message("container.create", body, mid)


def test_env_to_config_turns_limits_into_host_config_fields() -> None:
    env = ["CPU_LIMIT=1.5", "MEMORY_LIMIT=512m", "PIDS_LIMIT=100", "OTHER=x"]
    [reply] = run_plugin(EnvToConfig(), _create({"Image": "a", "Env": env, "HostConfig": {}}))
    [out] = reply.messages
    assert out.body["HostConfig"] == {
        "NanoCpus": 1_500_000_000,
        "Memory": 512 << 20,
        "PidsLimit": 100,
    }
    assert out.body["Env"] == env


def test_env_to_config_leaves_messages_without_limits_alone_and_rejects_bad_values() -> None:
    same, bad = run_plugin(
        EnvToConfig(),
        _create({"Image": "a", "Env": ["A=1"]}),
        _create({"Image": "a", "Env": ["MEMORY_LIMIT=lots"]}),
    )
    assert same.verdict is Verdict.CONTINUE and same.messages == ()
    assert bad.verdict is Verdict.ERROR and "MEMORY_LIMIT='lots'" in bad.reason


def test_audit_emits_a_derived_event_and_passes_the_message_on() -> None:
    [reply] = run_plugin(Audit(), _create({"Image": "nginx"}, "c1"))
    [event] = reply.messages
    assert event.type == "audit.event"
    assert event.body == {
        "action": "container.create",
        "message_id": "c1",
        "image": "nginx",
        "binds": [],
    }


def test_the_authz_chain_needs_every_plugin_to_allow() -> None:
    images, privileged = ImagePolicy("library"), NoPrivileged()
    ok = _create({"Image": "nginx"})
    foreign = _create({"Image": "untrusted/x"})
    priv = _create({"Image": "nginx", "HostConfig": {"Privileged": True}})
    assert [r.verdict for r in run_plugin(images, ok, foreign, priv)] == [
        Verdict.CONTINUE,
        Verdict.DROP,
        Verdict.CONTINUE,
    ]
    assert [r.verdict for r in run_plugin(privileged, ok, foreign, priv)] == [
        Verdict.CONTINUE,
        Verdict.CONTINUE,
        Verdict.DROP,
    ]
    with pytest.raises(OptionError, match="authz-images"):
        ImagePolicy("")


INPUTS = [
    _create({"Image": "nginx", "Env": ["CPU_LIMIT=2"], "HostConfig": {}}, "a"),
    _create({"Image": "untrusted/x"}, "b"),
    _create({"Image": "nginx", "HostConfig": {"Privileged": True}}, "c"),
    _create({"Image": "nginx", "Env": ["CPU_LIMIT=-1"]}, "d"),
    _create(["not", "a", "map"], "e"),  # type: ignore[arg-type]
    Message("container.start", {"Id": "a"}, "f"),
]
PLUGINS: list[tuple[type[Plugin], str]] = [
    (ImagePolicy, "library"),
    (NoPrivileged, ""),
    (HostMount, "/data /var/data"),
    (EnvToConfig, ""),
    (Audit, ""),
]


def _comparable(result: router.Result) -> Any:
    wire = result.to_wire()
    for hop in wire["trace"]:
        hop.pop("duration")
    for m in wire["messages"]:
        if m["type"] == "audit.event":  # derived ids are fresh per process
            m.pop("id")
    for hop in wire["trace"]:
        if hop["type"] == "audit.event":
            hop.pop("message_id")
    return wire


async def _route_all(plugins: list[Any]) -> list[Any]:
    async with router.open(plugins=plugins) as r:
        return [_comparable(await r.route(m)) for m in INPUTS]


async def test_the_same_plugins_give_identical_results_in_and_out_of_process() -> None:
    in_process = await _route_all([cls(option) for cls, option in PLUGINS])
    execs = [
        ExecHandle([sys.executable, "-m", "plugin_sdk", f"{cls.__module__}:{cls.__name__}", opt])
        for cls, opt in PLUGINS
    ]
    out_of_process = await _route_all(execs)
    assert out_of_process == in_process
    statuses = [r["status"] for r in in_process]
    # e: the body is not a map, so authz-images finds no Image and denies (fail-closed).
    assert statuses == ["delivered", "dropped", "dropped", "failed", "dropped", "delivered"]


async def test_the_raw_plugin_written_from_the_spec_alone_serves_calls() -> None:
    raw = ExecHandle([sys.executable, str(ROOT / "examples" / "raw_plugin.py")])
    async with router.open(plugins=[raw, HostMount("/data /var/data")]) as r:
        ok = await r.route(_create({"Image": "x"}, "r1"))
        bad = await r.route(_create(5, "r2"))  # type: ignore[arg-type]
        many = [await r.route(_create({"Image": "y"}, f"n{i}")) for i in range(200)]
    assert ok.status == "delivered"
    assert ok.messages[0].body == {
        "Image": "x",
        "Labels": {"org.chanrouter.raw": "seen"},
        "HostConfig": {"Binds": ["/data:/var/data"]},
    }
    assert (bad.status, bad.by) == ("failed", "raw-label")
    assert all(r.status == "delivered" for r in many)


def test_example_plugins_started_by_hand_say_so_and_exit_2() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CHANROUTER_PLUGIN"}
    for argv in (
        [sys.executable, "examples/raw_plugin.py"],
        [sys.executable, "examples/env_to_config.py"],
        [sys.executable, "-m", "plugin_sdk", "examples.audit:Audit"],
    ):
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 2, argv
        assert "routerd" in proc.stderr, argv
