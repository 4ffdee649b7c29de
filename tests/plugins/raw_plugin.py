"""Test plugin speaking the session layer directly, to misbehave in ways the SDK cannot.

argv[1] is the mode: ``bad-info`` (a ready without accepted types), ``app-version``
(a newer application protocol), ``bad-reply`` (answers calls with nonsense),
``close-reply`` (closes reply channels without answering), ``reset-reply`` (resets
them: refuses every call), ``garbage-first`` (writes
text on FD 4 instead of HELLO).
"""

from __future__ import annotations

import os
import sys

import trio

from plugin_sdk import PluginInfo
from plugin_sdk.app import Ready
from plugin_sdk.session import Role, SessionClosed, open_session


async def main(mode: str) -> None:
    if mode == "garbage-first":
        os.write(4, b"Hello! I am a plugin and I print my greeting on the wrong fd.\n")
        await trio.sleep_forever()
    async with open_session(
        trio.lowlevel.FdStream(3), trio.lowlevel.FdStream(4), Role.RESPONDER
    ) as session:
        control = await session.open_sender()
        info = PluginInfo("raw", ("echo",)).to_wire()
        if mode == "bad-info":
            info["accepts"] = []
        ready = Ready(PluginInfo("raw", ("echo",))).to_wire()
        ready["info"] = info
        if mode == "app-version":
            ready["app"] = 99
        await control.send(ready)
        try:
            calls = await session.accept()
        except SessionClosed:
            return  # the router refused the handshake, as the test expects
        async for request in calls:
            reply = request["reply"]
            if mode == "bad-reply":
                await reply.send({"verdict": "maybe"})
            if mode == "reset-reply":
                await reply.reset("not this one")
            await reply.aclose()


trio.run(main, sys.argv[1])
