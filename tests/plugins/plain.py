"""Test plugin (run as a script): plain handlers only, so it is served without trio.

Answers ``probe`` with whether trio was imported in this process, and the body.
"""

from __future__ import annotations

import sys

from plugin_sdk import Message, Plugin, handles
from plugin_sdk.runner import run


class Plain(Plugin):
    """One plain handler; the default hooks."""

    name = "plain"

    @handles("probe")
    def probe(self, msg: Message) -> Message:
        """Say whether trio is loaded (it must not be, unless forced)."""
        return Message("probe", {"trio_imported": "trio" in sys.modules, "body": msg.body})


if __name__ == "__main__":
    run(Plain)
