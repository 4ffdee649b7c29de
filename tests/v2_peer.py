"""A small application-layer-v2 plugin for the router-side tests, run as a real subprocess.

It speaks the session layer over FD 3/4 directly (no SDK runner), so a test controls
exactly which answers go out, when, in which order and grouping, and can make it break
the protocol. ``v2_peer.py [concurrency=N] [name=NAME] [app=old] [cancel=1]``; it
accepts every type. ``app=old`` sends a ``ready`` without ``app``, as a version 1 plugin
does. ``cancel=1`` names the ``cancel`` feature: each ``cancel`` request is recorded, and
the held calls it names are answered with ``error`` "cancelled" at once.

Every ``call`` request it receives gets a number (1, 2, ...): the *batch*. Each call is
acted on by its message type:

- anything else: answered ``continue`` with one message of the same type and id whose
  body is ``{"body": <the body>, "batch": <batch>, "size": <calls in that batch>,
  "pid": <pid>, "pings": <pings answered so far>, "unanswered": <calls received and not
  answered yet, this one included>, "cancels": <the ids of each cancel request so
  far>}``; all such answers to one request go out in one
  ``replies`` message;
- ``measure``: answered like anything else, but ``"body"`` is the length of the body
  (for large bodies whose echo would not fit in one answer);
- ``hold``: kept unanswered until a ``release``;
- ``release``: body ``{"order": [i, ...], "groups": [n, ...]}``: answers the held calls
  (``i`` indexes them in arrival order) in that order, in ``replies`` messages of ``n``
  answers each, then answers the release itself like any call;
- ``never``: never answered (pings still are);
- ``drop`` / ``error``: answered with that verdict and the body as reason;
- ``twice``: answered twice (the second is a late answer);
- ``unknown-id``: answered as call id + 1000;
- ``malformed``: answered with verdict ``"maybe"``;
- ``close-control``: the control channel is closed, nothing answered;
- ``exit``: the process exits with status 3 at once.

Pings are answered at once. When the router closes the calls channel the peer exits 0.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import trio

from plugin_sdk import Message, PluginInfo, Reply, Verdict
from plugin_sdk.app import (
    FEATURE_CANCEL,
    CallBatch,
    Cancel,
    Ping,
    Ready,
    answer_entry,
    answers_to_wire,
    parse_request,
    pong,
)
from plugin_sdk.session import Role, Sender, SessionClosed, open_session


class Peer:
    """The peer's state: the control channel, counters and the held calls."""

    def __init__(self, control: Sender) -> None:
        self.control = control
        self.batch = 0
        self.pings = 0
        self.unanswered = 0
        self.held: list[tuple[int, Message]] = []
        self.cancels: list[list[int]] = []

    def echo(self, call_id: int, message: Message, size: int) -> list[Any]:
        """The answer to an ordinary call (see the module docstring)."""
        body = {
            "body": len(message.body) if message.type == "measure" else message.body,
            "batch": self.batch,
            "size": size,
            "pid": os.getpid(),
            "pings": self.pings,
            "unanswered": self.unanswered,
            "cancels": self.cancels,
        }
        echoed = Message(message.type, body, id=message.id)
        return answer_entry(call_id, Reply(Verdict.CONTINUE, (echoed,)))

    async def answer(self, entries: list[list[Any]]) -> None:
        """Send ``entries`` in one ``replies`` message (nothing if there are none)."""
        if entries:
            self.unanswered -= len(entries)
            await self.control.send(answers_to_wire(entries))

    async def serve(self, batch: CallBatch) -> None:
        """Act on one ``call`` request."""
        self.batch += 1
        size = len(batch.calls)
        self.unanswered += size
        answers: list[list[Any]] = []
        for call_id, message in batch.calls:
            if not isinstance(message, Message):
                answers.append(answer_entry(call_id, Reply(Verdict.ERROR, (), str(message))))
                continue
            kind = message.type
            if kind == "hold":
                self.held.append((call_id, message))
            elif kind == "never":
                pass
            elif kind == "exit":
                os._exit(3)
            elif kind == "close-control":
                await self.control.aclose()
                return
            elif kind == "unknown-id":
                answers.append(self.echo(call_id + 1000, message, size))
            elif kind == "malformed":
                answers.append([call_id, "maybe", [], ""])
            elif kind in ("drop", "error"):
                answers.append(answer_entry(call_id, Reply(Verdict(kind), (), str(message.body))))
            elif kind == "release":
                await self.release(message.body)
                answers.append(self.echo(call_id, message, size))
            else:
                answers.append(self.echo(call_id, message, size))
                if kind == "twice":
                    self.unanswered += 1  # the extra answer is not for a new call
                    answers.append(self.echo(call_id, message, size))
        await self.answer(answers)

    async def cancel(self, ids: tuple[int, ...]) -> None:
        """Record a cancel; answer the held calls it names as cancelled."""
        self.cancels.append(list(ids))
        named = [(i, m) for i, m in self.held if i in ids]
        self.held = [(i, m) for i, m in self.held if i not in ids]
        await self.answer(
            [answer_entry(i, Reply(Verdict.ERROR, (), "cancelled")) for i, _ in named]
        )

    async def release(self, how: dict[str, list[int]]) -> None:
        """Answer the held calls in the order and grouping ``how`` gives."""
        held, self.held = self.held, []
        ordered = [held[i] for i in how["order"]]
        position = 0
        for group in how["groups"]:
            chunk = ordered[position : position + group]
            position += group
            await self.answer([self.echo(i, m, 0) for i, m in chunk])


async def main(args: list[str]) -> None:
    """Handshake, then serve the calls channel until the router closes it."""
    options = dict(arg.split("=", 1) for arg in args)
    info = PluginInfo(
        options.get("name", "v2peer"), ("*",), concurrency=int(options.get("concurrency", "64"))
    )
    async with open_session(
        trio.lowlevel.FdStream(3), trio.lowlevel.FdStream(4), Role.RESPONDER
    ) as session:
        control = await session.open_sender()
        features = (FEATURE_CANCEL,) if options.get("cancel") == "1" else ()
        ready = Ready(info, features=features).to_wire()
        if options.get("app") == "old":
            del ready["app"]
        await control.send(ready)
        try:
            calls = await session.accept()
        except SessionClosed:
            return
        peer = Peer(control)
        async for raw in calls:
            request = parse_request(raw, Sender)
            if isinstance(request, CallBatch):
                await peer.serve(request)
            elif isinstance(request, Cancel):
                await peer.cancel(request.ids)
            elif isinstance(request, Ping):
                peer.pings += 1
                async with request.reply as reply:
                    await reply.send(pong())


if __name__ == "__main__":
    trio.run(main, sys.argv[1:])
