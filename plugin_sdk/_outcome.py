"""Turning what a handler returned into a :class:`~plugin_sdk.Reply`.

Handlers may return the lightest thing that says what they mean; the engine only
ever sees a Reply. Anything else becomes an ERROR reply that says what came back,
so a plugin bug fails one message instead of the router.
"""

from __future__ import annotations

from .message import Message
from .reply import Reply, emit, error, passthrough

__all__ = ["describe_value", "to_reply"]

_EXPECTED = "expected None, a Message, a list of Messages or a Reply"


def describe_value(value: object, limit: int = 80) -> str:
    """The type and a shortened repr of ``value``, for error texts."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(value).__name__} {text}"


def to_reply(value: object, *, where: str = "handler") -> Reply:
    """Normalise a handler's return value.

    None -> passthrough; a Message -> ``emit(msg)``; a list or tuple of Messages
    -> ``emit(*msgs)``; a Reply as is. Anything else, including a Reply holding
    non-messages, -> an ERROR reply naming ``where`` and what was returned.
    """
    if value is None:
        return passthrough()
    if isinstance(value, Message):
        return emit(value)
    if isinstance(value, Reply):
        bad = [m for m in value.messages if not isinstance(m, Message)]
        if bad:
            return error(f"{where} returned a Reply holding {describe_value(bad[0])}; {_EXPECTED}")
        return value
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if not isinstance(item, Message):
                return error(
                    f"{where} returned a {type(value).__name__} whose item {index} is"
                    f" {describe_value(item)}; {_EXPECTED}"
                )
        return emit(*value)
    return error(f"{where} returned {describe_value(value)}; {_EXPECTED}")
