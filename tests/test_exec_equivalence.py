"""The same plugin class in process and as a subprocess gives the same replies."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import trio
from exec_helpers import module_cmd, running

from plugin_sdk import Message, Plugin, Reply
from router.builtins.authz import Authz
from router.builtins.host_mount import HostMount
from router.builtins.set_field import SetField
from router.exec import ExecHandle

BODIES: list[Any] = [
    {"Image": "alpine"},
    {"Image": "alpine", "HostConfig": {}},
    {"Image": "alpine", "HostConfig": {"Binds": ["/data:/var/data:ro"]}},
    {"Image": "alpine", "HostConfig": {"Binds": ["/other:/var/data"]}},
    {"Image": "untrusted/x", "HostConfig": {"Privileged": True}},
    {"Image": "alpine", "Env": ["CPU_LIMIT=2", "A=b"]},
    {"Image": "alpine", "Env": ["CPU_LIMIT=lots"]},
    "not a map",
    None,
    [1, 2, 3],
]
TYPES = ["container.create", "container.start", "image.pull"]
INPUTS = [
    Message(t, b, id=f"m{i}-{t}", headers={"trace": "t1"})
    for i, b in enumerate(BODIES)
    for t in TYPES
]


def comparable(reply: Reply) -> tuple[Any, ...]:
    # Fresh message ids come from a per-process prefix; everything else must match.
    return (
        reply.verdict,
        reply.reason,
        tuple((m.type, m.body, m.headers) for m in reply.messages),
    )


@pytest.mark.parametrize(
    ("plugin_class", "option"),
    [
        (HostMount, "/data /var/data"),
        (Authz, "deny container.create Image=untrusted/*; allow container.*; deny *"),
        (SetField, "CPU_LIMIT HostConfig.NanoCpus cpus"),
    ],
)
async def test_a_builtin_replies_identically_in_process_and_out_of_process(
    plugin_class: type[Plugin], option: str
) -> None:
    in_process = plugin_class(option)
    target = f"{plugin_class.__module__}:{plugin_class.__name__}"
    async with running(ExecHandle(module_cmd(target, option))) as handle:
        assert handle.info == in_process.info()
        with trio.fail_after(20):
            for message in INPUTS:
                # A copy: an in-process plugin could edit the message it is handed.
                expected = await in_process.handle(copy.deepcopy(message))
                got = await handle.call(message)
                assert comparable(got) == comparable(expected), message
