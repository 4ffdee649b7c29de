"""The message: what flows through a pipeline, in process and on the wire.

A message has a dotted ``type`` (``container.create``), a ``body`` (any msgpack
value), an ``id`` unique within the router's lifetime, and ``headers``: a dict of
msgpack values. Headers the router itself reads are named in :class:`Headers`.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["Headers", "Message", "MessageFormatError", "new_message_id"]

# A per-process random prefix plus a counter: unique, cheap (no uuid per message),
# and readable in logs. 48 random bits make collisions between processes unlikely.
_PREFIX: Final = os.urandom(6).hex()
_COUNTER = itertools.count(1)


def new_message_id() -> str:
    """Return a fresh message id, unique within this process."""
    return f"{_PREFIX}-{next(_COUNTER)}"


class Headers:
    """Names of the headers the router reads and writes."""

    LINEAGE: Final = "lineage"
    """List of ``[type, plugin]`` pairs: the derivations that led to this message."""
    PARENT: Final = "parent"
    """Id of the message this one was derived from."""
    DEADLINE: Final = "deadline"
    """Seconds since the epoch after which the message should fail, if set."""
    TRACE: Final = "trace"
    """An opaque trace id carried unchanged through derivations."""


_FIELDS: Final = frozenset({"type", "body", "id", "headers"})
_new_object: Final = object.__new__


class MessageFormatError(ValueError):
    """A value that should be a message is not one; the text says what is wrong."""


@dataclass(slots=True)
class Message:
    """One message: a type, a body, an id and headers."""

    type: str
    body: Any = None
    id: str = field(default_factory=new_message_id)
    headers: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The msgpack/JSON shape of this message (a plain dict)."""
        return {"type": self.type, "body": self.body, "id": self.id, "headers": self.headers}

    @classmethod
    def from_wire(cls, obj: object, *, where: str = "message") -> Message:
        """Build a message from its wire shape, or raise :class:`MessageFormatError`.

        A missing ``id`` gets a fresh one, missing ``headers`` an empty dict;
        ``where`` prefixes the error text (for example ``"line 3"``).
        """
        if type(obj) is dict and len(obj) == 4:
            # The usual shape, all four fields, checked with exact type tests only.
            mtype = obj.get("type")
            mid = obj.get("id")
            headers = obj.get("headers")
            if (
                type(mtype) is str
                and mtype
                and type(mid) is str
                and type(headers) is dict
                and "body" in obj
            ):
                if cls is not Message:
                    return cls(mtype, obj["body"], mid, headers)
                # Every field is given: set the slots without the generated __init__'s
                # frame and default checks (a third of building one, once per message
                # crossing a pipe).
                message = _new_object(Message)
                message.type = mtype
                message.body = obj["body"]
                message.id = mid
                message.headers = headers
                return message
        if not isinstance(obj, dict):
            raise MessageFormatError(
                f"{where}: expected a map with 'type' and 'body', got {type(obj).__name__}"
            )
        mtype = obj.get("type")
        if not isinstance(mtype, str) or not mtype:
            raise MessageFormatError(f"{where}: 'type' must be a non-empty string, got {mtype!r}")
        mid = obj.get("id")
        if mid is None:
            mid = new_message_id()
        elif not isinstance(mid, str):
            raise MessageFormatError(f"{where}: 'id' must be a string, got {mid!r}")
        headers = obj.get("headers")
        if headers is None:
            headers = {}
        elif not isinstance(headers, dict):
            raise MessageFormatError(f"{where}: 'headers' must be a map, got {headers!r}")
        if len(obj) > 1 and not obj.keys() <= _FIELDS:  # one field: it is 'type'
            unknown = sorted(map(str, obj.keys() - _FIELDS))
            raise MessageFormatError(f"{where}: unknown field(s) {unknown}")
        return cls(mtype, obj.get("body"), mid, headers)

    def derive(self, type: str, body: Any = None, **headers: Any) -> Message:
        """A new message of another type whose headers carry this one's trace id."""
        new_headers: dict[str, Any] = dict(headers)
        if Headers.TRACE in self.headers:
            new_headers.setdefault(Headers.TRACE, self.headers[Headers.TRACE])
        return Message(type=type, body=body, headers=new_headers)
