"""The Session echo child: a trio peer on FD 3/4 using ``plugin_sdk.session``.

Two modes, the two ways a host talks to a subprocess plugin:

* ``channel``: the host opens one top-level channel to us, we open one back; every
  message read is sent back on ours.
* ``request``: the host sends ``{"message": m, "reply": <Sender>}`` on its channel;
  we send ``m`` back on that nested reply channel and close it (libchan's reply idiom,
  one channel per call, as plugin calls work).

Messages are handled one at a time, like the raw echo. Exits at the end of the session.
Run as ``python bench/session_echo.py MODE`` (by path).
"""

from __future__ import annotations

import sys

import trio

from plugin_sdk.session import open_session
from plugin_sdk.wire import Role

MODES = ("channel", "request")


async def serve(mode: str) -> None:
    """Echo over FD 3/4 in ``mode`` until the host ends the session."""
    receive = trio.lowlevel.FdStream(3)
    send = trio.lowlevel.FdStream(4)
    async with open_session(receive, send, Role.RESPONDER) as session:
        inbound = await session.accept()
        if mode == "channel":
            outbound = await session.open_sender()
            async with outbound:
                async for payload in inbound:
                    await outbound.send(payload)
        else:
            async for call in inbound:
                reply = call["reply"]
                async with reply:
                    await reply.send(call["message"])


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in MODES:
        sys.exit(f"usage: session_echo.py {{{'|'.join(MODES)}}}")
    trio.run(serve, sys.argv[1])
