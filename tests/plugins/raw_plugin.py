"""Test plugin speaking the session layer directly, to misbehave in ways the SDK cannot.

argv[1] is the mode:

- ``echo`` (or none): a correct plugin for the type ``echo`` (concurrency 4): answers
  each call with its message, every batch in one ``replies`` message; pongs pings;
  refuses unknown ops.
- ``bad-info``: its ``ready`` accepts no type (a malformed info).
- ``app-version``: its ``ready`` says application protocol version 99.
- ``bad-reply``: answers every call with the verdict ``"maybe"`` (a malformed answer).
- ``close-control``: on its first call batch, CLOSEs the control channel without
  answering.
- ``unknown-id``: answers its first call under the id ``id + 1000`` (a call never
  made), later ones correctly.
- ``answer-twice``: sends every ``replies`` message twice (the router ignores the
  second answers; the conformance check reports them).
- ``cancel-answers``: names the ``cancel`` feature, then answers every id a ``cancel``
  names, answered or not (a second answer to a call already answered).
- ``garbage-first``: writes text on FD 4 instead of HELLO.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import trio

from plugin_sdk import PluginInfo
from plugin_sdk.app import Ready
from plugin_sdk.session import Role, Sender, SessionClosed, open_session

INFO = PluginInfo("raw", ("echo",), concurrency=4)


def answers_to(mode: str, calls: list[Any], first: bool) -> list[list[Any]]:
    """The ``replies`` entries this mode sends for one batch."""
    if mode == "bad-reply":
        return [[call_id, "maybe", [], ""] for call_id, _ in calls]
    answers = [[call_id, "continue", [message], ""] for call_id, message in calls]
    if mode == "unknown-id" and first:
        answers[0][0] += 1000
    return answers


async def main(mode: str) -> None:
    if mode == "garbage-first":
        os.write(4, b"Hello! I am a plugin and I print my greeting on the wrong fd.\n")
        await trio.sleep_forever()
    async with open_session(
        trio.lowlevel.FdStream(3), trio.lowlevel.FdStream(4), Role.RESPONDER
    ) as session:
        control = await session.open_sender()
        ready = Ready(INFO, features=("cancel",) if mode == "cancel-answers" else ()).to_wire()
        if mode == "bad-info":
            ready["info"]["accepts"] = []
        if mode == "app-version":
            ready["app"] = 99
        await control.send(ready)
        try:
            calls = await session.accept()
        except SessionClosed:
            return  # the router refused the handshake, as the test expects
        first = True
        async for request in calls:
            op = request.get("op")
            reply = request.get("reply")
            if op == "call":
                if mode == "close-control":
                    await control.aclose()
                    await trio.sleep_forever()  # the router kills us
                replies = {"op": "replies", "replies": answers_to(mode, request["calls"], first)}
                for _ in range(2 if mode == "answer-twice" else 1):
                    await control.send(replies)
                first = False
            elif op == "cancel" and mode == "cancel-answers":
                cancelled = [[call_id, "error", [], "cancelled"] for call_id in request["ids"]]
                await control.send({"op": "replies", "replies": cancelled})
            elif isinstance(reply, Sender):
                async with reply:
                    if op == "ping":
                        await reply.send({"op": "pong"})
                    else:
                        await reply.reset(f"unsupported op {op!r}")


trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "echo")
