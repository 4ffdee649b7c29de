"""Requests the host sends on the calls channel, and the plugin's answers.

Each request carries its own reply channel (a SENDER reference: the plugin writes, the
host reads), so answers may come back in any order. The reference is whatever object
the session layer makes of it; this module only carries it, hence the type parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..message import Message, MessageFormatError
from ..reply import Reply, Verdict
from ._errors import AppProtocolError, shown

__all__ = [
    "Call",
    "Ping",
    "Request",
    "UnknownRequest",
    "check_pong",
    "parse_reply",
    "parse_request",
    "pong",
    "reply_to_wire",
]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    """Handle ``message`` and answer on ``reply`` with :func:`reply_to_wire`, then close it."""

    message: Message
    reply: R

    def to_wire(self) -> dict[str, Any]:
        """The msgpack map sent on the wire."""
        return {"op": "call", "message": self.message.to_wire(), "reply": self.reply}


@dataclass(frozen=True, slots=True)
class Ping(Generic[R]):
    """Answer ``{"op": "pong"}`` on ``reply`` at once, even while handlers are busy."""

    reply: R

    def to_wire(self) -> dict[str, Any]:
        """The msgpack map sent on the wire."""
        return {"op": "ping", "reply": self.reply}


@dataclass(frozen=True, slots=True)
class UnknownRequest(Generic[R]):
    """A request with an op this side does not know (a newer host, say).

    The plugin resets ``reply`` (when there is one) with a reason and goes on, so a host
    can probe for optional ops without breaking older plugins.
    """

    op: object
    reply: R | None


Request = Call[R] | Ping[R] | UnknownRequest[R]


def parse_request(obj: object, reply_type: type[R]) -> Request[R]:
    """Read a request from the calls channel, or raise :class:`AppProtocolError`.

    ``reply_type`` is the class the session makes of a received SENDER reference; a
    ``reply`` of any other type is an error (the host must give a channel to answer on).
    """
    if not isinstance(obj, dict):
        raise AppProtocolError(f"request must be a map with an 'op', got {shown(obj)}")
    op = obj.get("op")
    reply = obj.get("reply")
    if op not in ("call", "ping"):
        return UnknownRequest(op, reply if isinstance(reply, reply_type) else None)
    if not isinstance(reply, reply_type):
        raise AppProtocolError(f"{op!r} request needs a 'reply' channel, got {shown(obj)}")
    if op == "ping":
        return Ping(reply)
    try:
        message = Message.from_wire(obj.get("message"), where="call message")
    except MessageFormatError as exc:
        raise AppProtocolError(str(exc)) from None
    return Call(message, reply)


def reply_to_wire(reply: Reply) -> dict[str, Any]:
    """The msgpack map a plugin answers a call with."""
    return {
        "verdict": str(reply.verdict),
        "messages": [m.to_wire() for m in reply.messages],
        "reason": reply.reason,
    }


def parse_reply(obj: object) -> Reply:
    """Read a plugin's answer to a call, or raise :class:`AppProtocolError` saying why not."""
    if not isinstance(obj, dict):
        raise AppProtocolError(f"reply must be a map with a 'verdict', got {shown(obj)}")
    raw_verdict = obj.get("verdict")
    try:
        if not isinstance(raw_verdict, str):
            raise ValueError(raw_verdict)
        verdict = Verdict(raw_verdict)
    except ValueError:
        choices = ", ".join(v.value for v in Verdict)
        raise AppProtocolError(
            f"reply 'verdict' must be one of {choices}, got {shown(raw_verdict)}"
        ) from None
    raw_messages = obj.get("messages", [])
    if not isinstance(raw_messages, list):
        raise AppProtocolError(f"reply 'messages' must be a list, got {shown(raw_messages)}")
    reason = obj.get("reason", "")
    if not isinstance(reason, str):
        raise AppProtocolError(f"reply 'reason' must be a string, got {shown(reason)}")
    try:
        messages = tuple(
            Message.from_wire(m, where=f"reply message {i}") for i, m in enumerate(raw_messages)
        )
    except MessageFormatError as exc:
        raise AppProtocolError(str(exc)) from None
    return Reply(verdict, messages, reason)


def pong() -> dict[str, Any]:
    """The map a plugin answers a ping with."""
    return {"op": "pong"}


def check_pong(obj: object) -> None:
    """Raise :class:`AppProtocolError` unless ``obj`` is a pong."""
    if not (isinstance(obj, dict) and obj.get("op") == "pong"):
        raise AppProtocolError(f"expected {{'op': 'pong'}} in answer to a ping, got {shown(obj)}")
