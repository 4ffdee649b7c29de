"""The one error of the application layer: a peer's message breaks the plugin protocol."""

from __future__ import annotations

__all__ = ["AppProtocolError"]


class AppProtocolError(ValueError):
    """A handshake, call, reply or ping does not have the shape docs/PROTOCOL.md gives it.

    The text says what was expected and shows (a prefix of) what arrived, so a log line
    built from it tells a plugin author what their plugin sent.
    """


def shown(value: object, limit: int = 200) -> str:
    """A bounded ``repr`` of a peer's value for error texts (a peer may send megabytes)."""
    text = repr(value)
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} chars)"
    return text
