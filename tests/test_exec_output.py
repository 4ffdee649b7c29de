"""A plugin's stdout/stderr: always drained, forwarded line by line, tagged and levelled."""

from __future__ import annotations

import logging

import pytest
import trio
from exec_helpers import running, scripted

from plugin_sdk import Message
from router.exec._lines import CUT_MARK


async def test_megabytes_of_output_on_both_streams_never_stall_the_plugin() -> None:
    # The plugin writes 3 MB to stdout, then 3 MB to stderr, with blocking writes,
    # before answering: an undrained pipe (64 KiB) would block it forever.
    async with running(scripted(max_line=1024)) as handle:
        with trio.fail_after(30):
            reply = await handle.call(Message("chatty", 3_000_000))
        assert reply.messages[0].body == 3_000_000
        with trio.fail_after(5):
            assert (await handle.call(Message("echo", 1))).messages[0].body["echo"] == 1


async def test_stderr_lines_reach_the_plugins_logger_with_level_name_and_pid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="chanrouter.plugin")
    async with running(scripted("name=talker")) as handle:
        pid = handle.pid
        await handle.call(Message("stderr", "disk is full"))
    records = [r for r in caplog.records if r.name == "chanrouter.plugin.talker"]
    logged = {(r.levelno, r.getMessage()) for r in records}
    # The runner's "LEVEL logger: text" lines keep their level; plain lines are warnings.
    assert any(
        level == logging.ERROR
        and text.startswith(f"[talker pid {pid} stderr] chanrouter.plugin.")
        and text.endswith(": disk is full")
        for level, text in logged
    ), logged
    assert (logging.WARNING, f"[talker pid {pid} stderr] plain disk is full") in logged
    tagged = [r for r in records if r.getMessage().endswith("plain disk is full")]
    assert tagged[0].__dict__["pid"] == pid
    assert tagged[0].__dict__["stream"] == "stderr"


async def test_an_endless_line_is_cut_to_the_line_limit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chanrouter.plugin")
    async with running(scripted("name=long", max_line=100)) as handle:
        with trio.fail_after(30):
            await handle.call(Message("chatty", 1000))
    cut = [r.getMessage() for r in caplog.records if CUT_MARK.decode() in r.getMessage()]
    # One 100 kB line per stream, each cut to 100 bytes plus the mark.
    assert len(cut) == 2
    assert all(text.endswith("one very long line " + "y" * 81 + CUT_MARK.decode()) for text in cut)
