"""ExecHandle.start(): a real plugin process handshakes, or start fails naming the command."""

from __future__ import annotations

import pytest
import trio
from exec_helpers import module_cmd, peer, plugin_cmd, running, scripted

from plugin_sdk import Message, Verdict
from router.exec import ExecHandle, ExecState, PluginStartError


async def test_a_plugin_handshakes_and_answers_a_call() -> None:
    async with running(scripted("name=first concurrency=3")) as handle:
        assert handle.state is ExecState.READY
        assert handle.info.name == "first"
        assert handle.info.concurrency == 3
        assert set(handle.info.accepts) >= {"echo", "crash"}
        reply = await handle.call(Message("echo", {"n": 1}, id="m1"))
        assert reply.verdict is Verdict.CONTINUE
        assert reply.messages[0].body == {"echo": {"n": 1}, "pid": handle.pid}
        assert reply.messages[0].id == "m1"
    assert handle.status()["state"] == "stopped"
    assert handle.pid is None


async def test_the_name_given_to_the_handle_overrides_the_plugins_own() -> None:
    async with running(scripted(name="renamed")) as handle:
        assert handle.info.name == "renamed"


async def test_a_refused_option_fails_start_with_the_plugins_reason() -> None:
    with pytest.raises(PluginStartError, match=r"refused to start: OptionError.*refuse=1"):
        await scripted("refuse=1").start()


async def test_a_plugin_exiting_before_hello_fails_start_quoting_its_stderr() -> None:
    handle = ExecHandle(plugin_cmd("exits_early.py"))
    with pytest.raises(PluginStartError) as info:
        await handle.start()
    text = str(info.value)
    assert "exits_early.py" in text
    assert "exited with status 1" in text
    assert "cannot find my config file" in text
    assert handle.state is ExecState.STOPPED


async def test_a_silent_plugin_fails_start_after_the_handshake_timeout() -> None:
    handle = ExecHandle(plugin_cmd("silent.py"), handshake_timeout=0.3, stop_timeout=0.1)
    with pytest.raises(PluginStartError, match=r"no HELLO.*0\.3"):
        await handle.start()


async def test_text_on_fd4_instead_of_hello_fails_start_saying_what_came() -> None:
    handle = ExecHandle(plugin_cmd("raw_plugin.py", "garbage-first"), stop_timeout=0.1)
    with pytest.raises(PluginStartError, match="garbage-first") as info:
        await handle.start()
    assert "handshake" in str(info.value)


async def test_plugin_info_without_types_fails_start_saying_so() -> None:
    handle = ExecHandle(plugin_cmd("raw_plugin.py", "bad-info"), stop_timeout=0.5)
    with pytest.raises(PluginStartError, match="accepts no message types"):
        await handle.start()


async def test_an_unsupported_application_version_fails_start() -> None:
    handle = ExecHandle(plugin_cmd("raw_plugin.py", "app-version"), stop_timeout=0.5)
    with pytest.raises(PluginStartError, match="version 99"):
        await handle.start()


async def test_a_version_1_plugin_is_refused_saying_which_versions_speak() -> None:
    handle = peer("app=old", stop_timeout=0.5)
    with pytest.raises(
        PluginStartError,
        match=r"sent a bad handshake: plugin speaks application protocol version 1; "
        r"this router supports \[2\]",
    ):
        await handle.start()
    assert handle.state is ExecState.STOPPED


async def test_a_missing_command_fails_start_naming_it() -> None:
    with pytest.raises(PluginStartError, match="no-such-plugin"):
        await ExecHandle("no-such-plugin --x").start()


async def test_a_builtin_served_with_python_m_plugin_sdk_handshakes() -> None:
    cmd = module_cmd("router.builtins.host_mount:HostMount", "/data /var/data")
    async with running(ExecHandle(cmd)) as handle:
        assert handle.info.name == "host-mount"
        with trio.fail_after(5):
            reply = await handle.call(Message("container.create", {"Image": "x"}))
        assert reply.messages[0].body["HostConfig"]["Binds"] == ["/data:/var/data"]
