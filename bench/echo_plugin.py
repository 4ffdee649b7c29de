"""The bench plugin: answers each ``bench.echo`` message with itself, like the raw echo.

Returning the message (a same-type reply: it replaces the input) sends the whole
body back, so the bytes on the pipes match the raw echo's. The option is the
instance's name (``echo1``), so several can share a router. ``concurrency`` is
the raw echo's window: the handler is trivial, and with the default of 1 the
engine would allow one call at a time and there would be no pipelining to measure.

Out of process: ``python bench/echo_plugin.py NAME`` (the router sets FD 3/4 and
``CHANROUTER_PLUGIN``); in process: ``Echo("NAME")``.
"""

from __future__ import annotations

from plugin_sdk import Message, OptionError, Plugin, handles
from plugin_sdk.runner import run

__all__ = ["MESSAGE_TYPE", "Echo"]

MESSAGE_TYPE = "bench.echo"


class Echo(Plugin):
    """Replies to every ``bench.echo`` message with the message itself."""

    name = "echo"
    version = "1.0"
    concurrency = 64

    def configure(self, option: str) -> None:
        """The option, if given, is this instance's name."""
        words = option.split()
        if len(words) > 1:
            raise OptionError(f"expected at most one word, a name; got {option!r}")
        if words:
            self.name = words[0]

    @handles(MESSAGE_TYPE)
    def echo(self, message: Message) -> Message:
        """Send the message back unchanged (it replaces the input)."""
        return message


if __name__ == "__main__":
    run(Echo)
