"""``log "[LEVEL] [TYPE_PATTERN...]"``: log each message seen and pass it on.

Each message is logged on the ``chanrouter.plugin.<name>`` logger as
``<type> <id> <body>``, the body as compact JSON (non-JSON values by their repr)
cut to :data:`BODY_LIMIT` characters. ``LEVEL`` is ``debug``, ``info`` (the
default), ``warning``, ``error`` or ``critical``, any case; a first word that is
a level name is the level, the other words are the type patterns the plugin is
routed (all messages, ``*``, when none are given).
"""

from __future__ import annotations

import json
import logging
from typing import Final

from plugin_sdk import Message, OptionError, Plugin, handles, split_option

__all__ = ["BODY_LIMIT", "Log", "compact"]

BODY_LIMIT: Final = 500
"""The most characters of a body one log line shows."""

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def compact(value: object, limit: int = BODY_LIMIT) -> str:
    """``value`` as one line of compact JSON, cut to ``limit`` characters."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class Log(Plugin):
    """Logs every message it is routed, then passes it on unchanged."""

    name = "log"
    version = "1.0"
    level: int = logging.INFO
    patterns: tuple[str, ...] = ("*",)

    def configure(self, option: str) -> None:
        """Parse ``[LEVEL] [TYPE_PATTERN...]``."""
        words = split_option(option)
        if words and words[0].lower() in _LEVELS:
            self.level = _LEVELS[words.pop(0).lower()]
        for word in words:
            if word.lower() in _LEVELS:
                raise OptionError(f"the level {word!r} must come first")
        if words:
            self.patterns = tuple(dict.fromkeys(words))

    def accepts(self) -> tuple[str, ...]:
        """The patterns from the option, or ``*``."""
        return self.patterns

    @handles("*")
    def log_message(self, msg: Message) -> None:
        """Log ``msg`` and pass it on."""
        if self.log.isEnabledFor(self.level):
            self.log.log(self.level, "%s %s %s", msg.type, msg.id, compact(msg.body))
