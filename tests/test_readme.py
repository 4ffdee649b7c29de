"""The README's Python examples run as written: the docs cannot drift from the API."""

from __future__ import annotations

import pathlib
import re
from typing import Any

from plugin_sdk import Message, Verdict
from plugin_sdk.testing import run_plugin

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def _run_block(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme_example"}  # not "__main__": no run()
    exec(compile(source, str(README), "exec"), namespace)
    return namespace


def test_the_readme_shows_a_plugin_and_the_embedding_api() -> None:
    assert len(_python_blocks()) == 2


def test_the_readme_plugin_adds_its_bind_idempotently() -> None:
    plugin_class = _run_block(_python_blocks()[0])["HostMount"]
    plugin = plugin_class("/data /var/data")
    create = Message("container.create", {"Image": "nginx", "HostConfig": {}})
    [reply] = run_plugin(plugin, create)
    [out] = reply.messages
    assert out.body["HostConfig"]["Binds"] == ["/data:/var/data"]
    [again] = run_plugin(plugin, out)
    assert again.messages[0].body["HostConfig"]["Binds"] == ["/data:/var/data"]
    [bad] = run_plugin(plugin_class("/a /b"), Message("container.create", 5))
    assert bad.verdict is Verdict.ERROR


async def test_the_readme_embedding_example_routes_a_request() -> None:
    create_container = _run_block(_python_blocks()[1])["create_container"]
    body = await create_container({"Image": "nginx"})
    assert body["HostConfig"]["Binds"] == ["/data:/var/data"]
