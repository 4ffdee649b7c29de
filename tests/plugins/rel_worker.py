"""Test plugin (run as a script): stamps its name into ``body["seen"]`` of every message.

Option: ``key=value`` words: ``name=`` (default "worker"),
``on_error=``, ``max_attempts=``, ``timeout=``, ``concurrency=``, ``delay=`` (seconds each
call waits first, a trio sleep: the plugin stays responsive to pings).
A result whose ``seen`` lists each plugin of a pipeline exactly once, in order, proves
that no stage was skipped or applied twice to what came out.
"""

from __future__ import annotations

import os
from typing import Any

import trio

from plugin_sdk import Message, Plugin, handles, split_option
from plugin_sdk.runner import run


class Worker(Plugin):
    """Appends its name to ``body["seen"]`` (and records its pid in ``body["pids"]``)."""

    name = "worker"

    def configure(self, option: str) -> None:
        """Read ``key=value`` words."""
        settings: dict[str, Any] = dict(w.split("=", 1) for w in split_option(option))
        self.name = settings.get("name", self.name)
        self.on_error = settings.get("on_error", self.on_error)
        self.max_attempts = int(settings.get("max_attempts", self.max_attempts))
        self.timeout = float(settings.get("timeout", self.timeout))
        self.concurrency = int(settings.get("concurrency", self.concurrency))
        self.delay = float(settings.get("delay", 0))

    @handles("*")
    async def stamp(self, msg: Message) -> Message:
        """Stamp the message (after ``delay`` seconds)."""
        if self.delay:
            await trio.sleep(self.delay)
        body = dict(msg.body) if isinstance(msg.body, dict) else {"value": msg.body}
        body["seen"] = [*body.get("seen", []), self.name]
        body["pids"] = [*body.get("pids", []), os.getpid()]
        return Message(msg.type, body, id=msg.id, headers=msg.headers)


if __name__ == "__main__":
    run(Worker)
